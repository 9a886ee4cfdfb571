// The L3 (engine-scheduler) decision: the whole of Level 3 in one file (DESIGN §1, §5; issue 6).
//
// The sidecar sees the engine's exact queue (it owns it), the requests inside the engine, and the
// token timings it proxies. With those it:
//   • on arrival, rejects when the queue is full for the class (`queue_full`) or when the predicted
//     TTFT misses the class objective minus the margin (`predicted_ttft`); otherwise queues;
//   • on every `reevaluate(nowMs)`, walks the queue in leaving order and rejects what has waited longer
//     than `max_queue_ms` (`queue_timeout`) or now predicts a TTFT over the limit (`predicted_ttft`);
//   • in `nextAdmission`, releases the head of the queue into a free engine slot unless the predicted
//     mean inter-token latency of a running request with it added would exceed that request's class ITL
//     objective, or the decode step would exceed the head's own (`itl_guard`, a hold, never a rejection).
//
// ITL guard. Engines prefill in chunks of at most B = max_num_batched_tokens tokens, and a step that carries
// a chunk also carries every running decode: with the Dynamo profile an 8192-token chunk makes a ~175 ms
// step, so prefill — not batch size — is what stretches the running requests' gaps. Admitting the head
// commits the engine to W = pending_engine + own(head) uncached tokens of prefill, C = ⌈W / B⌉ steps that
// each carry a chunk, costing in total (beyond their decode) P = C·a + b·W, where a + b·W is the online
// prefill model (a = per-pass fixed cost, b = ms per token). A running request i whose response has N_i
// output tokens is judged on its mean ITL over the whole response, (last − first token) / (N_i − 1), so
// it can absorb a few slow steps if it has many tokens. Its predicted mean ITL is
//   ITL_i = g + min(R_i, C)·(P / C) / (N_i − 1)
// where g = decode step of the batch with the head added (online decode model at batch n+1 and KV usage
// with the head's prompt), R_i = tokens it still has to emit, of which at most one per step can meet a
// chunk. Derivation: its gaps so far are assumed to have run at g (the decode model learns from the real
// gaps, slow steps included, so g tracks the recent pace and closes the loop: after a run of chunked
// steps g rises and the guard tightens); the remaining R_i gaps take R_i·g plus the chunks they meet, so
// (last − first) = (N_i − 1)·g + min(R_i, C)·P/C. R_i = N_i − 1 − (time since its first token) / g
// (N_i − 1 before its first token); N_i = the request's `maxTokens` when the shell passes it, else
// `itlGuardAssumedOutputTokens` (documented assumption). Hold when ITL_i > ITL objective of i's class for
// any running i, or g > the head's own objective. O(running) per call, no allocation.
// Known approximations: progress is counted at g, so a request whose past gaps met chunks is thought
// further along than it is (lenient); committed chunks count against requests still waiting for their
// own first token although only later chunks reach their gaps (careful); `maxTokens` is an upper bound
// in real serving, so a response ending early at EOS had fewer gaps to absorb chunks than assumed.
// Measured in `sluice sim` (Mooncake/Azure traces at 2× capacity): with `maxTokens` = the real output
// length admitted attainment is ≥ 99 % at no goodput cost; without it the assumed length trades
// attainment for goodput (32: more goodput; 8: ≥ 99 % but ~6 % less goodput on long-output traffic).
//
// Predicted TTFT of a queued request r (all in ms, from when its TTFT clock started upstream):
//   elapsed(r) + max( prefill(pending_engine + ahead_queue(r) + own(r)),
//                     slots_short(r) · slot_release_interval + prefill(own(r)) )
// where prefill(W) = a + b·W is the online prefill model (engine admission → first token given W
// tokens of prefill work), pending_engine = uncached tokens of requests in the engine without a first
// token, ahead_queue(r) = uncached tokens queued before r, slots_short(r) = how many releases from the
// queue must happen before r's turn (0 when the usable free slots cover everything ahead; no slot is
// usable while the ITL guard holds the head), and slot_release_interval = learned mean interval
// between releases from a queue that stayed non-empty. Prefill work and waiting for a turn overlap in
// time, hence the max.
//
// No starvation under the ITL guard: the guard never holds while the engine is empty (nothing to
// protect, and a batch of one is the best ITL on offer), and everything running has a bounded
// output, so the batch always shrinks until the head is admitted. A held request therefore either
// enters the engine or, if its deadline passes first, is rejected by `reevaluate` with
// `predicted_ttft` / `queue_timeout` — it never waits unboundedly. The guard looks at the head only,
// so lower-priority requests never overtake a held higher-priority one.
//
// Idle probe. The prediction learns only from requests that reach the engine. After a stretch where the
// engine really was slow (a starved host, a noisy neighbour), the learned prefill cost can predict a miss
// for every request; all are rejected, nothing new is measured, and the engine sits idle for good — seen
// in a soak on an overloaded machine (5.7 s learned per-pass cost, 0 completions for 13 minutes). So an
// engine with nothing queued and nothing inside admits one such request per `idleProbeIntervalMs`
// anyway: nobody else can be slowed by it, and its first token corrects the model. Its predicted TTFT is
// audited like any other, and `reevaluate` spares it the `predicted_ttft` check (not `queue_timeout`).
//
// Retry-After is the predicted drain: for `predicted_ttft` the time until a fresh copy of the request
// would predict within its limit (its excess), for `queue_full` / `queue_timeout` the time until the
// work ahead of it clears at the learned rate; both clamped to the policy's bounds.
import { BUILT_IN_CLASSES, DEFAULT_POLICY } from "../policy/defaults.js";
import type { ClassObjectives, EngineLimits, RejectionSettings } from "../policy/types.js";
import { DuplicateRequestIdError, EngineSchedulerConfigError, InvalidSchedulerInputError } from "./errors.js";
import {
  createOnlineModels,
  DEFAULT_PREFILL_SEED_CHUNK_TOKENS,
  dynamoPrefillSeed,
  type OnlineModelEstimates,
  type OnlineModelOptions,
  type OnlineModels,
} from "./online-models.js";
import {
  createPredictionAudit,
  type PredictionAudit,
  type PredictionAuditResult,
} from "./prediction-audit.js";
import { createRequestQueue, type RequestQueue } from "./request-queue.js";

