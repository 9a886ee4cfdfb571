// Turns the client's measurements into exactly the report `sluice sim` prints (same `summarize`, same JSON
// keys, policy `replay`), judged by the same class objectives, plus the client-side facts only a real
// replay has: send lag, event-loop delay, output-length mismatches and the client-bottleneck verdict.

import { basename } from "node:path";
import {
  DEFAULT_CLASS_OBJECTIVES,
  type SimJsonRow,
  type SimRequest,
  type SimRunResult,
  summarize,
} from "@sluice/sim";
import type { ReplayMeasurements } from "./replay-runner.js";

export interface ClientStats {
  /** How the timeline was scaled: wall ms × this = engine ms. */
  speedup_factor: number;
  targets: string[];
  /** Send time − due time over all requests sent, engine ms. */
  send_lag_p50_ms: number;
  send_lag_p99_ms: number;
  send_lag_max_ms: number;
  /** Event-loop delay of the replay process, converted to engine ms (it delays every token timestamp). */
  event_loop_delay_p99_ms: number;
  /** Completed requests whose output length differs from the trace's. */
  output_length_mismatches: number;
  /** `reason` → count of requests with no complete answer (connection, timeout, truncated, protocol). */
  failures: Record<string, number>;
  /** Engine ms the replay took until the last request settled. */
  drain_ms: number;
  /** True when the client's own lateness exceeded `maxClientLagMs`: goodput is then withheld (null). */
  client_bottleneck: boolean;
  /** Why goodput was withheld; null when it was not. */
  verdict: string | null;
}

export interface ReplayReport {
  row: SimJsonRow;
  client: ClientStats;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] as number;
}

