// The whole L2 (router) decision: which worker gets a request, or why none does (DESIGN §1, §5).
//
//   1. Candidates: the model's live workers the caller passes, minus `excludeWorkerIds`.
//   2. Per worker: overlap (prefix index) → uncached tokens; load = predicted (what the router
//      replicas routed) combined with the engine's fresh observation by taking the larger of the two
//      — the prediction is immediate, the observation catches work the router never saw, and
//      neither overwrites the other (they are only combined here, for this one decision).
//   3. Predicted TTFT = time already spent at the router (held) + (pending prefill + own uncached
//      tokens) / measured prefill rate.
//   4. Busy (each check optional): active blocks / capacity > busyDecodeBlockFraction; pending prefill
//      > busyPendingPrefillTokens (or busyPrefillBatchRatio × max_num_batched_tokens); predicted TTFT
//      > busyTtftObjectiveFraction × the class's TTFT objective.
//   5. Among non-busy workers, cost = overlapScoreWeight × prefill pressure + decode pressure, where
//      prefill pressure = (pending + own uncached tokens) / the worker's pending-prefill threshold and
//      decode pressure = active blocks / capacity: each is 0 when idle and ~1 at its busy threshold,
//      so the two terms are comparable across differently sized workers. Temperature 0 picks the
//      cheapest; above 0, softmax over costs normalized to [0, 1] with the injected RNG.
//   6. All busy: hold (bounded per class, `hold-queue.ts`) or reject. The rejection carries the
//      numbers of the best worker (the one predicted to drain first) and a Retry-After equal to that
//      drain time — excess pending prefill at the prefill rate, excess blocks at the release rate, or
//      excess predicted TTFT — clamped to the policy's bounds.
import type { BlockHash } from "../engine/types.js";
import type { ClassObjectives, ResolvedPolicy } from "../policy/types.js";
import { RouterInputError } from "./errors.js";
import { createHoldQueue, type HoldQueue } from "./hold-queue.js";
import type { PrefixIndex } from "./prefix-index.js";
import type { RouterDecisionOptions } from "./router-options.js";
import type { RouterSyncDelta, WorkerLoad } from "./worker-load.js";

/** The slice of the policy L2 reads. */
export type RouterPolicy = Pick<ResolvedPolicy, "classes" | "defaultClass" | "router" | "rejection">;

/** A live worker serving the model (from its etcd registration). */
export interface RouterWorker {
  workerId: string;
  kvTotalBlocks: number;
  maxNumBatchedTokens: number;
  /** Tokens per KV block, as the engine hashes them. */
  blockSize: number;
}

export interface RouteRequestFacts {
  requestId: string;
  /** Class decided by the ingress; an unknown name is judged as the policy's default class. */
  requestClass: string;
  /** Prompt length in tokens. */
  promptTokens: number;
  /** Sequence hashes of the full prompt blocks (empty when routed on text only: load-based routing). */
  blockHashes: readonly BlockHash[];
  /** When the request reached the router; time since then counts towards its predicted TTFT. */
  arrivalMs: number;
  /** Absolute deadline after which the request is useless; undefined = none. */
  deadlineMs?: number;
  excludeWorkerIds?: readonly string[];
}

export type RouterRejectReason =
  | "no_engines"
  | "all_engines_busy"
  | "predicted_ttft"
  | "hold_queue_full"
  | "hold_timeout"
  | "deadline_exceeded";

/** A placement: mirrors `sluice.v1.RouteDecision`. */
export interface RouterRouted {
  readonly routed: true;
  readonly workerId: string;
  readonly overlapBlocks: number;
  readonly predictedTtftMs: number;
  /** Prompt tokens the worker must prefill. */
  readonly uncachedTokens: number;
  /** Blocks the request occupies at first token (partial block included). */
  readonly blocks: number;
}

/** A refusal: same shape as the ingress's, mirrors `sluice.v1.Rejection`. */
export interface RouterReject {
  readonly routed: false;
  readonly level: "router";
  readonly reason: RouterRejectReason;
  readonly class: string;
  /** The quantity compared: blocks (decode fraction check), tokens (prefill check), ms (TTFT, hold). */
  readonly observed: number;
  readonly limit: number;
  /** Predicted TTFT on the best worker, 0 when none was computed. */
  readonly predictedTtftMs: number;
  readonly retryAfterMs: number;
}

