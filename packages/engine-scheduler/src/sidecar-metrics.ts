// Prometheus metrics of the sidecar, fed by the scheduler's life-cycle listener. Takes the runtime's
// small `Metrics` interface, so it never owns a registry.
import type { EngineDecision, EngineRejection, PredictionAuditResult } from "@sluice/core";
import type { Metrics } from "@sluice/runtime";
import type { EngineFacts } from "./engine-facts.js";
import type { EndOutcome } from "./scheduler.js";

export interface SidecarMetrics {
  /** `probe`: admitted by the idle probe (counted apart: a rising rate means the model predicts misses). */
  queued(className: string, probe?: boolean): void;
  admitted(className: string, queuedMs: number): void;
  /** `whileQueued`: it had been queued (counted in the queue depth) before the rejection. */
  rejected(rejection: EngineRejection, whileQueued: boolean): void;
  firstToken(className: string, audit: PredictionAuditResult | null): void;
  ended(className: string, outcome: EndOutcome, wasQueued: boolean): void;
  engineFacts(facts: EngineFacts): void;
  engineUp(up: boolean): void;
  /** A request refused before scheduling (400, 404, 408, 413, 431 …), by status and code. */
  httpError(status: number, code: string): void;
  /** Refreshes the learned-model gauges (cheap; called on every change). */
  models(decision: EngineDecision): void;
}

/** Relative error buckets: 1 % … 10×. */
const RELATIVE_ERROR_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10];
const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createSidecarMetrics(metrics: Metrics): SidecarMetrics {
  const queueDepth = metrics.gauge({
    name: "sluice_engine_queue_depth",
    help: "Requests waiting in the sidecar queue, by class.",
    labelNames: ["class"],
  });
  const inEngine = metrics.gauge({
    name: "sluice_engine_in_engine",
    help: "Requests the sidecar has inside the engine (its own exact count).",
  });
  const rejections = metrics.counter({
    name: "sluice_engine_rejections_total",
    help: "L3 rejections by class and reason (predicted_ttft, queue_timeout, queue_full).",
    labelNames: ["class", "reason"],
  });
  const outcomes = metrics.counter({
    name: "sluice_engine_requests_total",
    help: "Terminal outcomes of admitted requests (completed, failed, cancelled) and of requests that ended while queued (cancelled_queued, failed_queued).",
    labelNames: ["class", "outcome"],
  });
  const idleProbes = metrics.counter({
    name: "sluice_engine_idle_probes_total",
    help: "Requests an empty engine admitted although their predicted TTFT missed the objective (at most one per idle probe interval), so the learned model keeps measuring.",
    labelNames: ["class"],
  });
  const admittedTotal = metrics.counter({
    name: "sluice_engine_admitted_total",
    help: "Requests released from the queue into the engine.",
    labelNames: ["class"],
  });
  const queueWait = metrics.histogram({
    name: "sluice_engine_queue_wait_seconds",
    help: "Time from arrival at the sidecar to release into the engine.",
    labelNames: ["class"],
    buckets: SECONDS_BUCKETS,
  });
  const ttft = metrics.histogram({
    name: "sluice_engine_ttft_seconds",
    help: "Measured time to first token of streaming requests, from the start of the TTFT clock upstream.",
    labelNames: ["class"],
    buckets: SECONDS_BUCKETS,
  });
  const predictionError = metrics.histogram({
    name: "sluice_engine_ttft_prediction_relative_error",
    help: "|predicted − measured| / measured TTFT of every admitted streaming request (the prediction audit).",
    labelNames: ["class"],
    buckets: RELATIVE_ERROR_BUCKETS,
  });
  // Base units (seconds), as Prometheus naming wants; the models themselves work in milliseconds.
  const prefillSecondsPerToken = metrics.gauge({
    name: "sluice_engine_prefill_seconds_per_token",
    help: "Learned marginal prefill cost in seconds per prompt token (1 / throughput).",
  });
  const prefillFixedSeconds = metrics.gauge({
    name: "sluice_engine_prefill_fixed_seconds",
    help: "Learned fixed time to a first token in seconds (per-pass overhead + first decode).",
  });
  const decodeStepSeconds = metrics.gauge({
    name: "sluice_engine_decode_step_seconds",
    help: "Learned decode step (inter-token gap) in seconds at batch 1 and empty KV cache.",
  });
  const slotReleaseIntervalSeconds = metrics.gauge({
    name: "sluice_engine_slot_release_interval_seconds",
    help: "Learned interval in seconds between slot releases while the queue was non-empty (0 until observed).",
  });
  const observed = metrics.gauge({
    name: "sluice_engine_observed",
    help: "The engine's own metrics as last scraped: running, waiting, kv_usage (0..1), preemptions.",
    labelNames: ["quantity"],
  });
  const httpErrors = metrics.counter({
    name: "sluice_engine_http_errors_total",
    help: "Requests refused before scheduling (malformed body, header or HTTP framing; unknown route), by status and code.",
    labelNames: ["status", "code"],
  });
  const up = metrics.gauge({
    name: "sluice_engine_up",
    help: "1 while the engine answers its /metrics scrape, 0 when it is considered down.",
  });

  return {
    queued(c, probe) {
      queueDepth.inc(1, { class: c });
      if (probe === true) idleProbes.inc(1, { class: c });
    },
    admitted(c, queuedMs) {
      queueDepth.dec(1, { class: c });
      inEngine.inc();
      admittedTotal.inc(1, { class: c });
      queueWait.observe(queuedMs / 1000, { class: c });
    },
    rejected(r, whileQueued) {
      if (whileQueued) queueDepth.dec(1, { class: r.class });
      rejections.inc(1, { class: r.class, reason: r.reason });
    },
    firstToken(c, audit) {
      if (audit === null) return;
      ttft.observe(audit.measuredTtftMs / 1000, { class: c });
      predictionError.observe(audit.relativeError, { class: c });
    },
    ended(c, outcome, wasQueued) {
      if (wasQueued) queueDepth.dec(1, { class: c });
      else inEngine.dec();
      outcomes.inc(1, { class: c, outcome });
    },
    engineFacts(f) {
      if (f.running !== undefined) observed.set(f.running, { quantity: "running" });
      if (f.waiting !== undefined) observed.set(f.waiting, { quantity: "waiting" });
      if (f.kvUsage !== undefined) observed.set(f.kvUsage, { quantity: "kv_usage" });
      if (f.preemptionsTotal !== undefined) observed.set(f.preemptionsTotal, { quantity: "preemptions" });
    },
    engineUp: (u) => up.set(u ? 1 : 0),
    httpError: (status, code) => httpErrors.inc(1, { status, code }),
    models(decision) {
      const e = decision.models.estimates();
      prefillSecondsPerToken.set(decision.models.prefillMsPerToken() / 1000);
      prefillFixedSeconds.set(e.prefillFixedMs / 1000);
      decodeStepSeconds.set(e.decodeStepMsAtBatch1 / 1000);
      slotReleaseIntervalSeconds.set(e.slotReleaseIntervalMs / 1000);
    },
  };
}
