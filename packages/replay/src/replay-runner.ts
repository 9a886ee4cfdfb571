// The open-loop replay: sends every request of the workload at its (scaled, sped-up) due time, whatever
// the target answers, and records what the client saw. One timer walks the timeline; each wake sends
// everything due, so a slow wake shows up as send lag instead of shifting the rest of the schedule.

import { monitorEventLoopDelay } from "node:perf_hooks";
import { buildWorkload, LatencyHistogram, type SimRequest, type Workload } from "@sluice/sim";
import { completionsUrl, type ReplayOptions, type ResolvedReplayOptions, withDefaults } from "./options.js";
import type { RequestOutcome } from "./outcome.js";
import { DEFAULT_PROMPT_TOKEN_OPTIONS, promptTokenIds } from "./prompt-tokens.js";
import { createStreamClient } from "./stream-client.js";

/** Raw client-side measurements, wall ms relative to the replay start (due time of trace time 0). */
export interface ReplayMeasurements {
  options: ResolvedReplayOptions;
  workload: Workload;
  /** Per request (by index). */
  outcomes: RequestOutcome[];
  dueWallMs: Float64Array;
  sentWallMs: Float64Array;
  /** Client in-flight requests when each was sent (before it). */
  inFlightAtSend: Int32Array;
  /** Per-token gaps of every stream, already in engine ms. */
  itlEngineMs: LatencyHistogram;
  /** Wall ms (from start) at which the last request settled. */
  endWallMs: number;
  /** Event-loop delay of the replay process while it ran, wall ms (p50, p99, max). */
  eventLoopDelayWallMs: { p50: number; p99: number; max: number };
}

/** Wall ms between starting the clock and the first due time: room to set up the first requests. */
const START_DELAY_WALL_MS = 20;
const PROGRESS_EVERY_WALL_MS = 1000;

function requestBody(request: SimRequest, model: string, seed: number): string {
  // Token ids are built per request and dropped once sent: a whole trace's prompts would not fit memory.
  const prompt = promptTokenIds(request, { ...DEFAULT_PROMPT_TOKEN_OPTIONS, seed });
  return JSON.stringify({
    model,
    prompt,
    max_tokens: request.outputTokens,
    // `min_tokens` forces the trace's output length on engines that would stop early (vLLM, mock with EOS).
    min_tokens: request.outputTokens,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
  });
}

