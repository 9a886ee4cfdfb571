// Baseline: a fixed global in-flight limit, as many gateways configure. Its Retry-After is still
// predicted, from the observed completion rate: the time until enough in-flight requests drain.

import { SimUsageError } from "./errors.js";
import type { AdmissionDecision, AdmissionPolicy, ClusterView, PolicyRequest } from "./policy.js";

export interface StaticPolicyOptions {
  /** Admit while fewer than this many requests are in flight cluster-wide. */
  maxInflight: number;
  /** Smoothing of the completion-rate estimate used for Retry-After (weight of each new interval). */
  completionRateAlpha?: number;
  /** Retry-After when no completion has been seen yet. */
  coldRetryAfterMs?: number;
}

export const DEFAULT_STATIC_COMPLETION_RATE_ALPHA = 0.05;
export const DEFAULT_STATIC_COLD_RETRY_AFTER_MS = 1000;

export function staticLimitPolicy(options: StaticPolicyOptions): AdmissionPolicy {
  const { maxInflight } = options;
  if (!Number.isInteger(maxInflight) || maxInflight < 1) {
    throw new SimUsageError(`static in-flight limit must be an integer ≥ 1, got ${maxInflight}`);
  }
  const alpha = options.completionRateAlpha ?? DEFAULT_STATIC_COMPLETION_RATE_ALPHA;
  const coldRetryAfterMs = options.coldRetryAfterMs ?? DEFAULT_STATIC_COLD_RETRY_AFTER_MS;
  let lastCompletionMs: number | undefined;
  let meanGapMs: number | undefined;
  return {
    name: "static",
    admit(_request: PolicyRequest, view: ClusterView): AdmissionDecision {
      if (view.inFlight < maxInflight) return { admit: true };
      const excess = view.inFlight - maxInflight + 1;
      return {
        admit: false,
        level: "L1",
        reason: "static_inflight_limit",
        retryAfterMs: meanGapMs === undefined ? coldRetryAfterMs : excess * meanGapMs,
      };
    },
    onComplete(_request, _facts, nowMs: number): void {
      if (lastCompletionMs !== undefined) {
        const gap = nowMs - lastCompletionMs;
        meanGapMs = meanGapMs === undefined ? gap : meanGapMs + alpha * (gap - meanGapMs);
      }
      lastCompletionMs = nowMs;
    },
  };
}