export type RouteDecision = RouterRouted | RouterReject;

/** Per-worker numbers behind a decision, exported for decision events and tests. */
export interface WorkerAssessment {
  workerId: string;
  overlapBlocks: number;
  uncachedTokens: number;
  activeBlocks: number;
  pendingPrefillTokens: number;
  predictedTtftMs: number;
  cost: number;
  /** First busy check that failed, undefined when not busy. */
  busy:
    | { check: "decode_blocks" | "pending_prefill" | "predicted_ttft"; observed: number; limit: number }
    | undefined;
  /** Predicted time until every failed check clears; 0 when not busy. */
  drainMs: number;
}

export interface DecideRouteInput {
  request: RouteRequestFacts;
  workers: readonly RouterWorker[];
  /** `PrefixIndex.findMatches(request.blockHashes)`. */
  overlaps: ReadonlyMap<string, number>;
  load: Pick<WorkerLoad, "load">;
  policy: RouterPolicy;
  options: RouterDecisionOptions;
  nowMs: number;
  /** Uniform [0, 1); only used when temperature > 0. */
  random: () => number;
}

function classOf(name: string, policy: RouterPolicy): ClassObjectives {
  const found =
    policy.classes.find((c) => c.name === name) ?? policy.classes.find((c) => c.name === policy.defaultClass);
  if (found === undefined) throw new RouterInputError(`policy has no class ${name} and no default class`);
  return found;
}

function clampRetryAfter(drainMs: number, policy: RouterPolicy): number {
  const { retryAfterMinMs, retryAfterMaxMs } = policy.rejection;
  const bounded =
    !(drainMs >= 0) || drainMs > retryAfterMaxMs ? retryAfterMaxMs : Math.max(drainMs, retryAfterMinMs);
  return Math.ceil(bounded);
}

function rejection(
  reason: RouterRejectReason,
  cls: string,
  observed: number,
  limit: number,
  predictedTtftMs: number,
  drainMs: number,
  policy: RouterPolicy,
): RouterReject {
  return {
    routed: false,
    level: "router",
    reason,
    class: cls,
    observed,
    limit,
    predictedTtftMs,
    retryAfterMs: clampRetryAfter(drainMs, policy),
  };
}

function checkFacts(request: RouteRequestFacts, nowMs: number): void {
  if (typeof request.requestId !== "string" || request.requestId.length === 0) {
    throw new RouterInputError("route: requestId must be a non-empty string");
  }
  if (!Number.isInteger(request.promptTokens) || request.promptTokens < 0) {
    throw new RouterInputError(`route ${request.requestId}: promptTokens must be an integer ≥ 0`);
  }
  if (!Array.isArray(request.blockHashes))
    throw new RouterInputError(`route ${request.requestId}: blockHashes must be an array`);
  if (!Number.isFinite(request.arrivalMs) || !Number.isFinite(nowMs)) {
    throw new RouterInputError(`route ${request.requestId}: arrivalMs and nowMs must be finite`);
  }
}