export interface EngineDecisionOptions {
  /** Request classes (policy `classes`); at least one. */
  classes: readonly ClassObjectives[];
  /** Policy `engine` section: max_inflight, max_queue, max_queue_ms, ttft_margin_ms. */
  engine: EngineLimits;
  /** Clamp of Retry-After (policy `rejection`). */
  retryAfterMinMs: number;
  retryAfterMaxMs: number;
  /** The engine's max_num_seqs; the in-engine limit when `engine.maxInflight` is 0. */
  engineMaxNumSeqs: number;
  /** KV capacity of the engine in tokens (blocks × block size); 0 = unknown, the ITL guard then ignores the newcomer's KV. */
  engineKvTotalTokens: number;
  /** Seeds and windows of the online models. Without prefill seeds, they come from the Dynamo profile at `engineMaxNumBatchedTokens`. */
  models: Partial<OnlineModelOptions>;
  /** The engine's max_num_batched_tokens: prefill chunk per step (ITL guard) and the prefill seed's chunk. */
  engineMaxNumBatchedTokens: number;
  /**
   * Output tokens assumed for a running request whose arrival carried no `maxTokens` (ITL guard): the
   * number of gaps its mean ITL is averaged over. Smaller is more careful with short responses.
   */
  itlGuardAssumedOutputTokens: number;
  /**
   * An empty engine (nothing queued, nothing inside) admits one request per this interval even when the
   * prediction says it misses its objective: the probe. 0 turns probing off. See "Idle probe" above.
   */
  idleProbeIntervalMs: number;
}

/** One probe a second: at most one possibly late request per second on an engine that is otherwise idle. */
export const DEFAULT_IDLE_PROBE_INTERVAL_MS = 1_000;

/**
 * Without `maxTokens` the guard cannot tell a 4-token answer from a 500-token one; the shared traces'
 * output medians are 13 (Azure code), 69 (Mooncake synthetic) and 350 (Mooncake conversation) tokens.
 */
