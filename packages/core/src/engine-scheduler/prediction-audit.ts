// Prediction audit: how good is the L3 TTFT prediction? The decision records the TTFT it predicted
// for each request it queues; when the first token arrives the audit returns the relative error,
// which the sidecar exports as a Prometheus histogram. Pure and bounded: an entry lives only from
// record to resolve / forget, and the oldest entry is dropped (and counted) past `maxPending`.
import { EngineSchedulerConfigError } from "./errors.js";

export interface PredictionAuditResult {
  predictedTtftMs: number;
  measuredTtftMs: number;
  /** (predicted − measured) / measured: > 0 over-predicted (too pessimistic), < 0 under-predicted. */
  signedRelativeError: number;
  /** |signedRelativeError|, what the histogram buckets. */
  relativeError: number;
}

export interface PredictionAudit {
  /** Remembers the prediction made at `startMs` (the time base the measured TTFT starts from). */
  record(id: string, predictedTtftMs: number, startMs: number): void;
  /** First token at `nowMs`: the error of the recorded prediction, or null if none was recorded. */
  resolve(id: string, nowMs: number): PredictionAuditResult | null;
  /** The request ended without a first token (rejected, cancelled, failed). */
  forget(id: string): void;
  readonly pending: number;
  /** Entries dropped because `maxPending` was exceeded (a sign the shell leaks ids). */
  readonly dropped: number;
}

/** Measured TTFTs below this are floored so a 0 ms first token does not divide by zero. */
const MIN_MEASURED_MS = 1;

export function createPredictionAudit(maxPending = 65536): PredictionAudit {
  if (!(Number.isInteger(maxPending) && maxPending >= 1))
    throw new EngineSchedulerConfigError(
      `prediction audit maxPending must be an integer ≥ 1, got ${maxPending}`,
    );
  // Map iteration is insertion order, so the first key is the oldest entry.
  const entries = new Map<string, { predictedTtftMs: number; startMs: number }>();
  let dropped = 0;
  return {
    record(id, predictedTtftMs, startMs) {
      if (!Number.isFinite(predictedTtftMs) || !Number.isFinite(startMs)) return;
      entries.delete(id);
      entries.set(id, { predictedTtftMs, startMs });
      if (entries.size > maxPending) {
        const oldest = entries.keys().next().value as string;
        entries.delete(oldest);
        dropped++;
      }
    },
    resolve(id, nowMs) {
      const e = entries.get(id);
      if (e === undefined) return null;
      entries.delete(id);
      const measuredTtftMs = nowMs - e.startMs;
      const signedRelativeError =
        (e.predictedTtftMs - measuredTtftMs) / Math.max(MIN_MEASURED_MS, measuredTtftMs);
      return {
        predictedTtftMs: e.predictedTtftMs,
        measuredTtftMs,
        signedRelativeError,
        relativeError: Math.abs(signedRelativeError),
      };
    },
    forget(id) {
      entries.delete(id);
    },
    get pending() {
      return entries.size;
    },
    get dropped() {
      return dropped;
    },
  };
}
