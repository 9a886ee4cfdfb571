// Discrete-event simulation, in virtual time, of clients → ingress (admission policy) → least-loaded
// routing → N engine models. Pure: no I/O, no wall clock; the same inputs always give the same result.
//
// Propagation delays are simulated, not ignored: an engine's load snapshot (taken at the end of each of
// its steps) reaches the router/policy `loadDelayMs` later, while the router's own routing decisions count
// immediately (predicted vs observed, DESIGN §3): believed in-flight = last snapshot + requests routed to
// the engine that the snapshot could not yet include. An admitted request reaches its engine
// `dispatchDelayMs` after the decision. Outputs of a step happen at its end (`nowMs + durationMs`).

import {
  type BlockHash,
  type EngineLoadSnapshot,
  type EngineModel,
  RequestTooLongError,
  type StepResult,
} from "@sluice/core";
import type { ClassObjectives, RequestClass } from "./classes.js";
import { SimUsageError, SimulationStalledError } from "./errors.js";
import { EventQueue } from "./event-queue.js";
import { LatencyHistogram } from "./latency-histogram.js";
import type { AdmissionPolicy, ClusterView, EngineView, PolicyRequest } from "./policy.js";
import type { SimRequest, Workload } from "./workload.js";

export interface SimulatorOptions {
  /** Builds engine `index`'s model; called once per engine per run. */
  createEngine: (index: number) => EngineModel;
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
  /** 1 admitted by the policy, 0 rejected by it. Engine refusals count as admitted and rejected late. */
  admitted: Uint8Array;
  completed: Uint8Array;
  /** `level:reason` → count, for every rejection (policy or engine). */
  rejections: Map<string, number>;
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
}

type SimEvent =
  | { kind: "dispatch"; engine: number; request: number }
  | { kind: "step-end"; engine: number }
  | { kind: "snapshot"; engine: number; takenAtMs: number; arrivedCount: number; load: EngineLoadSnapshot };

interface EngineState {
  model: EngineModel;
  busy: boolean;
  pendingStep: StepResult | undefined;
  view: MutableEngineView;
  /** Requests the router sent here so far (its own, immediate knowledge). */
  routedCount: number;
  /** Requests that reached the engine so far; each snapshot carries the value at the time it was taken. */
  arrivedCount: number;
}

interface MutableEngineView extends EngineView {
  index: number;
  believedInFlight: number;
  observedKvUsage: number;
  observedPendingPrefillTokens: number;
  observedAtMs: number;
}

function validate(options: SimulatorOptions): void {
  if (!Number.isInteger(options.engineCount) || options.engineCount < 1) {
    throw new SimUsageError(`engine count must be an integer ≥ 1, got ${options.engineCount}`);
  }
  if (!(options.loadDelayMs >= 0))
    throw new SimUsageError(`load delay must be ≥ 0 ms, got ${options.loadDelayMs}`);
  if (!(options.dispatchDelayMs >= 0)) {
    throw new SimUsageError(`dispatch delay must be ≥ 0 ms, got ${options.dispatchDelayMs}`);
  }
}

