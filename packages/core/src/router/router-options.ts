// Router tunables that are not policy: how the router fills gaps in its knowledge and which busy
// checks it runs. Policy thresholds (per model, hot-reloaded) live in `ResolvedPolicy.router`.
import { RouterConfigError } from "./errors.js";

/** Which busy thresholds are checked; each can be switched off (e.g. the simulator's baselines). */
export interface BusyChecks {
  /** Active KV blocks over `busyDecodeBlockFraction` × capacity. */
  decodeBlockFraction: boolean;
  /** Pending prefill tokens over `busyPendingPrefillTokens` (or the batch ratio). */
  pendingPrefill: boolean;
  /** Predicted TTFT over `busyTtftObjectiveFraction` × the class objective. */
  predictedTtft: boolean;
}

export interface RouterDecisionOptions {
  /** Softmax temperature over normalized costs; 0 = always the cheapest worker. */
  temperature: number;
  /** Prefill throughput assumed until an engine reports a measured one. */
  defaultPrefillTokensPerS: number;
  /** Fraction of a worker's KV capacity assumed released per second until it reports a rate. */
  defaultKvReleaseFractionPerS: number;
  /** Engine observations older than this are ignored (the prediction alone is used). */
  maxObservedAgeMs: number;
  busyChecks: BusyChecks;
}

/**
 * 10 000 prefill tokens/s is a conservative H100 figure for an 8B model with chunked prefill (the
 * Dynamo mocker prices ~8k-token prefill chunks around 0.5–1 s under decode load); 5 %/s of KV
 * released is a batch of requests completing every ~20 s. Both only matter until engines report.
 */
export const DEFAULT_ROUTER_DECISION_OPTIONS: Readonly<RouterDecisionOptions> = Object.freeze({
  temperature: 0,
  defaultPrefillTokensPerS: 10_000,
  defaultKvReleaseFractionPerS: 0.05,
  maxObservedAgeMs: 2000,
  busyChecks: Object.freeze({ decodeBlockFraction: true, pendingPrefill: true, predictedTtft: true }),
});

function positiveFinite(name: string, v: number): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new RouterConfigError(`router option ${name} must be a finite number > 0, got ${String(v)}`);
  }
}

export function routerDecisionOptionsWithDefaults(
  options: Partial<Omit<RouterDecisionOptions, "busyChecks">> & { busyChecks?: Partial<BusyChecks> } = {},
): RouterDecisionOptions {
  const d = DEFAULT_ROUTER_DECISION_OPTIONS;
  const o: RouterDecisionOptions = {
    temperature: options.temperature ?? d.temperature,
    defaultPrefillTokensPerS: options.defaultPrefillTokensPerS ?? d.defaultPrefillTokensPerS,
    defaultKvReleaseFractionPerS: options.defaultKvReleaseFractionPerS ?? d.defaultKvReleaseFractionPerS,
    maxObservedAgeMs: options.maxObservedAgeMs ?? d.maxObservedAgeMs,
    busyChecks: { ...d.busyChecks, ...options.busyChecks },
  };
  if (typeof o.temperature !== "number" || !Number.isFinite(o.temperature) || o.temperature < 0) {
    throw new RouterConfigError(
      `router option temperature must be a finite number ≥ 0, got ${o.temperature}`,
    );
  }
  positiveFinite("defaultPrefillTokensPerS", o.defaultPrefillTokensPerS);
  positiveFinite("defaultKvReleaseFractionPerS", o.defaultKvReleaseFractionPerS);
  if (typeof o.maxObservedAgeMs !== "number" || !(o.maxObservedAgeMs >= 0)) {
    throw new RouterConfigError(`router option maxObservedAgeMs must be ≥ 0, got ${o.maxObservedAgeMs}`);
  }
  return o;
}
