// The router's state and decisions around the pure L2 core (`createL2Router` of @sluice/core): one
// prefix index and one predicted-load picture shared by every model, one L2 router (hold queue and
// policy) per model, and the held calls waiting for an answer. No I/O: the command feeds it facts
// (etcd, NATS, gRPC) and publishes what it returns, so it is tested without a network.
//
// Held calls are answered by `drain`, which runs when capacity may have freed (a release, a first
// token, a peer's free, a fresh engine observation, a new worker) and on a timer at the earliest
// hold expiry.
//
// Policies apply live: a new policy object for a model takes effect for the next decision, and the
// calls held under the old one are re-offered to the new router in the new policy's release order
// with their expiry never extended (`rehold`), so the hold queue is bounded by the new policy at once.
// A shadow candidate, when one exists, is judged on the same facts before the enforcing decision.
import {
  ADMIT_VERDICT,
  compareShadow,
  createL2Router,
  createPrefixIndex,
  createWorkerLoad,
  decideRoute,
  type GapPolicy,
  type KvEvent,
  type KvEventOutcome,
  type L2Router,
  type ObservedWorkerLoad,
  type PrefixIndex,
  type ResolvedPolicy,
  type RouteRequestFacts,
  type RouterDecisionOptions,
  RouterInputError,
  type RouterReject,
  type RouterRejectReason,
  type RouterRouted,
  type RouterSyncDelta,
  routeShadowVerdict,
  type ShadowComparison,
  type ShadowVerdict,
  type SyncOutcome,
  type WorkerLoad,
} from "@sluice/core";
import { createRouterSyncGate, type RouterSyncFate, type RouterSyncGateOptions } from "@sluice/runtime";
import { RouteRequestError } from "./errors.js";
import { promptBlockHashes, promptTokenIds } from "./prompt.js";
import type { RegisteredWorker, WorkerRegistry } from "./worker-registry.js";

export interface RouteCall {
  requestId: string;
  /** Model requested; "" = any worker. */
  model: string;
  requestClass: string;
  tokenIds?: readonly number[] | undefined;
  text?: string | undefined;
  /** Absolute deadline (epoch ms) after which an answer is useless; undefined = none. */
  deadlineMs?: number | undefined;
  excludeWorkerIds?: readonly string[] | undefined;
}

export interface RouteRouted {
  kind: "routed";
  workerId: string;
  address: string;
  overlapBlocks: number;
  predictedTtftMs: number;
  heldMs: number;
}

export type RouteRejectReason = RouterRejectReason | "invalid_request";

export interface RouteRejected {
  kind: "rejected";
  reason: RouteRejectReason;
  requestClass: string;
  observed: number;
  limit: number;
  predictedTtftMs: number;
  retryAfterMs: number;
  message: string;
}

export type RouteAnswer = RouteRouted | RouteRejected;

export interface PendingRoute {
  /** Settles once: at once, when a held call is placed or expires, or on cancel / close. */
  readonly answer: Promise<RouteAnswer>;
  /** The caller went away (cancelled, deadline): withdraws a held call. No-op once answered. */
  cancel(): void;
}

/** What happened, for decision events and metrics. `decisionMs` is the synchronous decision time. */
export interface RouterServiceListener {
  routed?(info: { call: RouteCall; routed: RouteRouted; decisionMs: number | undefined }): void;
  held?(info: { call: RouteCall; expiresAtMs: number; decisionMs: number }): void;
  rejected?(info: {
    call: RouteCall;
    rejected: RouteRejected;
    heldMs: number;
    decisionMs: number | undefined;
  }): void;
  /** A held call was withdrawn by its caller. */
  cancelled?(info: { call: RouteCall; heldMs: number }): void;
  /** A shadow candidate was evaluated beside the enforcing policy for a new call. */
  shadow?(info: { call: RouteCall; comparison: ShadowComparison }): void;
}

