import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseEngineMetrics } from "./engine-facts.js";

describe("parseEngineMetrics", () => {
  it("reads vLLM names, summing series over labels", () => {
    const text = [
      "# HELP vllm:num_requests_running Number of requests in model execution batches.",
      "# TYPE vllm:num_requests_running gauge",
      'vllm:num_requests_running{model_name="a"} 3',
      'vllm:num_requests_running{model_name="b"} 2',
      'vllm:num_requests_waiting{model_name="a"} 7',
      'vllm:kv_cache_usage_perc{model_name="a"} 0.25',
      'vllm:num_preemptions_total{model_name="a"} 4',
      'vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="a"} 9',
    ].join("\n");
    assert.deepEqual(parseEngineMetrics(text), {
      running: 5,
      waiting: 7,
      kvUsage: 0.25,
      preemptionsTotal: 4,
    });
  });

  it("maps SGLang names and clamps usage; missing series stay undefined", () => {
    const text = 'sglang:num_running_reqs{tp_rank="0"} 4\nsglang:num_queue_reqs 1\nsglang:token_usage 1.5\n';
    assert.deepEqual(parseEngineMetrics(text), {
      running: 4,
      waiting: 1,
      kvUsage: 1,
      preemptionsTotal: undefined,
    });
  });

  it("ignores garbage lines", () => {
    assert.deepEqual(parseEngineMetrics("not metrics at all\n{}\nvllm:num_requests_running NaNx\n"), {
      running: undefined,
      waiting: undefined,
      kvUsage: undefined,
      preemptionsTotal: undefined,
    });
  });
});
