import type { EngineLoadSnapshot } from "@sluice/core";
import type { FinishReason } from "./request-parse.js";

// The slice of `@sluice/runtime`'s `Metrics` seam this file uses (structurally identical), so the
// engine's metrics are testable without a prom-client registry.
type Labels = Readonly<Record<string, string | number>>;
interface CounterMetric {
  inc(value?: number, labels?: Labels): void;
}
interface GaugeMetric {
  set(value: number, labels?: Labels): void;
}
interface HistogramMetric {
  observe(value: number, labels?: Labels): void;
}
export interface MetricsSink {
  counter(def: { name: string; help: string; labelNames?: readonly string[] }): CounterMetric;
  gauge(def: { name: string; help: string; labelNames?: readonly string[] }): GaugeMetric;
  histogram(def: {
    name: string;
    help: string;
    labelNames?: readonly string[];
    buckets: readonly number[];
  }): HistogramMetric;
}

/**
 * vLLM's Prometheus metrics (v1 engine names and buckets, `vllm/v1/metrics/loggers.py`), so the
 * engine-scheduler and dashboards treat the mock exactly like vLLM. prometheus_client (Python)
 * appends `_total` to counters and prom-client does not, so counter names carry it here: the
 * scraped series are identical. Latencies are in engine time (equal to wall time at speedup 1).
 */
export interface VllmMetrics {
  /** Gauges and cumulative engine counters from a load snapshot (after every step and queue change). */
  observeLoad(load: EngineLoadSnapshot): void;
  observeFirstToken(ttftSeconds: number, promptTokens: number): void;
  observeToken(interTokenSeconds: number): void;
  observeFinish(e2eSeconds: number, finishReason: FinishReason | "abort"): void;
}

const TTFT_BUCKETS_S = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640,
  2560,
];
const ITL_BUCKETS_S = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
const E2E_BUCKETS_S = [
  0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680,
];

export function createVllmMetrics(sink: MetricsSink, modelName: string): VllmMetrics {
  const labelNames = ["model_name"] as const;
  const labels = { model_name: modelName };
  const running = sink.gauge({
    name: "vllm:num_requests_running",
    help: "Number of requests in model execution batches.",
    labelNames,
  });
  const waiting = sink.gauge({
    name: "vllm:num_requests_waiting",
    help: "Number of requests waiting to be processed.",
    labelNames,
  });
  const kvUsage = sink.gauge({
    name: "vllm:kv_cache_usage_perc",
    help: "KV-cache usage. 1 means 100 percent usage.",
    labelNames,
  });
  const prefixQueries = sink.counter({
    name: "vllm:prefix_cache_queries_total",
    help: "Prefix cache queries, in terms of number of queried tokens.",
    labelNames,
  });
  const prefixHits = sink.counter({
    name: "vllm:prefix_cache_hits_total",
    help: "Prefix cache hits, in terms of number of cached tokens.",
    labelNames,
  });
  const preemptions = sink.counter({
    name: "vllm:num_preemptions_total",
    help: "Cumulative number of preemption from the engine.",
    labelNames,
  });
  const promptTokens = sink.counter({
    name: "vllm:prompt_tokens_total",
    help: "Number of prefill tokens processed.",
    labelNames,
  });
  const generationTokens = sink.counter({
    name: "vllm:generation_tokens_total",
    help: "Number of generation tokens processed.",
    labelNames,
  });
  const success = sink.counter({
    name: "vllm:request_success_total",
    help: "Count of successfully processed requests.",
    labelNames: ["model_name", "finished_reason"],
  });
  const ttft = sink.histogram({
    name: "vllm:time_to_first_token_seconds",
    help: "Histogram of time to first token in seconds.",
    labelNames,
    buckets: TTFT_BUCKETS_S,
  });
  const itl = sink.histogram({
    name: "vllm:inter_token_latency_seconds",
    help: "Histogram of inter-token latency in seconds.",
    labelNames,
    buckets: ITL_BUCKETS_S,
  });
  const e2e = sink.histogram({
    name: "vllm:e2e_request_latency_seconds",
    help: "Histogram of e2e request latency in seconds.",
    labelNames,
    buckets: E2E_BUCKETS_S,
  });

  // Counters exist at 0 from the start, as in vLLM, so rate() works from the first scrape.
  for (const counter of [prefixQueries, prefixHits, preemptions, promptTokens, generationTokens]) {
    counter.inc(0, labels);
  }

  // The engine reports cumulative totals; Prometheus counters only move forward, so add deltas.
  let seenQueries = 0;
  let seenHits = 0;
  let seenPreemptions = 0;

  return {
    observeLoad(load) {
      running.set(load.running, labels);
      waiting.set(load.waiting, labels);
      kvUsage.set(load.kvTotalBlocks > 0 ? load.kvUsedBlocks / load.kvTotalBlocks : 0, labels);
      if (load.prefixCacheQueryTokens > seenQueries) {
        prefixQueries.inc(load.prefixCacheQueryTokens - seenQueries, labels);
        seenQueries = load.prefixCacheQueryTokens;
      }
      if (load.prefixCacheHitTokens > seenHits) {
        prefixHits.inc(load.prefixCacheHitTokens - seenHits, labels);
        seenHits = load.prefixCacheHitTokens;
      }
      if (load.preemptions > seenPreemptions) {
        preemptions.inc(load.preemptions - seenPreemptions, labels);
        seenPreemptions = load.preemptions;
      }
    },
    observeFirstToken(ttftSeconds, prompt) {
      ttft.observe(ttftSeconds, labels);
      promptTokens.inc(prompt, labels);
      generationTokens.inc(1, labels);
    },
    observeToken(interTokenSeconds) {
      itl.observe(interTokenSeconds, labels);
      generationTokens.inc(1, labels);
    },
    observeFinish(e2eSeconds, finishReason) {
      e2e.observe(e2eSeconds, labels);
      success.inc(1, { model_name: modelName, finished_reason: finishReason });
    },
  };
}
