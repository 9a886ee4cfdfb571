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
import type { PrefixIndex, PrefixMatches } from "./prefix-index.js";
import type { RouterDecisionOptions } from "./router-options.js";
import type { RouterSyncDelta, WorkerLoad, WorkerLoadView } from "./worker-load.js";

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

/** Matched prefix blocks per worker: a `Map` or the index's reusable `PrefixMatches`. */
export type OverlapLookup = Pick<ReadonlyMap<string, number>, "get">;

/**
 * `workers` resolved once to their dense slots in the prefix index and the load (`createL2Router`
 * caches this across calls while the worker list and both slot epochs stay the same), so scoring
 * 128 workers reads two arrays instead of doing two string-keyed lookups and one allocation each.
 * It must describe the same workers, matches and load as the rest of the input: the answers are
 * then identical to the lookups by id.
 */
export interface WorkerSlots {
  /** `index.slotOf(workers[i].workerId)`. */
  indexSlots: Int32Array;
  /** `load.slotOf(workers[i].workerId)`. */
  loadSlots: Int32Array;
  /** The same lookup as `overlaps`, by index slot. */
  overlaps: Pick<PrefixMatches, "depthAt">;
  /** The same load as `load`, by load slot. */
  load: Pick<WorkerLoad, "loadAt">;
}

