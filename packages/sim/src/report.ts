// Summarises one run into the per-policy report (JSON fields in snake_case, as `--json` prints them).

import { REQUEST_CLASSES } from "./classes.js";
import { quantileSorted } from "./latency-histogram.js";
import type { SimRunResult } from "./simulator.js";

/** One request class's share of a run (only classes that occur in the workload are reported). */
export interface ClassReport {
  requests: number;
  admitted: number;
  /** Rejected by a policy level / requests of the class. */
  rejected_fraction: number;
  /** Completed meeting the class's objectives / admitted requests of the class. */
  slo_attainment_admitted: number;
  goodput_rps: number;
}

export interface PolicyReport {
  policy: string;
  rate_scale: number;
  requests: number;
  window_s: number;
  offered_rps: number;
  admitted: number;
  completed: number;
  completed_rps: number;
  /** Requests completed meeting both class objectives, per second of the offered window. */
  goodput_rps: number;
  /** Completed meeting objectives / admitted (engine refusals count as admitted and missed). */
  slo_attainment_admitted: number;
  rejected_fraction: number;
  /** `level:reason` → fraction of all requests. */
  rejected_by: Record<string, number>;
  /** Level (`L1`, `L2`, `L3`, `engine`) → fraction of all requests rejected there. */
  rejected_by_level: Record<string, number>;
  late_rejections: number;
  ttft_p50_ms: number;
  ttft_p90_ms: number;
  ttft_p99_ms: number;
  itl_p50_ms: number;
  itl_p90_ms: number;
  itl_p99_ms: number;
  mean_itl_p99_ms: number;
  /** Prompt tokens of admitted requests that then missed an objective (upper bound: includes cache hits). */
  wasted_prefill_tokens: number;
  computed_prefill_tokens: number;
  preemptions: number;
  /** Prefix-cache hit tokens / query tokens over all engines. */
  prefix_cache_hit_rate: number;
  /** Median policy Retry-After over rejected requests; null when none. */
  retry_after_p50_ms: number | null;
  /** goodput / max-sustainable goodput; null when capacity was not found. */
  goodput_vs_capacity: number | null;
  /** Time-averaged admitted requests in flight over the window (Little's law: Σ latency / window). */
  mean_inflight: number;
  /** 99th percentile of the in-flight count arrivals saw (sizes a static limit: Poisson arrivals see time averages). */
  inflight_p99_at_arrival: number;
  /** Virtual seconds until the last request settled. */
  drain_s: number;
  /** Per request class that occurs in the workload. */
  by_class: Record<string, ClassReport>;
  /** Retries made (only with the simulator's `retryRejected`; 0 otherwise). */
  retries: number;
  /** Retries admitted by every level / retries; null when there were none. */
  retry_after_accuracy: number | null;
  /** Retries that were admitted and met their objectives / retries; null when there were none. */
  retry_met_fraction: number | null;
}

function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function sortedFinite(values: Float64Array, mask: Uint8Array): Float64Array {
  let count = 0;
  for (let i = 0; i < values.length; i++) if (mask[i] === 1) count++;
  const out = new Float64Array(count);
  let k = 0;
  for (let i = 0; i < values.length; i++) if (mask[i] === 1) out[k++] = values[i] as number;
  return out.sort();
}

/** JSON has no NaN: missing percentiles (nothing completed) become null via this. */
function finiteOrNull(value: number, digits?: number): number {
  return Number.isFinite(value) ? round(value, digits) : (null as unknown as number);
}

