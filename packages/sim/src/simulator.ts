// Discrete-event simulation, in virtual time, of clients → ingress (admission policy, L1) → router
// (least-loaded, or the policy's L2 router) → per-engine scheduler (the policy's L3 gate, optional) → N
// engine models. Pure: no I/O, no wall clock; the same inputs always give the same result.
//
// A request admitted at L1 may still be rejected by L2 (router busy/hold timeout) or L3 (engine-scheduler
// prediction); it then counts as rejected at that level, not as admitted, and every level's accounting is
// released exactly once. KV events reach the router `loadDelayMs` after the step that produced them, like
// load snapshots.
//
// Propagation delays are simulated, not ignored: an engine's load snapshot (taken at the end of each of
// its steps) reaches the router/policy `loadDelayMs` later, while the router's own routing decisions count
// immediately (predicted vs observed, DESIGN §3): believed in-flight = last snapshot + requests routed to
// the engine that the snapshot could not yet include. An admitted request reaches its engine
// `dispatchDelayMs` after the decision. Outputs of a step happen at its end (`nowMs + durationMs`).

import {
  type BlockHash,
  type EngineModel,
  type KvEvent,
  RequestTooLongError,
  type StepResult,
} from "@sluice/core";
import type { ClassObjectives, RequestClass } from "./classes.js";
import { SimUsageError, SimulationStalledError } from "./errors.js";
import { EventQueue } from "./event-queue.js";
import { LatencyHistogram } from "./latency-histogram.js";
import type {
  AdmissionPolicy,
  ClusterView,
  EngineObservation,
  EngineView,
  PolicyRequest,
  SimEngineGate,
  SimRouter,
} from "./policy.js";
import type { SimRequest, Workload } from "./workload.js";

export interface SimulatorOptions {
  /** Builds engine `index`'s model; called once per engine per run. KV events only when asked for. */
  createEngine: (index: number, collectKvEvents: boolean) => EngineModel;
  engineCount: number;
  policy: AdmissionPolicy;
  /** Prompt block hashes of a request at the engine's block size. */
  blockHashesOf: (request: SimRequest) => readonly BlockHash[];
  objectives: Readonly<Record<RequestClass, Readonly<ClassObjectives>>>;
  /** Engine load snapshot → router/policy propagation delay. */
  loadDelayMs: number;
  /** Admission decision → request arrives at its engine. */
  dispatchDelayMs: number;
  /** Called every ~`progressEveryRequests` settled requests with (settled, total). */
  onProgress?: (settled: number, total: number) => void;
  progressEveryRequests?: number;
  /**
   * Counterfactual hook (false rejections, docs/evaluation.md): the request with this index bypasses every
   * admission level. It is never offered to L1, L2 or L3, so it never enters their own accounting (no
   * release either), but everything that observes engines or responses sees it (load snapshots, KV events,
   * first-token and completion callbacks, the simulator's in-flight count). It goes to the engine where it
   * would start soonest by what the simulator can see (see `placeForced`).
   */
  forceAdmitRequest?: number;
  /**
   * Retry-After hook: every request a policy level rejects with a finite Retry-After arrives once more,
   * as a new attempt of the same request, at rejection time + Retry-After. Retries are not retried again,
   * are not counted in `rejections`, and are reported in `retries` (their TTFT runs from the retry).
   */
  retryRejected?: boolean;
}

export const DEFAULT_LOAD_DELAY_MS = 10;
export const DEFAULT_DISPATCH_DELAY_MS = 0;

// Request status codes in a Uint8Array (one byte per request, no objects on the hot path).
const Status = { Pending: 0, Rejected: 1, InFlight: 2, Completed: 3 } as const;