export interface DecideRouteInput {
  request: RouteRequestFacts;
  workers: readonly RouterWorker[];
  /** `PrefixIndex.matchPrefix(request.blockHashes)` (or `findMatches`). */
  overlaps: OverlapLookup;
  load: Pick<WorkerLoad, "load">;
  /** Optional fast path: the same overlaps and load by dense slot (see `WorkerSlots`). */
  slots?: WorkerSlots;
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

const BUSY_NONE = 0;
const BUSY_DECODE = 1;
const BUSY_PREFILL = 2;
const BUSY_TTFT = 3;
const BUSY_CHECKS = [undefined, "decode_blocks", "pending_prefill", "predicted_ttft"] as const;

/**
 * One worker's numbers, written in place: `decideRoute` scores every worker into the same object, so
 * a decision over 128 workers allocates nothing per worker (allocation is what turns into GC pauses
 * at the tail of the latency distribution).
 */
interface Score {
  overlapBlocks: number;
  uncachedTokens: number;
  activeBlocks: number;
  pendingPrefillTokens: number;
  predictedTtftMs: number;
  cost: number;
  /** BUSY_* of the first busy check that failed. */
  busyCheck: number;
  busyObserved: number;
  busyLimit: number;
  drainMs: number;
}

function newScore(): Score {
  return {
    overlapBlocks: 0,
    uncachedTokens: 0,
    activeBlocks: 0,
    pendingPrefillTokens: 0,
    predictedTtftMs: 0,
    cost: 0,
    busyCheck: BUSY_NONE,
    busyObserved: 0,
    busyLimit: 0,
    drainMs: 0,
  };
}

function eligible(w: RouterWorker, excluded: readonly string[] | undefined): boolean {
  if (excluded?.includes(w.workerId)) return false;
  return w.kvTotalBlocks > 0 && w.maxNumBatchedTokens > 0 && w.blockSize > 0;
}

// Filled by `WorkerLoad.loadAt` for the worker being scored; read at once, never kept.
const scratchView: WorkerLoadView = {
  workerId: "",
  predictedActiveBlocks: 0,
  predictedPendingPrefillTokens: 0,
  predictedRequests: 0,
  observed: undefined,
};

/** Scores `input.workers[i]` into `out`, reading its overlap and load by slot when resolved. */
function scoreAt(i: number, input: DecideRouteInput, cls: ClassObjectives, out: Score): void {
  const worker = input.workers[i]!;
  const slots = input.slots;
  if (slots === undefined) {
    const id = worker.workerId;
    // A full WorkerLoad (what every caller passes) fills the scratch view; `load()` would allocate a
    // view per worker, which escapes into scoreWorker.
    const full = input.load as Partial<Pick<WorkerLoad, "slotOf" | "loadAt">>;
    const view =
      full.slotOf !== undefined && full.loadAt !== undefined
        ? full.loadAt(full.slotOf(id), scratchView)
        : input.load.load(id);
    scoreWorker(worker, input.overlaps.get(id) ?? 0, view, input, cls, out);
    return;
  }
  const matched = slots.overlaps.depthAt(slots.indexSlots[i]!);
  scoreWorker(worker, matched, slots.load.loadAt(slots.loadSlots[i]!, scratchView), input, cls, out);
}

/** Scores one worker for one request into `out`, given its matched prefix blocks and load. */
function scoreWorker(
  worker: RouterWorker,
  matchedBlocks: number,
  view: WorkerLoadView,
  input: DecideRouteInput,
  cls: ClassObjectives,
  out: Score,
): void {
  const { request, policy, options, nowMs } = input;
  const limits = policy.router;
  const overlapBlocks = Math.min(matchedBlocks, request.blockHashes.length);
  // Even a fully cached prompt computes its last token (the engine needs its logits).
  const uncachedTokens = Math.max(
    Math.min(1, request.promptTokens),
    request.promptTokens - overlapBlocks * worker.blockSize,
  );

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

  let busyCheck = BUSY_NONE;
  let busyObserved = 0;
  let busyLimit = 0;
  let drainMs = 0;
  const checks = options.busyChecks;
  if (checks.decodeBlockFraction && activeBlocks > decodeLimitBlocks) {
    busyCheck = BUSY_DECODE;
    busyObserved = activeBlocks;
    busyLimit = decodeLimitBlocks;
    drainMs = Math.max(drainMs, ((activeBlocks - decodeLimitBlocks) / releasePerS) * 1000);
  }
  if (checks.pendingPrefill && pendingPrefillTokens > prefillLimitTokens) {
    if (busyCheck === BUSY_NONE) {
      busyCheck = BUSY_PREFILL;
      busyObserved = pendingPrefillTokens;
      busyLimit = prefillLimitTokens;
    }
    drainMs = Math.max(drainMs, ((pendingPrefillTokens - prefillLimitTokens) / prefillPerS) * 1000);
  }
  if (checks.predictedTtft && predictedTtftMs > ttftLimitMs) {
    if (busyCheck === BUSY_NONE) {
      busyCheck = BUSY_TTFT;
      busyObserved = predictedTtftMs;
      busyLimit = ttftLimitMs;
    }
    // The queue ahead drains one ms per ms; time already waited never comes back, so nothing helps
    // once it alone exceeds the objective (Infinity: clamped to the maximum Retry-After).
    drainMs = Math.max(
      drainMs,
      waitedMs >= ttftLimitMs ? Number.POSITIVE_INFINITY : predictedTtftMs - ttftLimitMs,
    );
  }

  const prefillPressure = (pendingPrefillTokens + uncachedTokens) / Math.max(1, prefillLimitTokens);
  const decodePressure = activeBlocks / worker.kvTotalBlocks;
  out.overlapBlocks = overlapBlocks;
  out.uncachedTokens = uncachedTokens;
  out.activeBlocks = activeBlocks;
  out.pendingPrefillTokens = pendingPrefillTokens;
  out.predictedTtftMs = predictedTtftMs;
  out.cost = limits.overlapScoreWeight * prefillPressure + decodePressure;
  out.busyCheck = busyCheck;
  out.busyObserved = busyObserved;
  out.busyLimit = busyLimit;
  out.drainMs = drainMs;
}

/** Scores one worker for one request. */
export function assessWorker(
  worker: RouterWorker,
  input: DecideRouteInput,
  cls: ClassObjectives,
): WorkerAssessment {
  const s = newScore();
  scoreWorker(
    worker,
    input.overlaps.get(worker.workerId) ?? 0,
    input.load.load(worker.workerId),
    input,
    cls,
    s,
  );
  const check = BUSY_CHECKS[s.busyCheck];
  return {
    workerId: worker.workerId,
    overlapBlocks: s.overlapBlocks,
    uncachedTokens: s.uncachedTokens,
    activeBlocks: s.activeBlocks,
    pendingPrefillTokens: s.pendingPrefillTokens,
    predictedTtftMs: s.predictedTtftMs,
    cost: s.cost,
    busy: check === undefined ? undefined : { check, observed: s.busyObserved, limit: s.busyLimit },
    drainMs: s.drainMs,
  };
}

/** Assessments of every eligible worker, in `workers` order (for decision events). */
export function assessWorkers(input: DecideRouteInput): WorkerAssessment[] {
  const cls = classOf(input.request.requestClass, input.policy);
  const excluded = input.request.excludeWorkerIds;
  const out: WorkerAssessment[] = [];
  for (const w of input.workers) {
    if (eligible(w, excluded)) out.push(assessWorker(w, input, cls));
  }
  return out;
}

// Costs and worker positions of the free workers, for the softmax pick (temperature > 0); grown on
// demand and reused across calls (decideRoute is synchronous and never re-entered by the `load` and
// `random` it calls).
let freeCosts = new Float64Array(256);
let freeAt = new Int32Array(256);

/** Selects a worker, or says why none: `all_engines_busy` / `predicted_ttft` mean "hold or reject". */
export function decideRoute(input: DecideRouteInput): RouteDecision {
  const { request, policy, nowMs, workers } = input;
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
  if (freeCosts.length < workers.length) {
    freeCosts = new Float64Array(workers.length * 2);
    freeAt = new Int32Array(workers.length * 2);
  }
  // One pass over the workers: the cheapest free one (ties to the larger overlap, then input order),
  // the costliest free one (softmax span), and the busy one predicted to drain first.
  const excluded = request.excludeWorkerIds;
  const score = newScore();
  let assessed = 0;
  let free = 0;
  let best = -1;
  let bestCost = 0;
  let bestOverlap = 0;
  let worstCost = 0;
  let drainBest = -1;
  let drainBestMs = 0;
  for (let i = 0; i < workers.length; i++) {
    const w = workers[i]!;
    if (!eligible(w, excluded)) continue;
    scoreAt(i, input, cls, score);
    assessed++;
    if (drainBest < 0 || score.drainMs < drainBestMs) {
      drainBest = i;
      drainBestMs = score.drainMs;
    }
    if (score.busyCheck !== BUSY_NONE) continue;
    const cost = score.cost;
    freeCosts[free] = cost;
    freeAt[free] = i;
    free++;
    if (best < 0 || cost < bestCost || (cost === bestCost && score.overlapBlocks > bestOverlap)) {
      best = i;
      bestCost = cost;
      bestOverlap = score.overlapBlocks;
    }
    if (free === 1 || cost > worstCost) worstCost = cost;
  }
  if (assessed === 0) {
    return rejection("no_engines", cls.name, 0, 0, 0, Number.POSITIVE_INFINITY, policy);
  }
  if (free > 0) {
    const temperature = input.options.temperature;
    let chosen = best;
    if (temperature !== 0 && free > 1 && worstCost !== bestCost) {
      const span = worstCost - bestCost;
      const u = input.random();
      let total = 0;
      for (let k = 0; k < free; k++) {
        const weight = Math.exp(-(freeCosts[k]! - bestCost) / span / temperature);
        freeCosts[k] = weight;
        total += weight;
      }
      let r = u * total;
      chosen = freeAt[free - 1]!;
      for (let k = 0; k < free; k++) {
        r -= freeCosts[k]!;
        if (r < 0) {
          chosen = freeAt[k]!;
          break;
        }
      }
    }
    const worker = workers[chosen]!;
    scoreAt(chosen, input, cls, score);
    return {
      routed: true,
      workerId: worker.workerId,
      overlapBlocks: score.overlapBlocks,
      predictedTtftMs: score.predictedTtftMs,
      uncachedTokens: score.uncachedTokens,
      blocks: Math.ceil(request.promptTokens / worker.blockSize),
    };
  }
  scoreAt(drainBest, input, cls, score);
  const reason = score.busyCheck === BUSY_TTFT ? "predicted_ttft" : "all_engines_busy";
  return rejection(
    reason,
    cls.name,
    score.busyObserved,
    score.busyLimit,
    score.predictedTtftMs,
    score.drainMs,
    policy,
  );
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

// For a prompt without block hashes (routed on load only): no overlap anywhere.
const NO_OVERLAPS: OverlapLookup & Pick<PrefixMatches, "depthAt"> = {
  get: () => undefined,
  depthAt: () => 0,
};

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

  // Slots of the last worker list routed against. The router shell passes the registry's list,
  // which stays the same array until a registration changes, so this is resolved once per change of
  // that list or of either slot assignment, not per request. The ids are compared every call anyway
  // (pointer comparisons, in case a caller refills one array in place).
  let cachedWorkers: readonly RouterWorker[] | undefined;
  const cachedIds: string[] = [];
  let cachedIndexEpoch = -1;
  let cachedLoadEpoch = -1;
  let indexSlots = new Int32Array(0);
  let loadSlots = new Int32Array(0);

  function resolveSlots(workers: readonly RouterWorker[]): void {
    let same =
      workers === cachedWorkers &&
      workers.length === cachedIds.length &&
      index.slotEpoch === cachedIndexEpoch &&
      load.slotEpoch === cachedLoadEpoch;
    for (let i = 0; same && i < workers.length; i++) same = workers[i]!.workerId === cachedIds[i];
    if (same) return;
    if (indexSlots.length < workers.length) {
      indexSlots = new Int32Array(workers.length * 2);
      loadSlots = new Int32Array(workers.length * 2);
    }
    cachedIds.length = workers.length;
    for (let i = 0; i < workers.length; i++) {
      const id = workers[i]!.workerId;
      cachedIds[i] = id;
      indexSlots[i] = index.slotOf(id);
      loadSlots[i] = load.slotOf(id);
    }
    cachedWorkers = workers;
    cachedIndexEpoch = index.slotEpoch;
    cachedLoadEpoch = load.slotEpoch;
  }

  function attempt(
    request: RouteRequestFacts,
    workers: readonly RouterWorker[],
    nowMs: number,
  ): RouteDecision {
    // The walk first: it can assign no slot, but resolving after it keeps the order obvious.
    const overlaps = request.blockHashes.length > 0 ? index.matchPrefix(request.blockHashes) : NO_OVERLAPS;
    resolveSlots(workers);
    return decideRoute({
      request,
      workers,
      overlaps,
      load,
      slots: { indexSlots, loadSlots, overlaps, load },
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
