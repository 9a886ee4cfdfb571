// Baseline `dynamo-busy`: NVIDIA Dynamo's busy thresholds (request rejection in the KV router / frontend).
//
// As documented by Dynamo (docs/router/kv_cache_routing.md, "--active-decode-blocks-threshold" and
// "--active-prefill-tokens-threshold-frac", ai-dynamo/dynamo PRs #4837 and #5867; the check lives in
// `KvWorkerMonitor::is_busy`, lib/llm/src/discovery/worker_monitor.rs): a worker is busy when
//   active decode blocks / total KV blocks > decode threshold, OR
//   active prefill tokens > prefill fraction × max_num_batched_tokens;
// busy workers are excluded from routing, and a request is rejected (HTTP 503) only when EVERY worker is
// busy. Dynamo answers without a Retry-After, so none is recorded.
//
// What the monitor sees is the workers' published load (`ActiveLoad` on the KV metrics subject), i.e. the
// engine's own observation as it arrives — here the snapshots `--load-delay-ms` old. (Dynamo issue #7753
// describes router-local values overwriting the worker's in production, which would make it weaker; we
// simulate the intended behaviour.) Routing of admitted requests stays the simulator's least-loaded choice,
// so the comparison isolates the admission rule, not Dynamo's KV-aware cost function.

import { SimUsageError } from "./errors.js";
import type { AdmissionDecision, AdmissionPolicy, ClusterView, PolicyContext } from "./policy.js";

export interface DynamoBusyOptions {
  /** Busy when active KV blocks / total exceed this, in (0, 1]. Dynamo's documented starting point: 0.85. */
  decodeBlockThreshold: number;
  /** Busy when pending prefill tokens exceed this × max_num_batched_tokens. */
  prefillBatchFraction: number;
}

export const DEFAULT_DYNAMO_BUSY_OPTIONS: Readonly<DynamoBusyOptions> = Object.freeze({
  decodeBlockThreshold: 0.85,
  prefillBatchFraction: 1.5,
});

const ADMIT: AdmissionDecision = Object.freeze({ admit: true });

export function dynamoBusyPolicy(
  context: PolicyContext,
  options: DynamoBusyOptions = DEFAULT_DYNAMO_BUSY_OPTIONS,
): AdmissionPolicy {
  const { decodeBlockThreshold, prefillBatchFraction } = options;
  if (!(decodeBlockThreshold > 0 && decodeBlockThreshold <= 1)) {
    throw new SimUsageError(`dynamo-busy decode threshold must be in (0, 1], got ${decodeBlockThreshold}`);
  }
  if (!(prefillBatchFraction > 0) || !Number.isFinite(prefillBatchFraction)) {
    throw new SimUsageError(`dynamo-busy prefill fraction must be a number > 0, got ${prefillBatchFraction}`);
  }
  const prefillLimitTokens = prefillBatchFraction * context.maxNumBatchedTokens;
  const decision: AdmissionDecision = {
    admit: false,
    level: "L2",
    reason: "dynamo_all_workers_busy",
    retryAfterMs: Number.NaN,
  };
  return {
    name: "dynamo-busy",
    admit(_request, view: ClusterView): AdmissionDecision {
      for (const e of view.engines) {
        const busy =
          e.observedKvUsage > decodeBlockThreshold || e.observedPendingPrefillTokens > prefillLimitTokens;
        if (!busy) return ADMIT;
      }
      return decision;
    },
  };
}
