// Turns a trace into the simulator's arrival sequence: seeded spreading of timestamp buckets, cut to a
// duration, compressed by the rate scale, each request given a class.

import { type ClassMix, DEFAULT_CLASS_MIX, type RequestClass, sampleClass } from "./classes.js";
import { SimUsageError } from "./errors.js";
import { createRng, deriveSeed } from "./rng.js";
import type { Trace } from "./trace.js";

export interface WorkloadOptions {
  /** Arrivals are divided by this (2 = twice the trace's rate). */
  rateScale: number;
  /** Keep only requests recorded in the first `durationMs` of the trace (trace time, before scaling). */
  durationMs?: number;
  /**
   * Requests sharing one recorded timestamp are spread uniformly (seeded) over
   * [t, min(t + spreadBucketMs, next recorded timestamp)): Mooncake's conversation trace records arrivals
   * in 3 s buckets, and replaying them literally would create micro-bursts of up to 28 requests. 0 replays
   * the recorded timestamps as they are.
   */
  spreadBucketMs: number;
  seed: number;
  classMix: ClassMix;
}

export const DEFAULT_SPREAD_BUCKET_MS = 3000;

export const DEFAULT_WORKLOAD_OPTIONS: Readonly<WorkloadOptions> = Object.freeze({
  rateScale: 1,
  spreadBucketMs: DEFAULT_SPREAD_BUCKET_MS,
  seed: 1,
  classMix: DEFAULT_CLASS_MIX,
});

export interface SimRequest {
  /** Position in arrival order; also the engine request id (as a string). */
  index: number;
  /** Virtual ms (scaled) at which the client sends it to the ingress. */
  arrivalMs: number;
  promptTokens: number;
  outputTokens: number;
  /** Mooncake trace-block ids; undefined for traces without prefix information (unique prompts). */
  hashIds: readonly number[] | undefined;
  requestClass: RequestClass;
}

export interface Workload {
  requests: SimRequest[];
  /** Length of the offered window in virtual ms: rates are counted per second of it. */
  windowMs: number;
  rateScale: number;
}

const SPREAD_STREAM = 1;
const CLASS_STREAM = 2;

export function buildWorkload(trace: Trace, options: Partial<WorkloadOptions> = {}): Workload {
  const o = { ...DEFAULT_WORKLOAD_OPTIONS, ...options };
  if (!(o.rateScale > 0) || !Number.isFinite(o.rateScale)) {
    throw new SimUsageError(`rate scale must be a positive number, got ${o.rateScale}`);
  }
  if (o.durationMs !== undefined && !(o.durationMs > 0)) {
    throw new SimUsageError(`duration must be positive, got ${o.durationMs} ms`);
  }
  if (!(o.spreadBucketMs >= 0))
    throw new SimUsageError(`spread bucket must be ≥ 0 ms, got ${o.spreadBucketMs}`);
  const spreadRng = createRng(deriveSeed(o.seed, SPREAD_STREAM));
  const classRng = createRng(deriveSeed(o.seed, CLASS_STREAM));
  const records = trace.records.filter((r) => o.durationMs === undefined || r.timestampMs < o.durationMs);
  if (records.length === 0)
    throw new SimUsageError(`no requests in the first ${o.durationMs} ms of ${trace.source}`);

  // Trace times after spreading (records are sorted by timestamp).
  const times = new Float64Array(records.length);
  for (let i = 0; i < records.length; ) {
    const t = (records[i] as { timestampMs: number }).timestampMs;
    let j = i;
    while (j < records.length && (records[j] as { timestampMs: number }).timestampMs === t) j++;
    const next =
      j < records.length ? (records[j] as { timestampMs: number }).timestampMs : t + o.spreadBucketMs;
    const width = j - i > 1 ? Math.min(o.spreadBucketMs, next - t) : 0;
    for (let k = i; k < j; k++) times[k] = t + spreadRng() * width;
    i = j;
  }
  const order = Array.from(times.keys()).sort((a, b) => (times[a] as number) - (times[b] as number) || a - b);
  const requests: SimRequest[] = order.map((k, index) => {
    const r = records[k] as (typeof records)[number];
    return {
      index,
      arrivalMs: (times[k] as number) / o.rateScale,
      promptTokens: r.promptTokens,
      outputTokens: r.outputTokens,
      hashIds: r.hashIds,
      requestClass: sampleClass(o.classMix, classRng),
    };
  });
  const first = (requests[0] as SimRequest).arrivalMs;
  const last = (requests[requests.length - 1] as SimRequest).arrivalMs;
  const windowMs = o.durationMs !== undefined ? o.durationMs / o.rateScale : Math.max(last - first, 1);
  return { requests, windowMs, rateScale: o.rateScale };
}