export async function runReplay(
  input: Pick<ReplayOptions, "trace" | "targets"> & Partial<ReplayOptions>,
): Promise<ReplayMeasurements> {
  const options = withDefaults(input);
  const workload = buildWorkload(options.trace, {
    rateScale: options.rateScale,
    spreadBucketMs: options.spreadBucketMs,
    seed: options.seed,
    classMix: options.classMix,
    ...(options.durationMs !== undefined ? { durationMs: options.durationMs } : {}),
  });
  const { requests } = workload;
  const n = requests.length;
  const speedup = options.speedupFactor;
  const now = options.now;
  const urls = options.targets.map(completionsUrl);
  const perTargetInFlight = new Int32Array(urls.length);
  // Every time the replay records, the stream client's included, is wall ms since the start of the timeline.
  const start = now() + START_DELAY_WALL_MS;
  const clock = (): number => now() - start;
  const client = createStreamClient({
    requestTimeoutMs: options.requestTimeoutWallMs,
    now: clock,
    headers: options.headers,
  });
  const outcomes = new Array<RequestOutcome>(n);
  const dueWallMs = new Float64Array(n);
  const sentWallMs = new Float64Array(n).fill(Number.NaN);
  const inFlightAtSend = new Int32Array(n);
  const itl = new LatencyHistogram();
  const onTokenGap = (gapWallMs: number): void => itl.add(gapWallMs * speedup);
  for (let i = 0; i < n; i++) dueWallMs[i] = (requests[i] as SimRequest).arrivalMs / speedup;

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const counts = { sent: 0, inFlight: 0, completed: 0, rejected: 0, failed: 0 };
  let roundRobin = 0;
  let next = 0;
  let timer: NodeJS.Timeout | undefined;
  let lastProgressWallMs = Number.NEGATIVE_INFINITY;
  let lastLagMs = 0;
  let endWallMs = 0;
  let resolveAll: () => void = () => {};
  const allSettled = new Promise<void>((resolve) => {
    resolveAll = resolve;
  });
  let settledCount = 0;

  const progress = (force: boolean): void => {
    if (options.onProgress === undefined) return;
    const t = clock();
    if (!force && t - lastProgressWallMs < PROGRESS_EVERY_WALL_MS) return;
    lastProgressWallMs = t;
    options.onProgress({
      total: n,
      ...counts,
      traceMs: Math.max(0, t * speedup),
      lastLagMs,
    });
  };

  /** Least in-flight target, ties broken round-robin: the client's exact view of its own load. */
  const pickTarget = (): number => {
    let best = -1;
    for (let k = 0; k < urls.length; k++) {
      const j = (roundRobin + k) % urls.length;
      if (best < 0 || (perTargetInFlight[j] as number) < (perTargetInFlight[best] as number)) best = j;
    }
    roundRobin = (roundRobin + 1) % urls.length;
    return best;
  };

  // The next request's body is built while waiting for its due time, so building a 100 k-token prompt
  // never delays a send.
  let prepared: { index: number; body: string } | undefined;
  const bodyOf = (i: number): string => {
    const body =
      prepared?.index === i
        ? prepared.body
        : requestBody(requests[i] as SimRequest, options.model, options.seed);
    prepared = undefined;
    return body;
  };

  const dispatch = (i: number): void => {
    const target = pickTarget();
    const body = bodyOf(i);
    inFlightAtSend[i] = counts.inFlight;
    counts.inFlight++;
    counts.sent++;
    perTargetInFlight[target] = (perTargetInFlight[target] as number) + 1;
    const sentAt = clock();
    sentWallMs[i] = sentAt;
    lastLagMs = (sentAt - (dueWallMs[i] as number)) * speedup;
    void client.send(urls[target] as URL, body, onTokenGap).then((outcome) => {
      outcomes[i] = outcome;
      counts.inFlight--;
      perTargetInFlight[target] = (perTargetInFlight[target] as number) - 1;
      if (outcome.kind === "completed") counts.completed++;
      else if (outcome.kind === "rejected") counts.rejected++;
      else counts.failed++;
      settledCount++;
      if (settledCount === n) {
        endWallMs = clock();
        resolveAll();
      } else if (next < n && options.concurrencyLimit > 0) {
        // A freed slot may let a request that is already due go out now.
        pump();
      }
    });
  };

  const pump = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const t = clock();
    while (next < n && (dueWallMs[next] as number) <= t) {
      if (options.concurrencyLimit > 0 && counts.inFlight >= options.concurrencyLimit) break;
      dispatch(next++);
    }
    progress(false);
    if (next >= n) return;
    const blocked = options.concurrencyLimit > 0 && counts.inFlight >= options.concurrencyLimit;
    if (prepared?.index !== next) {
      prepared = {
        index: next,
        body: requestBody(requests[next] as SimRequest, options.model, options.seed),
      };
    }
    if (blocked) return; // a completion calls pump again
    const waitMs = Math.max(0, (dueWallMs[next] as number) - clock());
    timer = setTimeout(pump, waitMs);
  };

  const ticker = setInterval(() => progress(false), PROGRESS_EVERY_WALL_MS);
  try {
    timer = setTimeout(pump, START_DELAY_WALL_MS);
    await allSettled;
  } finally {
    clearInterval(ticker);
    if (timer !== undefined) clearTimeout(timer);
    loopDelay.disable();
    client.close();
  }
  progress(true);
  return {
    options,
    workload,
    outcomes,
    dueWallMs,
    sentWallMs,
    inFlightAtSend,
    itlEngineMs: itl,
    endWallMs,
    eventLoopDelayWallMs: {
      p50: loopDelay.percentile(50) / 1e6,
      p99: loopDelay.percentile(99) / 1e6,
      max: loopDelay.max / 1e6,
    },
  };
}