function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function summarizeReplay(m: ReplayMeasurements): ReplayReport {
  const { options, workload } = m;
  const s = options.speedupFactor;
  const requests = workload.requests;
  const n = requests.length;
  const ttftMs = new Float64Array(n).fill(Number.NaN);
  const meanItlMs = new Float64Array(n).fill(Number.NaN);
  const latencyMs = new Float64Array(n).fill(Number.NaN);
  const retryAfterMs = new Float64Array(n).fill(Number.NaN);
  const metObjectives = new Uint8Array(n);
  const admitted = new Uint8Array(n);
  const completed = new Uint8Array(n);
  const rejections = new Map<string, number>();
  const failures: Record<string, number> = {};
  const count = (key: string): void => {
    rejections.set(key, (rejections.get(key) ?? 0) + 1);
  };
  let lateRejections = 0;
  let wastedPrefillTokens = 0;
  let computedPrefillTokens = 0;
  let cacheQueryTokens = 0;
  let cacheHitTokens = 0;
  let mismatches = 0;
  for (let i = 0; i < n; i++) {
    const r = requests[i] as SimRequest;
    const outcome = m.outcomes[i];
    const due = m.dueWallMs[i] as number;
    if (outcome === undefined) continue;
    switch (outcome.kind) {
      case "completed": {
        admitted[i] = 1;
        completed[i] = 1;
        // TTFT counts from the DUE time, as the simulator counts from arrival: a late send is the
        // client's delay the user would have seen, not something to hide (no coordinated omission).
        const ttft = (outcome.firstTokenAtMs - due) * s;
        const meanItl =
          outcome.outputTokens > 1
            ? ((outcome.lastTokenAtMs - outcome.firstTokenAtMs) * s) / (outcome.outputTokens - 1)
            : 0;
        const objective = DEFAULT_CLASS_OBJECTIVES[r.requestClass];
        const met = ttft <= objective.ttftObjectiveMs && meanItl <= objective.meanItlObjectiveMs;
        ttftMs[i] = ttft;
        meanItlMs[i] = meanItl;
        latencyMs[i] = (outcome.lastTokenAtMs - due) * s;
        metObjectives[i] = met ? 1 : 0;
        if (!met) wastedPrefillTokens += r.promptTokens;
        if (outcome.outputTokens !== r.outputTokens) mismatches++;
        const prompt = Number.isFinite(outcome.promptTokens) ? outcome.promptTokens : r.promptTokens;
        if (Number.isFinite(outcome.cachedTokens)) {
          cacheQueryTokens += prompt;
          cacheHitTokens += outcome.cachedTokens;
          computedPrefillTokens += prompt - outcome.cachedTokens;
        } else {
          // Without `cached_tokens` the client cannot see cache hits: an upper bound, like the sim's.
          computedPrefillTokens += prompt;
        }
        break;
      }
      case "rejected":
        count(`${outcome.level}:${outcome.reason}`);
        retryAfterMs[i] = outcome.retryAfterMs;
        break;
      case "refused":
        // An engine refusing an admitted request: the simulator's `engine:*` late rejection.
        admitted[i] = 1;
        lateRejections++;
        count(`engine:${outcome.code}`);
        break;
      case "failed":
        admitted[i] = 1;
        failures[outcome.reason] = (failures[outcome.reason] ?? 0) + 1;
        break;
    }
  }
  const result: SimRunResult = {
    policy: "replay",
    requests,
    windowMs: workload.windowMs,
    endMs: m.endWallMs * s,
    ttftMs,
    meanItlMs,
    inFlightAtArrival: m.inFlightAtSend,
    latencyMs,
    metObjectives,
    admitted,
    completed,
    rejections,
    lateRejections,
    itl: m.itlEngineMs,
    computedPrefillTokens,
    wastedPrefillTokens,
    preemptions: 0,
    prefixCacheQueryTokens: cacheQueryTokens,
    prefixCacheHitTokens: cacheHitTokens,
    retryAfterMs,
  };
  const report = summarize(result, workload.rateScale, undefined);

  const lags = new Float64Array(n);
  let sent = 0;
  for (let i = 0; i < n; i++) {
    const sentAt = m.sentWallMs[i] as number;
    if (Number.isFinite(sentAt)) lags[sent++] = (sentAt - (m.dueWallMs[i] as number)) * s;
  }
  const sortedLags = lags.subarray(0, sent).sort();
  const lagP99 = quantile(sortedLags, 0.99);
  const loopP99 = m.eventLoopDelayWallMs.p99 * s;
  const limit = options.maxClientLagMs;
  const bottleneck = lagP99 > limit || loopP99 > limit;
  const verdict = bottleneck
    ? `client was the bottleneck: p99 send lag ${round(lagP99)} ms and p99 event-loop delay ${round(loopP99)} ms ` +
      `(engine time) against a limit of ${limit} ms; goodput is not reported — lower --speedup or ` +
      "--rate-scale, or run the client on its own machine"
    : null;
  const row: SimJsonRow = {
    ...report,
    // JSON has no "unknown": null, which no goodput comparison can mistake for a measurement.
    goodput_rps: bottleneck ? (null as unknown as number) : report.goodput_rps,
    trace: basename(options.trace.source),
    engines: options.targets.length,
    static_limit: null,
    seed: options.seed,
    capacity_rate_scale: null,
    capacity_goodput_rps: null,
  };
  return {
    row,
    client: {
      speedup_factor: s,
      targets: options.targets.map((t) => t.href),
      send_lag_p50_ms: round(quantile(sortedLags, 0.5), 2),
      send_lag_p99_ms: round(lagP99, 2),
      send_lag_max_ms: round(sortedLags.length > 0 ? (sortedLags[sortedLags.length - 1] as number) : 0, 2),
      event_loop_delay_p99_ms: round(loopP99, 2),
      output_length_mismatches: mismatches,
      failures,
      drain_ms: round(m.endWallMs * s),
      client_bottleneck: bottleneck,
      verdict,
    },
  };
}

export function describeClientStats(c: ClientStats): string {
  const failures = Object.entries(c.failures)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return (
    `replay: engine time = wall time × ${c.speedup_factor}; send lag p50/p99/max ${c.send_lag_p50_ms}/` +
    `${c.send_lag_p99_ms}/${c.send_lag_max_ms} ms, event-loop delay p99 ${c.event_loop_delay_p99_ms} ms ` +
    `(engine ms); output-length mismatches ${c.output_length_mismatches}; failures ${failures || "0"}\n` +
    (c.verdict !== null ? `replay: ${c.verdict}\n` : "")
  );
}