/** Raw per-run outcome; `summarize` turns it into the report. */
export interface SimRunResult {
  policy: string;
  requests: readonly SimRequest[];
  windowMs: number;
  /** Virtual time the last event happened. */
  endMs: number;
  /** Per request (by index): NaN unless completed. */
  ttftMs: Float64Array;
  meanItlMs: Float64Array;
  /** Admitted requests in flight that each arrival saw (before its own decision). */
  inFlightAtArrival: Int32Array;
  /** Arrival at the ingress → last token, NaN unless completed. */
  latencyMs: Float64Array;
  /** 1 when completed meeting both objectives of its class. */
  metObjectives: Uint8Array;
  /** 1 admitted by every policy level, 0 rejected by one (L1, L2 or L3). Engine refusals count as admitted and rejected late. */
  admitted: Uint8Array;
  completed: Uint8Array;
  /** `level:reason` → count, for every rejection (policy or engine). */
  rejections: Map<string, number>;
  /**
   * Per request (by index): its `level:reason` when it was rejected, else undefined. Optional (as the two
   * fields below) so results built outside the simulator (the replay client's) need not invent them.
   */
  rejectionKey?: readonly (string | undefined)[];
  /** Rejections that happened after admission (engine refused the request). */
  lateRejections: number;
  /** Per-token inter-token latencies of all completed requests. */
  itl: LatencyHistogram;
  /** Prompt tokens (incl. recompute) the engines computed, exact. */
  computedPrefillTokens: number;
  /** Prompt tokens of admitted requests that missed their objectives (upper bound of wasted prefill). */
  wastedPrefillTokens: number;
  preemptions: number;
  /** Prompt tokens looked up in / found in the engines' prefix caches (vLLM prefix_cache_queries / hits). */
  prefixCacheQueryTokens: number;
  prefixCacheHitTokens: number;
  /** Retry-After the policy gave each rejected request (NaN when not rejected by the policy). */
  retryAfterMs: Float64Array;
  /** `forceAdmitRequest` when set, else -1 (absent: not a simulator result). */
  forcedRequest?: number;
  /** Retry attempts made under `retryRejected` (empty otherwise), in the order they were scheduled. */
  retries?: SimRetries;
}

/** What `simulate` returns: a run result with the simulator-only fields present. */
export type SimulatedRun = SimRunResult &
  Required<Pick<SimRunResult, "rejectionKey" | "forcedRequest" | "retries">>;

/** Second attempts of rejected requests, one entry per retry. */
export interface SimRetries {
  /** Index of the rejected request the retry repeats. */
  of: Int32Array;
  /** Virtual time the retry arrived (rejection time + Retry-After). */
  atMs: Float64Array;
  /** 1 when every policy level admitted the retry. */
  admitted: Uint8Array;
  /** 1 when the retry completed meeting its class objectives (measured from its own arrival). */
  metObjectives: Uint8Array;
}

type SimEvent =
  | { kind: "dispatch"; engine: number; request: number; cachedTokens: number }
  | { kind: "step-end"; engine: number }
  | {
      kind: "snapshot";
      engine: number;
      arrivedCount: number;
      queued: number;
      observation: EngineObservation;
    }
  | { kind: "kv"; engine: number; events: KvEvent[] }
  | { kind: "router-wake" }
  | { kind: "gate-wake"; engine: number }
  | { kind: "retry-arrival"; request: number };

/** EWMA weight of one step's prefill throughput in the engine-side measurement (without an L3 gate). */
const PREFILL_RATE_EWMA_WEIGHT = 0.05;

interface EngineState {
  model: EngineModel;
  busy: boolean;
  pendingStep: StepResult | undefined;
  view: MutableEngineView;
  /** Requests the router sent here so far (its own, immediate knowledge). */
  routedCount: number;
  /** Requests that reached the engine so far; each snapshot carries the value at the time it was taken. */
  arrivedCount: number;
  /** L3 engine-scheduler in front of the model, when the policy has one. */
  gate: SimEngineGate | undefined;
  gateWakeAtMs: number;
  /** End of the previous step that emitted tokens (decode gap for the L3 model). */
  lastTokenStepEndMs: number;
  /** Engine-side measured prefill tokens/s when there is no gate to measure it. */
  prefillRatePerS: number;
}

interface MutableEngineView extends EngineView {
  index: number;
  believedInFlight: number;
  observedKvUsage: number;
  observedPendingPrefillTokens: number;
  observedAtMs: number;
}

function validate(options: SimulatorOptions, requestCount: number): void {
  const forced = options.forceAdmitRequest;
  if (forced !== undefined && !(Number.isInteger(forced) && forced >= 0 && forced < requestCount)) {
    throw new SimUsageError(`forced request must be an index in [0, ${requestCount}), got ${forced}`);
  }
  if (!Number.isInteger(options.engineCount) || options.engineCount < 1) {
    throw new SimUsageError(`engine count must be an integer ≥ 1, got ${options.engineCount}`);
  }
  if (!(options.loadDelayMs >= 0))
    throw new SimUsageError(`load delay must be ≥ 0 ms, got ${options.loadDelayMs}`);
  if (!(options.dispatchDelayMs >= 0)) {
    throw new SimUsageError(`dispatch delay must be ≥ 0 ms, got ${options.dispatchDelayMs}`);
  }
}