/** Scores one worker for one request. */
export function assessWorker(
  worker: RouterWorker,
  input: DecideRouteInput,
  cls: ClassObjectives,
): WorkerAssessment {
  const { request, policy, options, nowMs } = input;
  const limits = policy.router;
  const overlapBlocks = Math.min(input.overlaps.get(worker.workerId) ?? 0, request.blockHashes.length);
  // Even a fully cached prompt computes its last token (the engine needs its logits).
  const uncachedTokens = Math.max(
    Math.min(1, request.promptTokens),
    request.promptTokens - overlapBlocks * worker.blockSize,
  );

  const view = input.load.load(worker.workerId);
  const observed =
    view.observed !== undefined && nowMs - view.observed.observedAtMs <= options.maxObservedAgeMs
      ? view.observed
      : undefined;
  const activeBlocks = Math.max(view.predictedActiveBlocks, observed?.kvUsedBlocks ?? 0);
  const pendingPrefillTokens = Math.max(
    view.predictedPendingPrefillTokens,
    observed?.pendingPrefillTokens ?? 0,
  );
  const prefillPerS =
    observed !== undefined && observed.prefillTokensPerS > 0
      ? observed.prefillTokensPerS
      : options.defaultPrefillTokensPerS;
  const releasePerS =
    observed !== undefined && observed.kvBlocksReleasedPerS > 0
      ? observed.kvBlocksReleasedPerS
      : options.defaultKvReleaseFractionPerS * worker.kvTotalBlocks;

  const waitedMs = Math.max(0, nowMs - request.arrivalMs);
  const predictedTtftMs = waitedMs + ((pendingPrefillTokens + uncachedTokens) / prefillPerS) * 1000;

  const decodeLimitBlocks = limits.busyDecodeBlockFraction * worker.kvTotalBlocks;
  const prefillLimitTokens =
    limits.busyPendingPrefillTokens > 0
      ? limits.busyPendingPrefillTokens
      : limits.busyPrefillBatchRatio * worker.maxNumBatchedTokens;
  const ttftLimitMs = limits.busyTtftObjectiveFraction * cls.ttftObjectiveMs;

  let busy: WorkerAssessment["busy"];
  let drainMs = 0;
  const checks = options.busyChecks;
  if (checks.decodeBlockFraction && activeBlocks > decodeLimitBlocks) {
    busy ??= { check: "decode_blocks", observed: activeBlocks, limit: decodeLimitBlocks };
    drainMs = Math.max(drainMs, ((activeBlocks - decodeLimitBlocks) / releasePerS) * 1000);
  }
  if (checks.pendingPrefill && pendingPrefillTokens > prefillLimitTokens) {
    busy ??= { check: "pending_prefill", observed: pendingPrefillTokens, limit: prefillLimitTokens };
    drainMs = Math.max(drainMs, ((pendingPrefillTokens - prefillLimitTokens) / prefillPerS) * 1000);
  }
  if (checks.predictedTtft && predictedTtftMs > ttftLimitMs) {
    busy ??= { check: "predicted_ttft", observed: predictedTtftMs, limit: ttftLimitMs };
    // The queue ahead drains one ms per ms; time already waited never comes back, so nothing helps
    // once it alone exceeds the objective (Infinity: clamped to the maximum Retry-After).
    drainMs = Math.max(
      drainMs,
      waitedMs >= ttftLimitMs ? Number.POSITIVE_INFINITY : predictedTtftMs - ttftLimitMs,
    );
  }

  const prefillPressure = (pendingPrefillTokens + uncachedTokens) / Math.max(1, prefillLimitTokens);
  const decodePressure = activeBlocks / worker.kvTotalBlocks;
  const cost = limits.overlapScoreWeight * prefillPressure + decodePressure;
  return {
    workerId: worker.workerId,
    overlapBlocks,
    uncachedTokens,
    activeBlocks,
    pendingPrefillTokens,
    predictedTtftMs,
    cost,
    busy,
    drainMs,
  };
}