export function simulate(workload: Workload, options: SimulatorOptions): SimRunResult {
  validate(options);
  const { requests } = workload;
  const { policy, objectives, loadDelayMs, dispatchDelayMs } = options;
  const n = requests.length;
  const status = new Uint8Array(n);
  const admitted = new Uint8Array(n);
  const completed = new Uint8Array(n);
  const metObjectives = new Uint8Array(n);
  const firstTokenAt = new Float64Array(n).fill(Number.NaN);
  const lastTokenAt = new Float64Array(n).fill(Number.NaN);
  const ttftMs = new Float64Array(n).fill(Number.NaN);
  const meanItlMs = new Float64Array(n).fill(Number.NaN);
  const latencyMs = new Float64Array(n).fill(Number.NaN);
  const inFlightAtArrival = new Int32Array(n);
  const retryAfterMs = new Float64Array(n).fill(Number.NaN);
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
      model: options.createEngine(e),
      busy: false,
      pendingStep: undefined,
      view,
      routedCount: 0,
      arrivedCount: 0,
    });
  }
  const clusterView: ClusterView = {
    get inFlight() {
      return inFlight;
    },
    inFlightByClass,
    engines: views,
  };

  const reject = (key: string): void => {
    rejections.set(key, (rejections.get(key) ?? 0) + 1);
  };
  const settle = (): void => {
    settled++;
    if (options.onProgress && settled % progressEvery === 0) options.onProgress(settled, n);
  };
  const release = (r: SimRequest): void => {
    inFlight--;
    inFlightByClass[r.requestClass]--;
  };

  // Believed in-flight = what the snapshot saw + what was routed but had not reached the engine when the
  // snapshot was taken (in transit, or routed after it). Completions since the snapshot stay invisible.
  const applySnapshot = (
    e: number,
    takenAtMs: number,
    arrivedCount: number,
    load: EngineLoadSnapshot,
  ): void => {
    const engine = engines[e] as EngineState;
    const view = engine.view;
    if (takenAtMs < view.observedAtMs) return;
    view.believedInFlight = load.waiting + load.running + (engine.routedCount - arrivedCount);
    view.observedKvUsage = load.kvTotalBlocks > 0 ? load.kvUsedBlocks / load.kvTotalBlocks : 0;
    view.observedPendingPrefillTokens = load.pendingPrefillTokens;
    view.observedAtMs = takenAtMs;
  };

  const publishSnapshot = (e: number, atMs: number): void => {
    const engine = engines[e] as EngineState;
    const load = engine.model.load();
    if (loadDelayMs === 0) applySnapshot(e, atMs, engine.arrivedCount, load);
    else
      queue.push(atMs + loadDelayMs, {
        kind: "snapshot",
        engine: e,
        takenAtMs: atMs,
        arrivedCount: engine.arrivedCount,
        load,
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

  const arriveAtEngine = (e: number, index: number, atMs: number): void => {
    const engine = engines[e] as EngineState;
    const r = requests[index] as SimRequest;
    engine.arrivedCount++;
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
      lateRejections++;
      reject("engine:request_too_long");
      release(r);
      settle();
      return;
    }
    if (!engine.busy) startStep(e, atMs);
  };

  const route = (): number => {
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

  const onArrival = (index: number): void => {
    const r = requests[index] as SimRequest;
    inFlightAtArrival[index] = inFlight;
    const decision = policy.admit(r as PolicyRequest, clusterView, nowMs);
    if (!decision.admit) {
      status[index] = Status.Rejected;
      retryAfterMs[index] = decision.retryAfterMs;
      reject(`${decision.level}:${decision.reason}`);
      settle();
      return;
    }
    admitted[index] = 1;
    status[index] = Status.InFlight;
    inFlight++;
    inFlightByClass[r.requestClass]++;
    const e = route();
    const engine = engines[e] as EngineState;
    const engineArrivalMs = nowMs + dispatchDelayMs;
    engine.routedCount++;
    engine.view.believedInFlight++;
    if (dispatchDelayMs === 0) arriveAtEngine(e, index, nowMs);
    else queue.push(engineArrivalMs, { kind: "dispatch", engine: e, request: index });
  };

  const onStepEnd = (e: number): void => {
    const engine = engines[e] as EngineState;
    const result = engine.pendingStep as StepResult;
    engine.pendingStep = undefined;
    computedPrefillTokens += result.prefillTokens;
    for (const id of result.firstTokens) {
      const i = Number(id);
      if (!Number.isNaN(firstTokenAt[i] as number)) continue;
      firstTokenAt[i] = nowMs;
      lastTokenAt[i] = nowMs;
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
      release(r);
      policy.onComplete?.(
        r as PolicyRequest,
        { ttftMs: ttft, meanItlMs: meanItl, metObjectives: met },
        nowMs,
      );
      settle();
    }
    publishSnapshot(e, nowMs);
    startStep(e, nowMs);
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
    if (ev.kind === "step-end") onStepEnd(ev.engine);
    else if (ev.kind === "dispatch") arriveAtEngine(ev.engine, ev.request, nowMs);
    else applySnapshot(ev.engine, ev.takenAtMs, ev.arrivedCount, ev.load);
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
  for (let i = 0; i < n; i++) {
    if (status[i] === Status.InFlight || status[i] === Status.Pending) {
      throw new SimulationStalledError(i, nowMs);
    }
  }
  return {
    policy: policy.name,
    requests,
    windowMs: workload.windowMs,
    endMs: nowMs,
    ttftMs,
    meanItlMs,
    latencyMs,
    inFlightAtArrival,
    metObjectives,
    admitted,
    completed,
    rejections,
    lateRejections,
    itl,
    computedPrefillTokens,
    wastedPrefillTokens,
    preemptions,
    prefixCacheQueryTokens,
    prefixCacheHitTokens,
    retryAfterMs,
  };
}