export function simulate(workload: Workload, options: SimulatorOptions): SimulatedRun {
  validate(options, workload.requests.length);
  const { policy, objectives, loadDelayMs, dispatchDelayMs } = options;
  const router: SimRouter | undefined = policy.router;
  const collectKvEvents = router?.wantsKvEvents === true;
  const n = workload.requests.length;
  const forced = options.forceAdmitRequest ?? -1;
  const retryRejected = options.retryRejected === true;
  // Retries get indices n, n+1, …: at most one per trace request, so 2n slots cover them.
  const slots = retryRejected ? 2 * n : n;
  const requests: SimRequest[] = workload.requests.slice();
  const status = new Uint8Array(slots);
  const admitted = new Uint8Array(slots);
  const completed = new Uint8Array(slots);
  const metObjectives = new Uint8Array(slots);
  const firstTokenAt = new Float64Array(slots).fill(Number.NaN);
  const lastTokenAt = new Float64Array(slots).fill(Number.NaN);
  const ttftMs = new Float64Array(slots).fill(Number.NaN);
  const meanItlMs = new Float64Array(slots).fill(Number.NaN);
  const latencyMs = new Float64Array(slots).fill(Number.NaN);
  const inFlightAtArrival = new Int32Array(slots);
  const retryAfterMs = new Float64Array(slots).fill(Number.NaN);
  const retryOf: number[] = [];
  const rejectionKey: (string | undefined)[] = new Array(n).fill(undefined);
  const rejections = new Map<string, number>();
  const itl = new LatencyHistogram();
  const queue = new EventQueue<SimEvent>();
  const inFlightByClass: Record<RequestClass, number> = { critical: 0, standard: 0, sheddable: 0 };
  let inFlight = 0;
  let lateRejections = 0;
  let computedPrefillTokens = 0;
  let wastedPrefillTokens = 0;
  let settled = 0;
  let nowMs = 0;
  let routerWakeAtMs = Number.POSITIVE_INFINITY;
  const progressEvery = options.progressEveryRequests ?? Math.max(1, Math.floor(n / 200));

  const engines: EngineState[] = [];
  const views: MutableEngineView[] = [];
  for (let e = 0; e < options.engineCount; e++) {
    const view: MutableEngineView = {
      index: e,
      believedInFlight: 0,
      observedKvUsage: 0,
      observedPendingPrefillTokens: 0,
      observedAtMs: Number.NEGATIVE_INFINITY,
    };
    views.push(view);
    engines.push({
      model: options.createEngine(e, collectKvEvents),
      busy: false,
      pendingStep: undefined,
      view,
      routedCount: 0,
      arrivedCount: 0,
      gate: policy.createEngineGate?.(e),
      gateWakeAtMs: Number.POSITIVE_INFINITY,
      lastTokenStepEndMs: Number.NaN,
      prefillRatePerS: 0,
    });
  }
  const clusterView: ClusterView = {
    get inFlight() {
      return inFlight;
    },
    inFlightByClass,
    engines: views,
  };

  /** Counts a rejection of a trace request (retries are reported in `retries`, not here). */
  const reject = (index: number, key: string): void => {
    if (index >= n) return;
    rejections.set(key, (rejections.get(key) ?? 0) + 1);
    rejectionKey[index] = key;
  };
  const settle = (index: number): void => {
    if (index >= n) return;
    settled++;
    if (options.onProgress && settled % progressEvery === 0) options.onProgress(settled, n);
  };
  /** Under `retryRejected`, a policy rejection with a Retry-After makes the request arrive once more. */
  const scheduleRetry = (index: number, retryMs: number): void => {
    if (!retryRejected || index >= n || !Number.isFinite(retryMs)) return;
    const retry: SimRequest = {
      ...(requests[index] as SimRequest),
      index: n + retryOf.length,
      arrivalMs: nowMs + Math.max(0, retryMs),
    };
    retryOf.push(index);
    requests.push(retry);
    queue.push(retry.arrivalMs, { kind: "retry-arrival", request: retry.index });
  };
  /** The request leaves every level's accounting (exactly once per admitted request). */
  const release = (r: SimRequest): void => {
    inFlight--;
    inFlightByClass[r.requestClass]--;
    // A forced request never entered the levels' own accounting, so it has nothing to release there.
    if (r.index === forced) return;
    router?.onRelease(r.index, nowMs);
    policy.onRelease?.(r as PolicyRequest, nowMs);
  };
  /** A later level (L2, L3) refused an admitted request: a rejection at that level, not an admission. */
  const rejectAdmitted = (index: number, level: "L2" | "L3", reason: string, retryMs: number): void => {
    const r = requests[index] as SimRequest;
    status[index] = Status.Rejected;
    admitted[index] = 0;
    retryAfterMs[index] = retryMs;
    reject(index, `${level}:${reason}`);
    release(r);
    settle(index);
    scheduleRetry(index, retryMs);
  };

  // Believed in-flight = what the snapshot saw + what was routed but had not reached the engine when the
  // snapshot was taken (in transit, or routed after it). Completions since the snapshot stay invisible.
  const applySnapshot = (
    e: number,
    arrivedCount: number,
    queued: number,
    observation: EngineObservation,
  ): void => {
    const engine = engines[e] as EngineState;
    const view = engine.view;
    const { load, takenAtMs } = observation;
    if (takenAtMs < view.observedAtMs) return;
    view.believedInFlight = load.waiting + load.running + queued + (engine.routedCount - arrivedCount);
    view.observedKvUsage = load.kvTotalBlocks > 0 ? load.kvUsedBlocks / load.kvTotalBlocks : 0;
    view.observedPendingPrefillTokens = load.pendingPrefillTokens;
    view.observedAtMs = takenAtMs;
    policy.onObservation?.(e, observation, nowMs);
    if (router !== undefined) {
      router.onObservation(e, observation, nowMs);
      drainRouter();
    }
  };

  const publishSnapshot = (e: number, atMs: number, kvEvents: KvEvent[]): void => {
    const engine = engines[e] as EngineState;
    const observation: EngineObservation = {
      load: engine.model.load(),
      takenAtMs: atMs,
      prefillTokensPerS: engine.gate !== undefined ? engine.gate.prefillTokensPerS() : engine.prefillRatePerS,
    };
    const queued = engine.gate?.queued() ?? 0;
    if (loadDelayMs === 0) {
      if (kvEvents.length > 0) router?.onKvEvents(e, kvEvents, atMs);
      applySnapshot(e, engine.arrivedCount, queued, observation);
      return;
    }
    // KV events first: at equal times the queue pops in push order, so the index is current when the
    // snapshot triggers a drain.
    if (kvEvents.length > 0 && router !== undefined)
      queue.push(atMs + loadDelayMs, { kind: "kv", engine: e, events: kvEvents });
    queue.push(atMs + loadDelayMs, {
      kind: "snapshot",
      engine: e,
      arrivedCount: engine.arrivedCount,
      queued,
      observation,
    });
  };

  const startStep = (e: number, atMs: number): void => {
    const engine = engines[e] as EngineState;
    if (!engine.model.hasWork()) {
      engine.busy = false;
      return;
    }
    const result = engine.model.step(atMs);
    if (result.durationMs <= 0) {
      // Nothing could be scheduled (e.g. every waiting request is above the watermark with nothing
      // running to free blocks); the engine sleeps until the next request arrives.
      engine.busy = false;
      return;
    }
    engine.busy = true;
    engine.pendingStep = result;
    queue.push(atMs + result.durationMs, { kind: "step-end", engine: e });
  };

  /** Puts a request into the engine model; false when the engine refused it (too long, rejected late). */
  const enterModel = (e: number, index: number, atMs: number): boolean => {
    const engine = engines[e] as EngineState;
    const r = requests[index] as SimRequest;
    try {
      engine.model.add({
        id: String(index),
        promptTokens: r.promptTokens,
        blockHashes: options.blockHashesOf(r),
        maxTokens: r.outputTokens,
        arrivalMs: atMs,
      });
    } catch (error) {
      if (!(error instanceof RequestTooLongError)) throw error;
      status[index] = Status.Rejected;
      if (index < n) lateRejections++;
      reject(index, "engine:request_too_long");
      if (index !== forced) engine.gate?.onFinished(index);
      release(r);
      settle(index);
      return false;
    }
    return true;
  };

  const scheduleGateWake = (e: number): void => {
    const engine = engines[e] as EngineState;
    const gate = engine.gate;
    if (gate === undefined || gate.queued() === 0) return;
    const at = nowMs + gate.reevaluateIntervalMs;
    if (engine.gateWakeAtMs <= at && engine.gateWakeAtMs > nowMs) return;
    engine.gateWakeAtMs = at;
    queue.push(at, { kind: "gate-wake", engine: e });
  };

  /** The sidecar's pump: re-evaluate its queue, release what may enter the engine, start a step if idle. */
  const pumpGate = (e: number): void => {
    const engine = engines[e] as EngineState;
    const gate = engine.gate;
    if (gate === undefined) return;
    const load = engine.model.load();
    const out = gate.pump(nowMs, load.kvTotalBlocks > 0 ? load.kvUsedBlocks / load.kvTotalBlocks : 0);
    for (const rj of out.reject) rejectAdmitted(rj.request, "L3", rj.reason, rj.retryAfterMs);
    for (const index of out.admit) enterModel(e, index, nowMs);
    if (!engine.busy) startStep(e, nowMs);
    scheduleGateWake(e);
  };

  const arriveAtEngine = (e: number, index: number, cachedTokens: number, atMs: number): void => {
    const engine = engines[e] as EngineState;
    const r = requests[index] as SimRequest;
    engine.arrivedCount++;
    if (engine.gate === undefined || index === forced) {
      if (enterModel(e, index, atMs) && !engine.busy) startStep(e, atMs);
      return;
    }
    const offer = engine.gate.offer(r as PolicyRequest, Math.min(cachedTokens, r.promptTokens), atMs);
    if (!offer.admit) {
      rejectAdmitted(index, "L3", offer.reason, offer.retryAfterMs);
      return;
    }
    pumpGate(e);
  };

  const leastLoaded = (): number => {
    let best = 0;
    let bestView = views[0] as MutableEngineView;
    for (let e = 1; e < views.length; e++) {
      const v = views[e] as MutableEngineView;
      if (
        v.believedInFlight < bestView.believedInFlight ||
        (v.believedInFlight === bestView.believedInFlight && v.observedKvUsage < bestView.observedKvUsage)
      ) {
        best = e;
        bestView = v;
      }
    }
    return best;
  };

  /**
   * Where a forced request goes: with an L2 router, the engine where it would start soonest by what the
   * simulator's views show (observed pending prefill + its own uncached tokens, from the router's prefix
   * overlaps); without one, the same least-loaded choice every request of that policy gets.
   */
  const placeForced = (r: SimRequest): { engine: number; cachedTokens: number } => {
    if (router?.cachedTokensByEngine === undefined) return { engine: leastLoaded(), cachedTokens: 0 };
    const cachedByEngine = router.cachedTokensByEngine(r as PolicyRequest, options.blockHashesOf(r));
    let best = 0;
    let bestCost = Number.POSITIVE_INFINITY;
    let bestCached = 0;
    for (let e = 0; e < views.length; e++) {
      const cached = Math.min(r.promptTokens, cachedByEngine.get(e) ?? 0);
      const cost = (views[e] as MutableEngineView).observedPendingPrefillTokens + r.promptTokens - cached;
      if (cost < bestCost) {
        best = e;
        bestCost = cost;
        bestCached = cached;
      }
    }
    return { engine: best, cachedTokens: bestCached };
  };

  const sendToEngine = (e: number, index: number, cachedTokens: number): void => {
    const engine = engines[e] as EngineState;
    engine.routedCount++;
    engine.view.believedInFlight++;
    if (dispatchDelayMs === 0) arriveAtEngine(e, index, cachedTokens, nowMs);
    else queue.push(nowMs + dispatchDelayMs, { kind: "dispatch", engine: e, request: index, cachedTokens });
  };

  const scheduleRouterWake = (): void => {
    const at = router?.nextExpiryMs();
    if (at === undefined || (routerWakeAtMs <= at && routerWakeAtMs >= nowMs)) return;
    routerWakeAtMs = Math.max(at, nowMs);
    queue.push(routerWakeAtMs, { kind: "router-wake" });
  };

  /** Re-offers held requests (capacity may have freed, or holds expired). */
  function drainRouter(): void {
    if (router === undefined || router.heldCount() === 0) return;
    const out = router.drain(nowMs);
    for (const rj of out.rejected) rejectAdmitted(rj.request, "L2", rj.reason, rj.retryAfterMs);
    for (const placed of out.routed) sendToEngine(placed.engine, placed.request, placed.cachedTokens);
    scheduleRouterWake();
  }

  const onArrival = (index: number): void => {
    const r = requests[index] as SimRequest;
    inFlightAtArrival[index] = inFlight;
    if (index === forced) {
      admitted[index] = 1;
      status[index] = Status.InFlight;
      inFlight++;
      inFlightByClass[r.requestClass]++;
      const place = placeForced(r);
      sendToEngine(place.engine, index, place.cachedTokens);
      return;
    }
    const decision = policy.admit(r as PolicyRequest, clusterView, nowMs);
    if (!decision.admit) {
      status[index] = Status.Rejected;
      retryAfterMs[index] = decision.retryAfterMs;
      reject(index, `${decision.level}:${decision.reason}`);
      settle(index);
      scheduleRetry(index, decision.retryAfterMs);
      return;
    }
    admitted[index] = 1;
    status[index] = Status.InFlight;
    inFlight++;
    inFlightByClass[r.requestClass]++;
    if (router === undefined) {
      sendToEngine(leastLoaded(), index, 0);
      return;
    }
    const outcome = router.route(r as PolicyRequest, options.blockHashesOf(r), nowMs);
    if (outcome.kind === "routed") sendToEngine(outcome.engine, index, outcome.cachedTokens);
    else if (outcome.kind === "held") scheduleRouterWake();
    else rejectAdmitted(index, "L2", outcome.reason, outcome.retryAfterMs);
  };

  const onStepEnd = (e: number): void => {
    const engine = engines[e] as EngineState;
    const result = engine.pendingStep as StepResult;
    engine.pendingStep = undefined;
    // Idle until a new step starts below; every startStep call is guarded by `!busy`, so a request routed
    // here by a drain during this step-end starts the next step exactly once.
    engine.busy = false;
    computedPrefillTokens += result.prefillTokens;
    if (result.prefillTokens > 0 && result.durationMs > 0) {
      const rate = (result.prefillTokens / result.durationMs) * 1000;
      engine.prefillRatePerS =
        engine.prefillRatePerS === 0
          ? rate
          : engine.prefillRatePerS + PREFILL_RATE_EWMA_WEIGHT * (rate - engine.prefillRatePerS);
    }
    const gate = engine.gate;
    if (gate !== undefined && result.decodeSeqs > 0 && !Number.isNaN(engine.lastTokenStepEndMs)) {
      const load = engine.model.load();
      gate.observeDecode(
        nowMs - engine.lastTokenStepEndMs,
        result.decodeSeqs,
        load.kvTotalBlocks > 0 ? load.kvUsedBlocks / load.kvTotalBlocks : 0,
      );
    }
    engine.lastTokenStepEndMs = result.decodeSeqs > 0 || result.firstTokens.length > 0 ? nowMs : Number.NaN;
    for (const id of result.firstTokens) {
      const i = Number(id);
      if (!Number.isNaN(firstTokenAt[i] as number)) continue;
      firstTokenAt[i] = nowMs;
      lastTokenAt[i] = nowMs;
      if (i !== forced) {
        gate?.onFirstToken(i, nowMs);
        router?.onFirstToken(i, nowMs);
      }
      policy.onFirstToken?.(requests[i] as PolicyRequest, nowMs);
    }
    // Most sequences of a step share one gap (the previous step's end): count runs, one histogram add each.
    let runGapMs = -1;
    let runCount = 0;
    for (const id of result.tokens) {
      const i = Number(id);
      const last = lastTokenAt[i] as number;
      if (last < nowMs) {
        const gap = nowMs - last;
        if (gap === runGapMs) runCount++;
        else {
          if (runCount > 0) itl.add(runGapMs, runCount);
          runGapMs = gap;
          runCount = 1;
        }
      }
      lastTokenAt[i] = nowMs;
    }
    if (runCount > 0) itl.add(runGapMs, runCount);
    for (const id of result.finished) {
      const i = Number(id);
      const r = requests[i] as SimRequest;
      const ttft = (firstTokenAt[i] as number) - r.arrivalMs;
      const meanItl = r.outputTokens > 1 ? (nowMs - (firstTokenAt[i] as number)) / (r.outputTokens - 1) : 0;
      const objective = objectives[r.requestClass];
      const met = ttft <= objective.ttftObjectiveMs && meanItl <= objective.meanItlObjectiveMs;
      ttftMs[i] = ttft;
      meanItlMs[i] = meanItl;
      latencyMs[i] = nowMs - r.arrivalMs;
      metObjectives[i] = met ? 1 : 0;
      completed[i] = 1;
      status[i] = Status.Completed;
      if (!met) wastedPrefillTokens += r.promptTokens;
      if (i !== forced) gate?.onFinished(i);
      release(r);
      policy.onComplete?.(
        r as PolicyRequest,
        { ttftMs: ttft, meanItlMs: meanItl, metObjectives: met },
        nowMs,
      );
      settle(i);
    }
    publishSnapshot(e, nowMs, result.kvEvents);
    if (gate !== undefined) pumpGate(e);
    else if (!engine.busy) startStep(e, nowMs);
    if (loadDelayMs > 0) drainRouter();
  };

  let nextArrival = 0;
  for (;;) {
    const heapTime = queue.peekTimeMs();
    // Events due at the same instant as an arrival run first: completions at t free capacity at t.
    if (nextArrival < n && (requests[nextArrival] as SimRequest).arrivalMs < heapTime) {
      nowMs = (requests[nextArrival] as SimRequest).arrivalMs;
      onArrival(nextArrival++);
      continue;
    }
    const item = queue.pop();
    if (item === undefined) break;
    nowMs = item.timeMs;
    const ev = item.event;
    switch (ev.kind) {
      case "step-end":
        onStepEnd(ev.engine);
        break;
      case "dispatch":
        arriveAtEngine(ev.engine, ev.request, ev.cachedTokens, nowMs);
        break;
      case "snapshot":
        applySnapshot(ev.engine, ev.arrivedCount, ev.queued, ev.observation);
        break;
      case "kv":
        router?.onKvEvents(ev.engine, ev.events, nowMs);
        break;
      case "router-wake":
        if (nowMs >= routerWakeAtMs) routerWakeAtMs = Number.POSITIVE_INFINITY;
        drainRouter();
        scheduleRouterWake();
        break;
      case "retry-arrival":
        onArrival(ev.request);
        break;
      case "gate-wake": {
        const engine = engines[ev.engine] as EngineState;
        if (nowMs >= engine.gateWakeAtMs) engine.gateWakeAtMs = Number.POSITIVE_INFINITY;
        pumpGate(ev.engine);
        break;
      }
    }
  }

  let preemptions = 0;
  let prefixCacheQueryTokens = 0;
  let prefixCacheHitTokens = 0;
  for (const engine of engines) {
    const load = engine.model.load();
    preemptions += load.preemptions;
    prefixCacheQueryTokens += load.prefixCacheQueryTokens;
    prefixCacheHitTokens += load.prefixCacheHitTokens;
  }
  const attempts = n + retryOf.length;
  for (let i = 0; i < attempts; i++) {
    if (status[i] === Status.InFlight || status[i] === Status.Pending) {
      throw new SimulationStalledError(i, nowMs);
    }
  }
  const retries: SimRetries = {
    of: Int32Array.from(retryOf),
    atMs: Float64Array.from(retryOf, (_, k) => (requests[n + k] as SimRequest).arrivalMs),
    admitted: admitted.slice(n, attempts),
    metObjectives: metObjectives.slice(n, attempts),
  };
  const main = <T extends Float64Array | Uint8Array | Int32Array>(a: T): T =>
    (slots === n ? a : a.slice(0, n)) as T;
  return {
    policy: policy.name,
    requests: workload.requests,
    windowMs: workload.windowMs,
    endMs: nowMs,
    ttftMs: main(ttftMs),
    meanItlMs: main(meanItlMs),
    latencyMs: main(latencyMs),
    inFlightAtArrival: main(inFlightAtArrival),
    metObjectives: main(metObjectives),
    admitted: main(admitted),
    completed: main(completed),
    rejections,
    rejectionKey,
    lateRejections,
    itl,
    computedPrefillTokens,
    wastedPrefillTokens,
    preemptions,
    prefixCacheQueryTokens,
    prefixCacheHitTokens,
    retryAfterMs: main(retryAfterMs),
    forcedRequest: forced,
    retries,
  };
}