export interface RouterServiceDeps {
  replicaId: string;
  registry: WorkerRegistry;
  /** The policy in force for a model (etcd-watched); a new object means a new policy. */
  policyFor(model: string): ResolvedPolicy;
  /** The shadow candidate for a model, undefined when none (the common case: one check per call). */
  shadowFor?(model: string): ResolvedPolicy | undefined;
  options: RouterDecisionOptions;
  gapPolicy?: GapPolicy;
  /** Epoch ms: deadlines and engine timestamps are epoch ms. Default Date.now. */
  nowMs?: () => number;
  random?: () => number;
  /** Publishes a delta of this replica on `router.sync`. */
  publishSync(delta: RouterSyncDelta): void;
  /**
   * The fate of each peer delta given to `applySync` (applied with the core's outcome, malformed, or
   * refused), reported once, at once or after it waited for its replica's registration.
   */
  onSyncFate?(delta: RouterSyncDelta, fate: RouterSyncFate<SyncOutcome>): void;
  /** Who may change the predicted load (router-sync-gate.ts): waits, bounds and the refusal log. */
  syncGate?: Pick<
    RouterSyncGateOptions<SyncOutcome>,
    | "registrationWaitMs"
    | "departedKeepMs"
    | "maxHeldPerReplica"
    | "maxHeldReplicas"
    | "warnIntervalMs"
    | "logger"
  >;
  listener?: RouterServiceListener;
}

export interface RouterService {
  route(call: RouteCall): PendingRoute;
  /** First token of a routed request; false when unknown (or already marked). */
  prefillDone(requestId: string): boolean;
  /** End of a request (idempotent): frees its predicted load or withdraws it if held. */
  release(requestId: string): boolean;
  applyKvEvent(workerId: string, eventId: bigint, event: KvEvent): KvEventOutcome;
  observe(workerId: string, observed: ObservedWorkerLoad): void;
  /**
   * A peer replica's delta from `router.sync`. Applied only if the replica is registered live in etcd
   * (`replicaRegistered`; a delta of a replica not yet seen waits briefly for its registration) and an
   * add fits on an engine; its fate goes to `onSyncFate`. Never throws.
   */
  applySync(delta: RouterSyncDelta): "judged" | "held" | "refused";
  /** A peer replica's registration is in etcd (snapshot or put); deltas held for it apply now. */
  replicaRegistered(replicaId: string): void;
  putWorker(entry: RegisteredWorker): void;
  /** The worker's registration went: it leaves the registry, the index and the load picture. */
  removeWorker(workerId: string): boolean;
  /** A peer replica's lease went: its deltas are refused (after a short grace) and its sequence forgotten. */
  forgetReplica(replicaId: string): void;
  /** Workers registered (all models). */
  workerCount(): number;
  /** Held calls (of one class, or all). */
  heldCount(requestClass?: string): number;
  /** Re-evaluates held calls now (normally automatic). */
  drain(): void;
  /**
   * Ages out predicted load a lost MarkPrefillDone / Release left behind (`WorkerLoad.expire`); held
   * calls are re-evaluated when anything expired. Also refuses peer deltas that waited too long for
   * their replica's registration. Call about once a second.
   */
  expireStale(): { prefillExpired: number; requestsExpired: number };
  /**
   * Policies may have changed: switches every model whose policy object changed now (held calls are
   * re-offered under the new policy). Switching also happens lazily on the next call of the model.
   */
  policiesChanged(): void;
  readonly index: PrefixIndex;
  readonly load: WorkerLoad;
  /** Answers every held call with a rejection and refuses new calls. */
  close(reason: string): number;
}

interface ModelRouter {
  router: L2Router;
  policy: ResolvedPolicy;
}

interface Waiting {
  call: RouteCall;
  facts: RouteRequestFacts;
  model: string;
  router: L2Router;
  policy: ResolvedPolicy;
  heldSinceMs: number;
  /** When the hold ends with `hold_timeout`; a re-offer under a new policy never extends it. */
  expiresAtMs: number;
  resolve(answer: RouteAnswer): void;
}

function rejectedFrom(d: RouterReject, message?: string): RouteRejected {
  return {
    kind: "rejected",
    reason: d.reason,
    requestClass: d.class,
    observed: d.observed,
    limit: d.limit,
    predictedTtftMs: d.predictedTtftMs,
    retryAfterMs: d.retryAfterMs,
    message:
      message ??
      `router: ${d.reason.replaceAll("_", " ")} (observed ${Math.round(d.observed * 100) / 100}, limit ${
        Math.round(d.limit * 100) / 100
      })`,
  };
}