export const DEFAULT_ITL_GUARD_ASSUMED_OUTPUT_TOKENS = 32;

export const DEFAULT_ENGINE_DECISION_OPTIONS: Readonly<EngineDecisionOptions> = Object.freeze({
  classes: BUILT_IN_CLASSES,
  engine: DEFAULT_POLICY.engine,
  retryAfterMinMs: DEFAULT_POLICY.rejection.retryAfterMinMs,
  retryAfterMaxMs: DEFAULT_POLICY.rejection.retryAfterMaxMs,
  engineMaxNumSeqs: 256,
  engineKvTotalTokens: 0,
  models: Object.freeze({}),
  engineMaxNumBatchedTokens: DEFAULT_PREFILL_SEED_CHUNK_TOKENS,
  itlGuardAssumedOutputTokens: DEFAULT_ITL_GUARD_ASSUMED_OUTPUT_TOKENS,
  idleProbeIntervalMs: DEFAULT_IDLE_PROBE_INTERVAL_MS,
});

/** Options with defaults applied; throws `EngineSchedulerConfigError` on invalid values. */
export function engineDecisionOptionsWithDefaults(
  options: Partial<EngineDecisionOptions> = {},
): EngineDecisionOptions {
  const o: EngineDecisionOptions = { ...DEFAULT_ENGINE_DECISION_OPTIONS };
  for (const [k, v] of Object.entries(options))
    if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  const int = (name: string, v: number, min: number) => {
    if (!(Number.isInteger(v) && v >= min))
      throw new EngineSchedulerConfigError(`engine decision: ${name} must be an integer ≥ ${min}, got ${v}`);
  };
  int("idleProbeIntervalMs", o.idleProbeIntervalMs, 0);
  if (o.classes.length === 0)
    throw new EngineSchedulerConfigError("engine decision: at least one class is required");
  const names = new Set<string>();
  for (const c of o.classes) {
    if (names.has(c.name)) throw new EngineSchedulerConfigError(`engine decision: duplicate class ${c.name}`);
    names.add(c.name);
    if (!(c.ttftObjectiveMs > 0 && c.itlObjectiveMs > 0 && c.limitShare > 0 && c.limitShare <= 1))
      throw new EngineSchedulerConfigError(
        `engine decision: class ${c.name} needs ttftObjectiveMs > 0, itlObjectiveMs > 0 and limitShare in (0, 1]`,
      );
  }
  int("engineMaxNumSeqs", o.engineMaxNumSeqs, 1);
  int("engine.maxInflight", o.engine.maxInflight, 0);
  int("engine.maxQueue", o.engine.maxQueue, 0);
  int("engine.maxQueueMs", o.engine.maxQueueMs, 0);
  int("engine.ttftMarginMs", o.engine.ttftMarginMs, 0);
  int("engineMaxNumBatchedTokens", o.engineMaxNumBatchedTokens, 1);
  int("itlGuardAssumedOutputTokens", o.itlGuardAssumedOutputTokens, 2);
  if (!(o.engineKvTotalTokens >= 0 && Number.isFinite(o.engineKvTotalTokens)))
    throw new EngineSchedulerConfigError(
      `engine decision: engineKvTotalTokens must be ≥ 0, got ${o.engineKvTotalTokens}`,
    );
  if (
    !(o.retryAfterMinMs >= 0 && o.retryAfterMaxMs >= o.retryAfterMinMs && Number.isFinite(o.retryAfterMaxMs))
  )
    throw new EngineSchedulerConfigError(
      `engine decision: need 0 ≤ retryAfterMinMs ≤ retryAfterMaxMs, got ${o.retryAfterMinMs}..${o.retryAfterMaxMs}`,
    );
  return o;
}

