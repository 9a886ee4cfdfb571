import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMetricsRegistry, createPromMetrics } from "./metrics.js";

describe("createMetricsRegistry", () => {
  it("exposes sluice_build_info and the default process metrics", async () => {
    const registry = createMetricsRegistry({ role: "router", version: "1.2.3" });
    const text = await registry.metrics();
    assert.match(text, /sluice_build_info\{version="1\.2\.3",role="router",node_version="[^"]+"\} 1/);
    assert.match(text, /process_cpu_user_seconds_total/);
    assert.match(text, /nodejs_eventloop_lag_seconds/);
  });
});

describe("createPromMetrics", () => {
  it("counts, gauges and observes into the registry", async () => {
    const registry = createMetricsRegistry({ role: "x", version: "v", collectDefaultMetrics: false });
    const m = createPromMetrics(registry);
    const rejections = m.counter({ name: "sluice_rejections_total", help: "h", labelNames: ["reason"] });
    rejections.inc(1, { reason: "queue_full" });
    rejections.inc(2, { reason: "queue_full" });
    m.counter({ name: "sluice_rejections_total", help: "h", labelNames: ["reason"] }).inc(1, {
      reason: "ttft",
    });
    m.gauge({ name: "sluice_inflight", help: "h" }).set(7);
    m.histogram({ name: "sluice_decision_seconds", help: "h", buckets: [0.001, 0.01] }).observe(0.005);
    const text = await registry.metrics();
    assert.match(text, /sluice_rejections_total\{reason="queue_full"\} 3/);
    assert.match(text, /sluice_rejections_total\{reason="ttft"\} 1/);
    assert.match(text, /sluice_inflight 7/);
    assert.match(text, /sluice_decision_seconds_bucket\{le="0.01"\} 1/);
  });

  it("refuses names without the prefix and conflicting re-registration", () => {
    const registry = createMetricsRegistry({ role: "x", version: "v", collectDefaultMetrics: false });
    const m = createPromMetrics(registry);
    assert.throws(() => m.counter({ name: "requests_total", help: "h" }), /must be named sluice_\*/);
    m.counter({ name: "sluice_a_total", help: "h" });
    assert.throws(() => m.gauge({ name: "sluice_a_total", help: "h" }), /already registered/);
    assert.throws(
      () => m.counter({ name: "sluice_a_total", help: "h", labelNames: ["x"] }),
      /already registered/,
    );
    createPromMetrics(registry, { requiredPrefix: "vllm:" }).gauge({
      name: "vllm:num_requests_waiting",
      help: "h",
    });
  });
});