export function createRouterService(deps: RouterServiceDeps): RouterService {
  const nowMs = deps.nowMs ?? Date.now;
  const random = deps.random ?? Math.random;
  const index = createPrefixIndex({ gapPolicy: deps.gapPolicy ?? "reset" });
  const load = createWorkerLoad({ replicaId: deps.replicaId });
  const routers = new Map<string, ModelRouter>();
  const waiting = new Map<string, Waiting>();
  const listener = deps.listener ?? {};
  let closedReason: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let timerAtMs = Number.POSITIVE_INFINITY;
  let drainQueued = false;
  // Peer deltas pass this gate: only replicas registered in etcd change the shared picture.
  const syncGate = createRouterSyncGate<SyncOutcome>({
    ...deps.syncGate,
    nowMs,
    apply(delta) {
      const outcome = load.applySync(delta);
      if (outcome.kind === "applied" && delta.event.case !== "add") capacityChanged();
      return outcome;
    },
    onFate: (delta, fate) => deps.onSyncFate?.(delta, fate),
    capacityOf: (workerId) => deps.registry.get(workerId)?.worker,
    largestCapacity: () => deps.registry.largestCapacity(),
  });

  function routerFor(model: string): ModelRouter {
    const policy = deps.policyFor(model);
    const entry = routers.get(model);
    if (entry !== undefined && entry.policy === policy) return entry;
    const next: ModelRouter = {
      policy,
      router: createL2Router({ index, load, policy, options: deps.options, random }),
    };
    routers.set(model, next);
    if (entry !== undefined && entry.router.heldCount() > 0) rehold(model, entry, next);
    return next;
  }

  /**
   * Moves the calls held under `old` to `next`. Due expiries and calls that fit now are settled under
   * the old terms first; the rest are re-offered in the new policy's release order (class priority,
   * then expiry) with their own expiry as a deadline, so none waits longer than it was promised. A
   * call the new policy cannot hold (its class is never held, or the new bound is already full) is
   * answered with the new policy's rejection.
   */
  function rehold(model: string, old: ModelRouter, next: ModelRouter): void {
    const now = nowMs();
    drainRouter(model, old.router, now);
    const priority = new Map(next.policy.classes.map((c) => [c.name, c.priority]));
    const fallback = priority.get(next.policy.defaultClass) ?? 0;
    const moved = [...waiting.values()]
      .filter((w) => w.router === old.router)
      .sort(
        (a, b) =>
          (priority.get(b.facts.requestClass) ?? fallback) -
            (priority.get(a.facts.requestClass) ?? fallback) ||
          a.expiresAtMs - b.expiresAtMs ||
          a.heldSinceMs - b.heldSinceMs,
      );
    const workers = deps.registry.forModel(model);
    for (const w of moved) {
      old.router.release(w.call.requestId, now);
      const deadlineMs = Math.min(w.facts.deadlineMs ?? Number.POSITIVE_INFINITY, w.expiresAtMs);
      let result: ReturnType<L2Router["route"]>;
      try {
        result = next.router.route({ ...w.facts, deadlineMs }, workers, now);
      } catch (error) {
        if (!(error instanceof RouterInputError)) throw error;
        // The new policy cannot judge it (e.g. no class at all): answer rather than leave it hanging.
        waiting.delete(w.call.requestId);
        const answer = invalid(w.call, `router: policy changed while held: ${error.message}`);
        listener.rejected?.({
          call: w.call,
          rejected: answer,
          heldMs: now - w.heldSinceMs,
          decisionMs: undefined,
        });
        w.resolve(answer);
        continue;
      }
      if (result.kind === "held") {
        w.router = next.router;
        w.policy = next.policy;
        w.expiresAtMs = result.expiresAtMs;
        continue;
      }
      waiting.delete(w.call.requestId);
      if (result.kind === "routed") {
        deps.publishSync(result.delta);
        const answer = routedAnswer(result.decision, now - w.heldSinceMs);
        listener.routed?.({ call: w.call, routed: answer, decisionMs: undefined });
        w.resolve(answer);
        continue;
      }
      const answer = rejectedFrom(result.decision);
      answer.message = `${answer.message}; the policy changed while the request was held`;
      listener.rejected?.({
        call: w.call,
        rejected: answer,
        heldMs: now - w.heldSinceMs,
        decisionMs: undefined,
      });
      w.resolve(answer);
    }
    armTimer();
  }

  /** The candidate's verdict on the same facts, workers, overlaps, load and clock as the enforcing one. */
  function shadowVerdict(
    facts: RouteRequestFacts,
    workers: ReturnType<WorkerRegistry["forModel"]>,
    now: number,
    policy: ResolvedPolicy,
  ): ShadowVerdict {
    try {
      const decision = decideRoute({
        request: facts,
        workers,
        overlaps: facts.blockHashes.length > 0 ? index.findMatches(facts.blockHashes) : new Map(),
        load,
        policy,
        options: deps.options,
        nowMs: now,
        // Which free worker a random pick lands on does not change the verdict; a constant keeps the
        // enforcing decisions' random stream untouched.
        random: () => 0,
      });
      return routeShadowVerdict(decision, policy);
    } catch (error) {
      if (!(error instanceof RouterInputError)) throw error;
      return { outcome: "reject", reason: "invalid_request", observed: 0, limit: 0 };
    }
  }

  function addressOf(workerId: string): string {
    return deps.registry.get(workerId)?.address ?? "";
  }

  function routedAnswer(d: RouterRouted, heldMs: number): RouteRouted {
    return {
      kind: "routed",
      workerId: d.workerId,
      address: addressOf(d.workerId),
      overlapBlocks: d.overlapBlocks,
      predictedTtftMs: d.predictedTtftMs,
      heldMs,
    };
  }

  function invalid(call: RouteCall, message: string): RouteRejected {
    return {
      kind: "rejected",
      reason: "invalid_request",
      requestClass: call.requestClass,
      observed: 0,
      limit: 0,
      predictedTtftMs: 0,
      retryAfterMs: 0,
      message,
    };
  }

  function shuttingDown(call: RouteCall, policy: ResolvedPolicy): RouteRejected {
    return {
      kind: "rejected",
      reason: "hold_timeout",
      requestClass: call.requestClass,
      observed: 0,
      limit: 0,
      predictedTtftMs: 0,
      retryAfterMs: policy.rejection.retryAfterMinMs,
      message: `router: shutting down (${closedReason ?? "stop"}); retry on another replica`,
    };
  }

  function armTimer(): void {
    let next = Number.POSITIVE_INFINITY;
    for (const { router } of routers.values()) {
      const at = router.nextExpiryMs();
      if (at !== undefined && at < next) next = at;
    }
    if (next === timerAtMs) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    timerAtMs = next;
    if (next === Number.POSITIVE_INFINITY) return;
    // +1 ms: timers may fire a little early, and an entry expires only once its time has passed.
    timer = setTimeout(
      () => {
        timer = undefined;
        timerAtMs = Number.POSITIVE_INFINITY;
        drain();
      },
      Math.max(0, next - nowMs() + 1),
    );
  }

  function drain(): void {
    drainQueued = false;
    const now = nowMs();
    for (const [model, { router }] of routers) drainRouter(model, router, now);
    armTimer();
  }

  function drainRouter(model: string, router: L2Router, now: number): void {
    if (router.heldCount() === 0) return;
    const result = router.drain(deps.registry.forModel(model), now);
    for (const placed of result.routed) {
      deps.publishSync(placed.delta);
      const w = waiting.get(placed.requestId);
      waiting.delete(placed.requestId);
      if (w === undefined) continue;
      const answer = routedAnswer(placed.decision, placed.heldMs);
      listener.routed?.({ call: w.call, routed: answer, decisionMs: undefined });
      w.resolve(answer);
    }
    for (const expired of result.rejected) {
      const w = waiting.get(expired.requestId);
      waiting.delete(expired.requestId);
      if (w === undefined) continue;
      const answer = rejectedFrom(expired.decision);
      answer.retryAfterMs = retryAfterFor(w, now);
      listener.rejected?.({
        call: w.call,
        rejected: answer,
        heldMs: now - w.heldSinceMs,
        decisionMs: undefined,
      });
      w.resolve(answer);
    }
  }

  /**
   * Retry-After of an expired hold: the predicted drain of the best worker for this request as if it
   * arrived now. (The core judges the expired request with its own deadline, which has passed when the
   * caller's deadline ended the hold, and would answer the maximum.)
   */
  function retryAfterFor(w: Waiting, now: number): number {
    const { deadlineMs: _deadline, ...facts } = w.facts;
    const again = decideRoute({
      request: { ...facts, arrivalMs: now },
      workers: deps.registry.forModel(w.model),
      overlaps: facts.blockHashes.length > 0 ? index.findMatches(facts.blockHashes) : new Map(),
      load,
      policy: w.policy,
      options: deps.options,
      nowMs: now,
      random,
    });
    return again.routed ? w.policy.rejection.retryAfterMinMs : again.retryAfterMs;
  }

  /** Capacity may have freed: re-evaluate held calls soon, once per burst of messages. */
  function capacityChanged(): void {
    if (drainQueued || waiting.size === 0) return;
    drainQueued = true;
    setImmediate(drain);
  }

  function settled(answer: RouteAnswer): PendingRoute {
    return { answer: Promise.resolve(answer), cancel() {} };
  }

  function route(call: RouteCall): PendingRoute {
    const started = performance.now();
    const elapsed = () => performance.now() - started;
    const model = call.model;
    const entry = routerFor(model);
    if (closedReason !== undefined) {
      const answer = shuttingDown(call, entry.policy);
      listener.rejected?.({ call, rejected: answer, heldMs: 0, decisionMs: elapsed() });
      return settled(answer);
    }
    const reject = (answer: RouteRejected): PendingRoute => {
      listener.rejected?.({ call, rejected: answer, heldMs: 0, decisionMs: elapsed() });
      return settled(answer);
    };
    if (typeof call.requestId !== "string" || call.requestId.length === 0) {
      return reject(invalid(call, "request_id must be a non-empty string"));
    }
    if (waiting.has(call.requestId) || load.workerOf(call.requestId) !== undefined) {
      return reject(invalid(call, `request ${call.requestId} is already in flight at the router`));
    }
    const workers = deps.registry.forModel(model);
    const now = nowMs();
    const shadowPolicy = deps.shadowFor?.(model);
    let shadow: ShadowVerdict | undefined;
    let result: ReturnType<L2Router["route"]>;
    let facts: RouteRequestFacts;
    try {
      const tokens = promptTokenIds(call);
      // Hash with the block size of the model's workers (one model's engines share a block size).
      const blockSize = workers[0]?.blockSize;
      facts = {
        requestId: call.requestId,
        requestClass: call.requestClass,
        promptTokens: tokens.length,
        blockHashes: blockSize === undefined ? [] : promptBlockHashes(tokens, blockSize),
        arrivalMs: now,
        ...(call.deadlineMs !== undefined ? { deadlineMs: call.deadlineMs } : {}),
        ...(call.excludeWorkerIds !== undefined ? { excludeWorkerIds: call.excludeWorkerIds } : {}),
      };
      // Judged first: the enforcing decision commits its placement to the shared load picture.
      if (shadowPolicy !== undefined) shadow = shadowVerdict(facts, workers, now, shadowPolicy);
      result = entry.router.route(facts, workers, now);
    } catch (error) {
      if (error instanceof RouteRequestError || error instanceof RouterInputError) {
        return reject(invalid(call, error.message));
      }
      throw error;
    }
    if (shadow !== undefined) {
      const enforced: ShadowVerdict =
        result.kind === "routed"
          ? ADMIT_VERDICT
          : result.kind === "held"
            ? { outcome: "hold", reason: undefined, observed: 0, limit: 0 }
            : {
                outcome: "reject",
                reason: result.decision.reason,
                observed: result.decision.observed,
                limit: result.decision.limit,
              };
      listener.shadow?.({ call, comparison: compareShadow(enforced, shadow) });
    }
    if (result.kind === "routed") {
      deps.publishSync(result.delta);
      const answer = routedAnswer(result.decision, 0);
      listener.routed?.({ call, routed: answer, decisionMs: elapsed() });
      return settled(answer);
    }
    if (result.kind === "rejected") return reject(rejectedFrom(result.decision));

    listener.held?.({ call, expiresAtMs: result.expiresAtMs, decisionMs: elapsed() });
    let resolve!: (answer: RouteAnswer) => void;
    const answer = new Promise<RouteAnswer>((r) => {
      resolve = r;
    });
    const w: Waiting = {
      call,
      facts,
      model,
      router: entry.router,
      policy: entry.policy,
      heldSinceMs: now,
      expiresAtMs: result.expiresAtMs,
      resolve,
    };
    waiting.set(call.requestId, w);
    armTimer();
    return {
      answer,
      cancel() {
        if (waiting.get(call.requestId) !== w) return;
        waiting.delete(call.requestId);
        w.router.release(call.requestId, nowMs());
        listener.cancelled?.({ call, heldMs: nowMs() - w.heldSinceMs });
        resolve({
          kind: "rejected",
          reason: "deadline_exceeded",
          requestClass: call.requestClass,
          observed: 0,
          limit: 0,
          predictedTtftMs: 0,
          retryAfterMs: 0,
          message: "router: the caller cancelled while the request was held",
        });
        armTimer();
      },
    };
  }

  return {
    route,

    prefillDone(requestId) {
      const delta = load.prefillDone(requestId, nowMs());
      if (delta === undefined) return false;
      deps.publishSync(delta);
      capacityChanged();
      return true;
    },

    release(requestId) {
      const w = waiting.get(requestId);
      if (w !== undefined) {
        waiting.delete(requestId);
        w.router.release(requestId, nowMs());
        listener.cancelled?.({ call: w.call, heldMs: nowMs() - w.heldSinceMs });
        w.resolve({
          kind: "rejected",
          reason: "deadline_exceeded",
          requestClass: w.call.requestClass,
          observed: 0,
          limit: 0,
          predictedTtftMs: 0,
          retryAfterMs: 0,
          message: "router: released while held",
        });
        armTimer();
        return true;
      }
      // Shared picture: a request routed by a peer replica is freed here too (and the free synced).
      const delta = load.free(requestId, nowMs());
      if (delta === undefined) return false;
      deps.publishSync(delta);
      capacityChanged();
      return true;
    },

    applyKvEvent: (workerId, eventId, event) => index.applyEvent(workerId, eventId, event),

    observe(workerId, observed) {
      load.observe(workerId, observed);
      capacityChanged();
    },

    applySync: (delta) => syncGate.receive(delta),
    replicaRegistered: (replicaId) => syncGate.replicaRegistered(replicaId),

    putWorker(entry) {
      deps.registry.put(entry);
      capacityChanged();
    },

    removeWorker(workerId) {
      const known = deps.registry.remove(workerId);
      index.removeWorker(workerId);
      load.removeWorker(workerId);
      capacityChanged();
      return known;
    },

    forgetReplica(replicaId) {
      syncGate.replicaDeregistered(replicaId);
      load.forgetReplica(replicaId);
    },
    workerCount: () => deps.registry.size(),

    heldCount(requestClass) {
      let n = 0;
      for (const { router } of routers.values()) n += router.heldCount(requestClass);
      return n;
    },

    drain,
    expireStale() {
      syncGate.sweep();
      const expired = load.expire(nowMs());
      if (expired.prefillExpired + expired.requestsExpired > 0) capacityChanged();
      return expired;
    },
    policiesChanged() {
      if (closedReason !== undefined) return;
      for (const model of [...routers.keys()]) routerFor(model);
    },
    index,
    load,

    close(reason) {
      closedReason = reason;
      const n = waiting.size;
      for (const [id, w] of [...waiting]) {
        waiting.delete(id);
        w.router.release(id, nowMs());
        // Its own policy: looking the model's up could switch it and re-offer the calls being closed.
        const answer = shuttingDown(w.call, w.policy);
        listener.rejected?.({
          call: w.call,
          rejected: answer,
          heldMs: nowMs() - w.heldSinceMs,
          decisionMs: undefined,
        });
        w.resolve(answer);
      }
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      timerAtMs = Number.POSITIVE_INFINITY;
      return n;
    },
  };
}