/** Builds the decision options from a resolved policy section set (what the sidecar has). */
export function engineDecisionOptionsFromPolicy(
  policy: { classes: readonly ClassObjectives[]; engine: EngineLimits; rejection: RejectionSettings },
  engine: { maxNumSeqs: number; kvTotalTokens?: number; maxNumBatchedTokens?: number },
  models: Partial<OnlineModelOptions> = {},
): EngineDecisionOptions {
  return engineDecisionOptionsWithDefaults({
    classes: policy.classes,
    engine: policy.engine,
    retryAfterMinMs: policy.rejection.retryAfterMinMs,
    retryAfterMaxMs: policy.rejection.retryAfterMaxMs,
    engineMaxNumSeqs: engine.maxNumSeqs,
    engineKvTotalTokens: engine.kvTotalTokens ?? 0,
    engineMaxNumBatchedTokens: engine.maxNumBatchedTokens,
    models,
  });
}

export type EngineRejectReason = "predicted_ttft" | "queue_timeout" | "queue_full";

/** A rejection, in the shape every level uses. */
export interface EngineRejection {
  level: "engine";
  reason: EngineRejectReason;
  class: string;
  /** What was measured or predicted: TTFT ms (`predicted_ttft`), queued ms (`queue_timeout`), requests (`queue_full`). */
  observed: number;
  /** The threshold it was compared with, same unit. */
  limit: number;
  retryAfterMs: number;
}

/** A request arriving at the sidecar. */
export interface EngineArrival {
  id: string;
  className: string;
  promptTokens: number;
  /** Prefix-cache overlap the router found on this engine, in tokens (≤ promptTokens). */
  cachedTokens?: number;
  /** The request's max_tokens (output limit), when known: the ITL guard averages its mean ITL over it. */
  maxTokens?: number;
  /** Time already spent upstream (ingress, router) when the TTFT objective counts from ingress arrival. */
  upstreamElapsedMs?: number;
}

export type EngineArrivalDecision =
  /** `probe`: admitted by the idle probe although `predictedTtftMs` misses the objective. */
  { admit: true; predictedTtftMs: number; probe?: true } | { admit: false; rejection: EngineRejection };

/** What `nextAdmission` tells the shell. */
export type EngineRelease =
  /** Send this request to the engine now (it left the queue). */
  | { kind: "admit"; id: string; className: string }
  /** The head waits: adding it would push the predicted ITL over `limitMs`. */
  | { kind: "hold"; reason: "itl_guard"; id: string; class: string; observed: number; limit: number }
  /** Nothing queued, or no free slot. */
  | { kind: "idle" };

/** Engine facts the shell knows at release time (from the engine's metrics / load). */
export interface EngineFacts {
  /** Active KV blocks / total, in [0, 1]. */
  kvUsage: number;
}

export interface EngineDecisionSnapshot {
  queued: number;
  inEngine: number;
  inEngineLimit: number;
  queuedUncachedTokens: number;
  /** Uncached tokens of in-engine requests without a first token. */
  pendingPrefillTokens: number;
  models: OnlineModelEstimates;
}

export interface EngineDecision {
  readonly options: Readonly<EngineDecisionOptions>;
  /** The learned models; the shell feeds decode gaps with `models.observeDecode`. */
  readonly models: OnlineModels;
  readonly audit: PredictionAudit;
  /**
   * Arrival: rejects or queues the request.
   * @throws InvalidSchedulerInputError on bad fields or an unknown class, DuplicateRequestIdError on a known id.
   */
  offer(req: EngineArrival, nowMs: number): EngineArrivalDecision;
  /** Re-checks every queued request; removes and returns those to reject now. */
  reevaluate(nowMs: number): Array<{ id: string; rejection: EngineRejection }>;
  /** Releases the queue head into the engine when a slot is free and the ITL guard allows. Call until not `admit`. */
  nextAdmission(nowMs: number, facts: EngineFacts): EngineRelease;
  /** First token of an in-engine request: feeds the prefill model and returns the audit of its prediction. */
  onFirstToken(id: string, nowMs: number): PredictionAuditResult | null;
  /** The request finished (or failed) inside the engine: frees its slot. False when unknown. */
  onFinished(id: string): boolean;
  /** The client went away: drops the request from the queue or the engine. False when unknown. */
  cancel(id: string): boolean;
  /** Predicted TTFT of a request of `className` that would arrive now (for load publishing). */
  predictTtftMs(className: string, promptTokens: number, cachedTokens: number): number;
  snapshot(): EngineDecisionSnapshot;
}