export function summarize(
  result: SimRunResult,
  rateScale: number,
  capacityGoodputRps: number | undefined,
): PolicyReport {
  const n = result.requests.length;
  const windowS = result.windowMs / 1000;
  let admitted = 0;
  let completed = 0;
  let met = 0;
  let latencySumMs = 0;
  for (let i = 0; i < n; i++) {
    if (result.completed[i] === 1) latencySumMs += result.latencyMs[i] as number;
    admitted += result.admitted[i] as number;
    completed += result.completed[i] as number;
    met += result.metObjectives[i] as number;
  }
  let rejectedTotal = 0;
  const rejectedBy: Record<string, number> = {};
  const byLevelCount: Record<string, number> = {};
  for (const [key, count] of [...result.rejections.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    rejectedTotal += count;
    rejectedBy[key] = round(count / n, 6);
    const level = key.slice(0, key.indexOf(":"));
    byLevelCount[level] = (byLevelCount[level] ?? 0) + count;
  }
  const rejectedByLevel: Record<string, number> = {};
  for (const [level, count] of Object.entries(byLevelCount)) rejectedByLevel[level] = round(count / n, 6);
  const ttft = sortedFinite(result.ttftMs, result.completed);
  const meanItl = sortedFinite(result.meanItlMs, result.completed);
  const retry = result.retryAfterMs.filter((v) => Number.isFinite(v)).sort();
  const goodput = met / windowS;
  const retries = result.retries?.of.length ?? 0;
  let retriesAdmitted = 0;
  let retriesMet = 0;
  for (let k = 0; k < retries; k++) {
    retriesAdmitted += result.retries?.admitted[k] as number;
    retriesMet += result.retries?.metObjectives[k] as number;
  }
  return {
    policy: result.policy,
    rate_scale: round(rateScale, 6),
    requests: n,
    window_s: round(windowS),
    offered_rps: round(n / windowS),
    admitted,
    completed,
    completed_rps: round(completed / windowS),
    goodput_rps: round(goodput),
    slo_attainment_admitted: admitted > 0 ? round(met / admitted, 6) : 0,
    rejected_fraction: round(rejectedTotal / n, 6),
    rejected_by: rejectedBy,
    rejected_by_level: rejectedByLevel,
    late_rejections: result.lateRejections,
    ttft_p50_ms: finiteOrNull(quantileSorted(ttft, 0.5), 1),
    ttft_p90_ms: finiteOrNull(quantileSorted(ttft, 0.9), 1),
    ttft_p99_ms: finiteOrNull(quantileSorted(ttft, 0.99), 1),
    itl_p50_ms: finiteOrNull(result.itl.quantile(0.5), 2),
    itl_p90_ms: finiteOrNull(result.itl.quantile(0.9), 2),
    itl_p99_ms: finiteOrNull(result.itl.quantile(0.99), 2),
    mean_itl_p99_ms: finiteOrNull(quantileSorted(meanItl, 0.99), 2),
    wasted_prefill_tokens: result.wastedPrefillTokens,
    computed_prefill_tokens: result.computedPrefillTokens,
    preemptions: result.preemptions,
    prefix_cache_hit_rate:
      result.prefixCacheQueryTokens > 0
        ? round(result.prefixCacheHitTokens / result.prefixCacheQueryTokens, 4)
        : 0,
    retry_after_p50_ms: retry.length > 0 ? round(quantileSorted(retry, 0.5), 1) : null,
    goodput_vs_capacity:
      capacityGoodputRps !== undefined && capacityGoodputRps > 0
        ? round(goodput / capacityGoodputRps, 4)
        : null,
    mean_inflight: round(latencySumMs / result.windowMs, 2),
    inflight_p99_at_arrival: quantileSorted(Float64Array.from(result.inFlightAtArrival).sort(), 0.99),
    drain_s: round(result.endMs / 1000),
    by_class: summarizeClasses(result, windowS),
    retries,
    retry_after_accuracy: retries > 0 ? round(retriesAdmitted / retries, 4) : null,
    retry_met_fraction: retries > 0 ? round(retriesMet / retries, 4) : null,
  };
}

function summarizeClasses(result: SimRunResult, windowS: number): Record<string, ClassReport> {
  const out: Record<string, ClassReport> = {};
  for (const name of REQUEST_CLASSES) {
    let requests = 0;
    let admitted = 0;
    let met = 0;
    for (let i = 0; i < result.requests.length; i++) {
      if ((result.requests[i] as { requestClass: string }).requestClass !== name) continue;
      requests++;
      admitted += result.admitted[i] as number;
      met += result.metObjectives[i] as number;
    }
    if (requests === 0) continue;
    out[name] = {
      requests,
      admitted,
      rejected_fraction: round((requests - admitted) / requests, 6),
      slo_attainment_admitted: admitted > 0 ? round(met / admitted, 6) : 0,
      goodput_rps: round(met / windowS),
    };
  }
  return out;
}

const COLUMNS: [header: string, value: (r: PolicyReport) => string][] = [
  ["policy", (r) => r.policy],
  ["scale", (r) => String(r.rate_scale)],
  ["offered/s", (r) => r.offered_rps.toFixed(2)],
  ["done/s", (r) => r.completed_rps.toFixed(2)],
  ["goodput/s", (r) => r.goodput_rps.toFixed(2)],
  ["vs cap", (r) => (r.goodput_vs_capacity === null ? "-" : `${(r.goodput_vs_capacity * 100).toFixed(1)}%`)],
  ["SLO adm", (r) => `${(r.slo_attainment_admitted * 100).toFixed(1)}%`],
  ["rejected", (r) => `${(r.rejected_fraction * 100).toFixed(1)}%`],
  ["TTFT p50/p90/p99 ms", (r) => `${fmt(r.ttft_p50_ms)}/${fmt(r.ttft_p90_ms)}/${fmt(r.ttft_p99_ms)}`],
  ["ITL p50/p90/p99 ms", (r) => `${fmt(r.itl_p50_ms)}/${fmt(r.itl_p90_ms)}/${fmt(r.itl_p99_ms)}`],
  ["wasted prefill", (r) => String(r.wasted_prefill_tokens)],
  ["prefix hit", (r) => `${(r.prefix_cache_hit_rate * 100).toFixed(1)}%`],
];

function fmt(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return "-";
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

/** A fixed-width text table, one row per report, plus a rejection breakdown line per rejecting policy. */
export function formatReportTable(reports: readonly PolicyReport[]): string {
  const rows = reports.map((r) => COLUMNS.map(([, value]) => value(r)));
  const widths = COLUMNS.map(([h], c) => Math.max(h.length, ...rows.map((row) => (row[c] as string).length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] as number) : cell.padStart(widths[c] as number)))
      .join("  ");
  const out = [line(COLUMNS.map(([h]) => h)), ...rows.map(line)];
  for (const r of reports) {
    const parts = Object.entries(r.rejected_by).map(([k, f]) => `${k} ${(f * 100).toFixed(2)}%`);
    if (parts.length > 0) out.push(`  ${r.policy} @${r.rate_scale} rejections: ${parts.join(", ")}`);
  }
  return `${out.join("\n")}\n`;
}