function pick(candidates: WorkerAssessment[], temperature: number, random: () => number): WorkerAssessment {
  let best = candidates[0]!;
  let worst = best.cost;
  for (const c of candidates) {
    // Ties go to the larger overlap (keeps a prefix's requests together), then to input order.
    if (c.cost < best.cost || (c.cost === best.cost && c.overlapBlocks > best.overlapBlocks)) best = c;
    if (c.cost > worst) worst = c.cost;
  }
  if (temperature === 0 || candidates.length === 1 || worst === best.cost) return best;
  const span = worst - best.cost;
  const weights = candidates.map((c) => Math.exp(-(c.cost - best.cost) / span / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let r = random() * total;
  for (let i = 0; i < candidates.length; i++) {
    r -= weights[i]!;
    if (r < 0) return candidates[i]!;
  }
  return candidates[candidates.length - 1]!;
}

/** Assessments of every eligible worker, in `workers` order (for decision events). */
export function assessWorkers(input: DecideRouteInput): WorkerAssessment[] {
  const cls = classOf(input.request.requestClass, input.policy);
  const excluded = input.request.excludeWorkerIds;
  const out: WorkerAssessment[] = [];
  for (const w of input.workers) {
    if (excluded?.includes(w.workerId)) continue;
    if (!(w.kvTotalBlocks > 0) || !(w.maxNumBatchedTokens > 0) || !(w.blockSize > 0)) continue;
    out.push(assessWorker(w, input, cls));
  }
  return out;
}

/** Selects a worker, or says why none: `all_engines_busy` / `predicted_ttft` mean "hold or reject". */
export function decideRoute(input: DecideRouteInput): RouteDecision {
  const { request, policy, nowMs } = input;
  checkFacts(request, nowMs);
  const cls = classOf(request.requestClass, policy);
  if (request.deadlineMs !== undefined && request.deadlineMs > 0 && nowMs >= request.deadlineMs) {
    return rejection(
      "deadline_exceeded",
      cls.name,
      nowMs,
      request.deadlineMs,
      0,
      Number.POSITIVE_INFINITY,
      policy,
    );
  }
  const assessed = assessWorkers(input);
  if (assessed.length === 0) {
    return rejection("no_engines", cls.name, 0, 0, 0, Number.POSITIVE_INFINITY, policy);
  }
  const free = assessed.filter((a) => a.busy === undefined);
  if (free.length > 0) {
    const chosen = pick(free, input.options.temperature, input.random);
    const worker = input.workers.find((w) => w.workerId === chosen.workerId)!;
    return {
      routed: true,
      workerId: chosen.workerId,
      overlapBlocks: chosen.overlapBlocks,
      predictedTtftMs: chosen.predictedTtftMs,
      uncachedTokens: chosen.uncachedTokens,
      blocks: Math.ceil(request.promptTokens / worker.blockSize),
    };
  }
  let best = assessed[0]!;
  for (const a of assessed) if (a.drainMs < best.drainMs) best = a;
  const busy = best.busy!;
  const reason = busy.check === "predicted_ttft" ? "predicted_ttft" : "all_engines_busy";
  return rejection(reason, cls.name, busy.observed, busy.limit, best.predictedTtftMs, best.drainMs, policy);
}

// ─── The stateful router: index + predicted load + hold queue around `decideRoute` ───────────────

export interface L2RouterDeps {
  index: PrefixIndex;
  load: WorkerLoad;
  policy: RouterPolicy;
  options: RouterDecisionOptions;
  random: () => number;
}

/** What `route` did. `delta` is to be published on `router.sync`. */
export type L2RouteResult =
  | { kind: "routed"; decision: RouterRouted; delta: RouterSyncDelta; heldMs: number }
  | { kind: "held"; expiresAtMs: number }
  | { kind: "rejected"; decision: RouterReject };

export interface L2DrainResult {
  routed: { requestId: string; decision: RouterRouted; delta: RouterSyncDelta; heldMs: number }[];
  rejected: { requestId: string; decision: RouterReject }[];
}

export interface L2Router {
  /** Places, holds or rejects a request against the given live workers of its model. */
  route(request: RouteRequestFacts, workers: readonly RouterWorker[], nowMs: number): L2RouteResult;
  /** Re-evaluates held requests (call when capacity frees and at `nextExpiryMs()`). */
  drain(workers: readonly RouterWorker[], nowMs: number): L2DrainResult;
  /** First token of a routed request; undefined when unknown. */
  prefillDone(requestId: string, nowMs: number): RouterSyncDelta | undefined;
  /** End of a request: frees its predicted load, or withdraws it from the hold queue. */
  release(requestId: string, nowMs: number): { released: boolean; delta: RouterSyncDelta | undefined };
  nextExpiryMs(): number | undefined;
  heldCount(requestClass?: string): number;
}

export function createL2Router(deps: L2RouterDeps): L2Router {
  const { index, load, policy, options } = deps;
  const hold: HoldQueue<RouteRequestFacts> = createHoldQueue({
    classes: policy.classes.map((c) => ({
      name: c.name,
      priority: c.priority,
      maxHeld: policy.router.classMaxHeld[c.name] ?? 0,
    })),
    maxHoldMs: policy.router.maxHoldMs,
  });

  function attempt(
    request: RouteRequestFacts,
    workers: readonly RouterWorker[],
    nowMs: number,
  ): RouteDecision {
    return decideRoute({
      request,
      workers,
      overlaps: request.blockHashes.length > 0 ? index.findMatches(request.blockHashes) : new Map(),
      load,
      policy,
      options,
      nowMs,
      random: deps.random,
    });
  }

  function commit(request: RouteRequestFacts, decision: RouterRouted, nowMs: number): RouterSyncDelta {
    return load.route(
      {
        requestId: request.requestId,
        workerId: decision.workerId,
        blockHashes: request.blockHashes,
        blocks: decision.blocks,
        prefillTokens: decision.uncachedTokens,
        overlapBlocks: decision.overlapBlocks,
      },
      nowMs,
    );
  }

  const holdable = (d: RouteDecision): d is RouterReject =>
    !d.routed && (d.reason === "all_engines_busy" || d.reason === "predicted_ttft");

  return {
    route(request, workers, nowMs) {
      if (load.workerOf(request.requestId) !== undefined) {
        throw new RouterInputError(`route: request ${request.requestId} is already routed`);
      }
      const decision = attempt(request, workers, nowMs);
      if (decision.routed) {
        return { kind: "routed", decision, delta: commit(request, decision, nowMs), heldMs: 0 };
      }
      if (!holdable(decision)) return { kind: "rejected", decision };
      const cls = classOf(request.requestClass, policy).name;
      const offered = hold.offer(request.requestId, cls, request, nowMs, request.deadlineMs || undefined);
      if (offered.accepted) return { kind: "held", expiresAtMs: offered.expiresAtMs };
      // The class cannot be held (full, or never held): the busy verdict stands when nothing is held
      // for it by design; a full queue is its own reason.
      if (offered.maxHeld === 0) return { kind: "rejected", decision };
      return {
        kind: "rejected",
        decision: rejection(
          "hold_queue_full",
          cls,
          offered.held,
          offered.maxHeld,
          decision.predictedTtftMs,
          Math.max(0, decision.retryAfterMs),
          policy,
        ),
      };
    },

    drain(workers, nowMs) {
      const out: L2DrainResult = { routed: [], rejected: [] };
      const result = hold.drain(nowMs, (entry) => {
        const decision = attempt(entry.item, workers, nowMs);
        // Still busy (or no engine right now): stays held until capacity frees or it expires.
        if (!decision.routed) return undefined;
        // Committed at once so the next held request sees this one's load.
        return { decision, delta: commit(entry.item, decision, nowMs) };
      });
      for (const { entry, heldMs } of result.expired) {
        // Retry-After from the current best worker's drain, as for any busy rejection. The
        // request's own deadline has passed (that may be why it expired); judged with it, the
        // attempt would answer "deadline exceeded" with no drain estimate, so it is left out.
        const now = attempt({ ...entry.item, deadlineMs: undefined }, workers, nowMs);
        const drainMs = now.routed ? 0 : now.retryAfterMs;
        out.rejected.push({
          requestId: entry.id,
          decision: rejection(
            "hold_timeout",
            entry.requestClass,
            heldMs,
            entry.expiresAtMs - entry.enqueuedMs,
            0,
            drainMs,
            policy,
          ),
        });
      }
      for (const { entry, result: placed, heldMs } of result.placed) {
        out.routed.push({ requestId: entry.id, decision: placed.decision, delta: placed.delta, heldMs });
      }
      return out;
    },

    prefillDone: (requestId, nowMs) => load.prefillDone(requestId, nowMs),

    release(requestId, nowMs) {
      if (hold.remove(requestId) !== undefined) return { released: true, delta: undefined };
      const delta = load.free(requestId, nowMs);
      return { released: delta !== undefined, delta };
    },

    nextExpiryMs: () => hold.nextExpiryMs(),
    heldCount: (requestClass) => hold.size(requestClass),
  };
}