interface InEngine {
  className: string;
  itlObjectiveMs: number;
  /** Output gaps its mean ITL is averaged over: max_tokens − 1 (or the assumption). */
  outputGaps: number;
  firstTokenMs: number;
  uncachedTokens: number;
  admittedMs: number;
  aheadTokensAtAdmission: number;
  firstTokenSeen: boolean;
}

export function createEngineDecision(options: Partial<EngineDecisionOptions> = {}): EngineDecision {
  const o = engineDecisionOptionsWithDefaults(options);
  const classes = new Map<string, ClassObjectives>(o.classes.map((c) => [c.name, c]));
  const inEngineLimit = o.engine.maxInflight > 0 ? o.engine.maxInflight : o.engineMaxNumSeqs;
  const queueLimit = inEngineLimit + o.engine.maxQueue;
  /** A class may fill the engine plus its share of the queue, so low shares are shed first. */
  const classCapacity = new Map(
    o.classes.map((c) => [c.name, inEngineLimit + Math.floor(c.limitShare * o.engine.maxQueue)]),
  );
  const queue: RequestQueue = createRequestQueue(queueLimit);
  const models = createOnlineModels(
    o.models.prefillSeedFixedMs === undefined && o.models.prefillSeedTokensPerS === undefined
      ? { ...dynamoPrefillSeed(o.engineMaxNumBatchedTokens), ...o.models }
      : o.models,
  );
  const audit = createPredictionAudit();
  const inEngine = new Map<string, InEngine>();
  const inEngineByClass = new Map<string, number>(o.classes.map((c) => [c.name, 0]));
  let pendingPrefillTokens = 0;
  /**
   * Since when the engine has been working through `pendingPrefillTokens` without a first token coming
   * back (the last first token, or the admission that found no prefill pending): what it got done since
   * is estimated at the learned rate, so a long prompt half-way through its chunks is not counted whole.
   */
  let prefillProgressSinceMs = 0;
  /** Latest clock the shell passed (for `predictTtftMs`, which takes none). */
  let lastNowMs = 0;
  /** When the idle probe last admitted a request predicted to miss (−∞: never). */
  let lastProbeMs = Number.NEGATIVE_INFINITY;
  /** The queued idle probe, spared `reevaluate`'s predicted_ttft check until it enters the engine. */
  let probeId: string | undefined;
  /** Last release from a queue that stayed non-empty since (null once it drained): paces turn waits. */
  let lastReleaseMs: number | null = null;
  /** The ITL guard held the head at the last `nextAdmission`: free slots are not usable right now. */
  let headHeld = false;

  const classOf = (name: string): ClassObjectives => {
    const c = classes.get(name);
    if (c === undefined)
      throw new InvalidSchedulerInputError(
        `unknown class ${JSON.stringify(name)}; known: ${[...classes.keys()].join(", ")}`,
      );
    return c;
  };
  const ttftLimitMs = (c: ClassObjectives) => c.ttftObjectiveMs - o.engine.ttftMarginMs;
  const maxQueueMs = (c: ClassObjectives) =>
    o.engine.maxQueueMs > 0 ? o.engine.maxQueueMs : c.ttftObjectiveMs;
  const clampRetry = (ms: number) =>
    Math.min(
      o.retryAfterMaxMs,
      Math.max(o.retryAfterMinMs, Number.isFinite(ms) ? Math.ceil(ms) : o.retryAfterMaxMs),
    );

  const usableSlots = () => (headHeld ? 0 : inEngineLimit - inEngine.size);
  /**
   * Prefill work still ahead in the engine at `nowMs`: the uncached tokens of in-engine requests without
   * a first token, less what the engine has prefilled since `prefillProgressSinceMs` at the learned
   * marginal rate (engines prefill FCFS in chunks, so that work comes off the oldest of them).
   */
  const pendingPrefillAt = (nowMs: number) => {
    if (pendingPrefillTokens === 0) return 0;
    const progressTokens = Math.max(0, nowMs - prefillProgressSinceMs) / models.prefillMsPerToken();
    return Math.max(0, pendingPrefillTokens - progressTokens);
  };
  const queueMaybeDrained = () => {
    if (queue.size === 0) {
      lastReleaseMs = null;
      headHeld = false;
    }
  };
  /** Predicted ms from now to first token with `aheadTokens` / `aheadCount` queued before the request. */
  const predictWaitAndPrefillMs = (
    nowMs: number,
    aheadTokens: number,
    aheadCount: number,
    ownTokens: number,
  ) => {
    const pendingTokens = pendingPrefillAt(nowMs);
    const workMs = models.prefillMs(pendingTokens + aheadTokens + ownTokens);
    const slotsShort = aheadCount + 1 - usableSlots();
    if (slotsShort <= 0) return workMs;
    return Math.max(
      workMs,
      slotsShort * models.slotReleaseIntervalMs() + models.prefillMs(pendingTokens + ownTokens),
    );
  };
  /** Time for the work ahead (queue and engine) to clear: what a retry has to wait for. */
  const drainMs = (nowMs: number, aheadTokens: number, aheadCount: number) => {
    const workMs = (pendingPrefillAt(nowMs) + aheadTokens) * models.prefillMsPerToken();
    const slotsShort = aheadCount + 1 - usableSlots();
    return Math.max(workMs, slotsShort > 0 ? slotsShort * models.slotReleaseIntervalMs() : 0);
  };
  const reject = (
    reason: EngineRejectReason,
    c: ClassObjectives,
    observed: number,
    limit: number,
    retryMs: number,
  ): EngineRejection => ({
    level: "engine",
    reason,
    class: c.name,
    observed,
    limit,
    retryAfterMs: clampRetry(retryMs),
  });

  const releaseSlot = (id: string, e: InEngine) => {
    inEngine.delete(id);
    inEngineByClass.set(e.className, (inEngineByClass.get(e.className) ?? 1) - 1);
    if (!e.firstTokenSeen) pendingPrefillTokens = Math.max(0, pendingPrefillTokens - e.uncachedTokens);
    if (inEngine.size === 0) pendingPrefillTokens = 0; // no float drift survives an empty engine
  };

  const decision: EngineDecision = {
    options: o,
    models,
    audit,

    offer(req, nowMs) {
      const c = classOf(req.className);
      const cached = req.cachedTokens ?? 0;
      const upstream = req.upstreamElapsedMs ?? 0;
      if (!(Number.isFinite(nowMs) && Number.isFinite(upstream) && upstream >= 0))
        throw new InvalidSchedulerInputError(
          `request ${req.id}: nowMs and upstreamElapsedMs must be finite, upstream ≥ 0`,
        );
      if (!(Number.isInteger(req.promptTokens) && req.promptTokens >= 1))
        throw new InvalidSchedulerInputError(
          `request ${req.id}: promptTokens must be an integer ≥ 1, got ${req.promptTokens}`,
        );
      if (!(Number.isFinite(cached) && cached >= 0 && cached <= req.promptTokens))
        throw new InvalidSchedulerInputError(
          `request ${req.id}: cachedTokens must be in [0, promptTokens=${req.promptTokens}], got ${cached}`,
        );
      if (req.maxTokens !== undefined && !(Number.isInteger(req.maxTokens) && req.maxTokens >= 1))
        throw new InvalidSchedulerInputError(
          `request ${req.id}: maxTokens must be an integer ≥ 1 when given, got ${req.maxTokens}`,
        );
      if (queue.has(req.id) || inEngine.has(req.id)) throw new DuplicateRequestIdError(req.id);
      lastNowMs = nowMs;
      const uncached = req.promptTokens - cached;
      const ttftStartMs = nowMs - upstream;
      const deadlineMs = ttftStartMs + c.ttftObjectiveMs;

      const total = inEngine.size + queue.size;
      const capacity = classCapacity.get(c.name)!;
      const ahead = queue.uncachedTokensAhead({ priority: c.priority, deadlineMs });
      if (total >= capacity) {
        return {
          admit: false,
          rejection: reject("queue_full", c, total, capacity, drainMs(nowMs, ahead.tokens, ahead.count)),
        };
      }
      const predictedTtftMs = upstream + predictWaitAndPrefillMs(nowMs, ahead.tokens, ahead.count, uncached);
      const limit = ttftLimitMs(c);
      let probe = false;
      if (predictedTtftMs > limit) {
        probe = o.idleProbeIntervalMs > 0 && total === 0 && nowMs - lastProbeMs >= o.idleProbeIntervalMs;
        if (!probe)
          return {
            admit: false,
            rejection: reject("predicted_ttft", c, predictedTtftMs, limit, predictedTtftMs - limit),
          };
        lastProbeMs = nowMs;
        probeId = req.id;
      }
      queue.push({
        id: req.id,
        className: c.name,
        priority: c.priority,
        arrivalMs: nowMs,
        deadlineMs,
        promptTokens: req.promptTokens,
        uncachedTokens: uncached,
        maxTokens: req.maxTokens ?? 0,
      });
      audit.record(req.id, predictedTtftMs, ttftStartMs);
      return probe ? { admit: true, predictedTtftMs, probe: true } : { admit: true, predictedTtftMs };
    },

    reevaluate(nowMs) {
      lastNowMs = nowMs;
      const out: Array<{ id: string; rejection: EngineRejection }> = [];
      if (queue.size === 0) return out;
      let aheadTokens = 0;
      let aheadCount = 0;
      for (const e of queue.ordered()) {
        const c = classOf(e.className);
        const queuedMs = nowMs - e.arrivalMs;
        let rejection: EngineRejection | null = null;
        if (queuedMs > maxQueueMs(c)) {
          rejection = reject(
            "queue_timeout",
            c,
            queuedMs,
            maxQueueMs(c),
            drainMs(nowMs, aheadTokens, aheadCount),
          );
        } else {
          const elapsedMs = nowMs - (e.deadlineMs - c.ttftObjectiveMs);
          const waitMs = predictWaitAndPrefillMs(nowMs, aheadTokens, aheadCount, e.uncachedTokens);
          const predictedTtftMs = elapsedMs + waitMs;
          const limit = ttftLimitMs(c);
          // A retry starts a fresh TTFT clock upstream; only the excess of the wait itself must drain.
          const upstreamMs = e.arrivalMs - (e.deadlineMs - c.ttftObjectiveMs);
          if (predictedTtftMs > limit && e.id !== probeId)
            rejection = reject("predicted_ttft", c, predictedTtftMs, limit, upstreamMs + waitMs - limit);
        }
        if (rejection === null) {
          // Rejected requests leave, so they are not work ahead of the ones behind them.
          aheadTokens += e.uncachedTokens;
          aheadCount++;
        } else out.push({ id: e.id, rejection });
      }
      for (const r of out) {
        queue.remove(r.id);
        audit.forget(r.id);
      }
      queueMaybeDrained();
      return out;
    },

    nextAdmission(nowMs, facts) {
      lastNowMs = nowMs;
      const head = queue.peek();
      if (head === undefined || inEngine.size >= inEngineLimit) return { kind: "idle" };
      const c = classOf(head.className);
      if (inEngine.size > 0) {
        const kvUsage = Number.isFinite(facts.kvUsage) ? Math.max(0, facts.kvUsage) : 0;
        const kvAfter = kvUsage + (o.engineKvTotalTokens > 0 ? head.promptTokens / o.engineKvTotalTokens : 0);
        const stepMs = models.decodeStepMs(inEngine.size + 1, kvAfter);
        // Decode alone: the step must fit the head's objective and the tightest running one.
        let worstLimitMs = c.itlObjectiveMs;
        for (const rc of o.classes)
          if (rc.itlObjectiveMs < worstLimitMs && (inEngineByClass.get(rc.name) ?? 0) > 0)
            worstLimitMs = rc.itlObjectiveMs;
        let worstMs = stepMs;
        let worstExcessMs = stepMs - worstLimitMs;
        const workTokens = pendingPrefillTokens + head.uncachedTokens;
        if (workTokens > 0) {
          const chunks = Math.ceil(workTokens / o.engineMaxNumBatchedTokens);
          const chunkMs = models.prefillFixedMs() + (models.prefillMsPerToken() * workTokens) / chunks;
          for (const e of inEngine.values()) {
            if (e.outputGaps < 1) continue; // one output token: no gap, no ITL to protect
            const remainingGaps = e.firstTokenSeen
              ? Math.max(1, e.outputGaps - (nowMs - e.firstTokenMs) / stepMs)
              : e.outputGaps;
            const itlMs = stepMs + (Math.min(remainingGaps, chunks) * chunkMs) / e.outputGaps;
            if (itlMs - e.itlObjectiveMs > worstExcessMs) {
              worstExcessMs = itlMs - e.itlObjectiveMs;
              worstMs = itlMs;
              worstLimitMs = e.itlObjectiveMs;
            }
          }
        }
        if (worstExcessMs > 0) {
          headHeld = true;
          return {
            kind: "hold",
            reason: "itl_guard",
            id: head.id,
            class: c.name,
            observed: worstMs,
            limit: worstLimitMs,
          };
        }
      }
      queue.pop();
      headHeld = false;
      if (head.id === probeId) probeId = undefined;
      // Releases from a queue that never emptied in between measure how fast it drains into the engine.
      if (lastReleaseMs !== null) models.observeSlotReleaseInterval(nowMs - lastReleaseMs);
      lastReleaseMs = queue.size > 0 ? nowMs : null;
      inEngine.set(head.id, {
        className: head.className,
        itlObjectiveMs: c.itlObjectiveMs,
        outputGaps: (head.maxTokens ?? 0) > 0 ? head.maxTokens! - 1 : o.itlGuardAssumedOutputTokens - 1,
        firstTokenMs: 0,
        uncachedTokens: head.uncachedTokens,
        admittedMs: nowMs,
        aheadTokensAtAdmission: pendingPrefillAt(nowMs),
        firstTokenSeen: false,
      });
      inEngineByClass.set(head.className, (inEngineByClass.get(head.className) ?? 0) + 1);
      if (pendingPrefillTokens === 0) prefillProgressSinceMs = nowMs;
      pendingPrefillTokens += head.uncachedTokens;
      return { kind: "admit", id: head.id, className: head.className };
    },

    onFirstToken(id, nowMs) {
      lastNowMs = nowMs;
      const e = inEngine.get(id);
      if (e === undefined || e.firstTokenSeen) return null;
      e.firstTokenSeen = true;
      e.firstTokenMs = nowMs;
      pendingPrefillTokens = Math.max(0, pendingPrefillTokens - e.uncachedTokens);
      // Its prefill is done, and FCFS the work before it too: the rest starts being counted afresh.
      prefillProgressSinceMs = nowMs;
      models.observePrefill({
        aheadTokens: e.aheadTokensAtAdmission,
        uncachedTokens: e.uncachedTokens,
        elapsedMs: nowMs - e.admittedMs,
      });
      return audit.resolve(id, nowMs);
    },

    onFinished(id) {
      const e = inEngine.get(id);
      if (e === undefined) return false;
      releaseSlot(id, e);
      audit.forget(id);
      return true;
    },

    cancel(id) {
      audit.forget(id);
      if (id === probeId) probeId = undefined;
      if (queue.remove(id)) {
        queueMaybeDrained();
        return true;
      }
      const e = inEngine.get(id);
      if (e === undefined) return false;
      releaseSlot(id, e);
      return true;
    },

    predictTtftMs(className, promptTokens, cachedTokens) {
      const c = classOf(className);
      const ahead = queue.uncachedTokensAhead({ priority: c.priority, deadlineMs: Number.POSITIVE_INFINITY });
      return predictWaitAndPrefillMs(
        lastNowMs,
        ahead.tokens,
        ahead.count,
        Math.max(0, promptTokens - cachedTokens),
      );
    },

    snapshot: () => ({
      queued: queue.size,
      inEngine: inEngine.size,
      inEngineLimit,
      queuedUncachedTokens: queue.totalUncachedTokens,
      pendingPrefillTokens,
      models: models.estimates(),
    }),
  };
  return decision;
}
