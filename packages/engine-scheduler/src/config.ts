import { DEFAULT_ENGINE_MODEL_OPTIONS, DEFAULT_POLICY } from "@sluice/core";
import { defineSchema } from "@sluice/runtime";

/** Settings of `sluice engine-scheduler` (the common ones — id, NATS, etcd, admin, logging — are merged in). */
export const engineSchedulerSchema = defineSchema({
  host: {
    type: "string",
    default: "127.0.0.1",
    description: "Address the sidecar's OpenAI API proxy binds (0.0.0.0 for all interfaces).",
  },
  port: {
    type: "int",
    default: 8100,
    min: 0,
    max: 65_535,
    description: "Port of the proxy; 0 picks a free one (logged and registered).",
  },
  "advertise-url": {
    type: "string",
    default: "",
    defaultText: "http://<bound host>:<bound port>",
    description: "URL others reach this sidecar at, registered in etcd as the engine's scheduler_url.",
  },
  "engine-url": {
    type: "string",
    default: "http://127.0.0.1:8000",
    pattern: /https?:\/\/\S+/,
    patternText: "an http(s) URL of the engine's OpenAI API",
    description: "Base URL of the one engine this sidecar fronts (vLLM, SGLang, sluice mock-engine).",
  },
  "worker-id": {
    type: "string",
    default: "",
    defaultText: "the instance id (--id)",
    pattern: /[A-Za-z0-9_-]{0,64}/,
    patternText: "letters, digits, '-' and '_' (a NATS subject token), at most 64",
    description: "Worker id of the engine in etcd (engines/<worker-id>) and NATS (engine.<worker-id>.load).",
  },
  model: {
    type: "string",
    default: "mock-llm",
    description: "Model the engine serves (registered in etcd; requests are not filtered by it).",
  },
  "block-size": {
    type: "int",
    default: DEFAULT_ENGINE_MODEL_OPTIONS.blockSize,
    min: 1,
    max: 4096,
    unit: "tokens",
    description: "The engine's KV block size (registered; must match the engine).",
  },
  "kv-total-blocks": {
    type: "int",
    default: DEFAULT_ENGINE_MODEL_OPTIONS.numGpuBlocks,
    min: 1,
    unit: "blocks",
    description: "The engine's KV capacity (vLLM num_gpu_blocks; registered, used by the ITL guard).",
  },
  "max-num-seqs": {
    type: "int",
    default: DEFAULT_ENGINE_MODEL_OPTIONS.maxNumSeqs,
    min: 1,
    unit: "requests",
    description: "The engine's max_num_seqs: the in-engine limit when --max-inflight is 0.",
  },
  "max-num-batched-tokens": {
    type: "int",
    default: DEFAULT_ENGINE_MODEL_OPTIONS.maxNumBatchedTokens,
    min: 1,
    unit: "tokens",
    description: "The engine's max_num_batched_tokens (registered).",
  },
  "max-inflight": {
    type: "int",
    default: DEFAULT_POLICY.engine.maxInflight,
    min: 0,
    unit: "requests",
    description:
      "Overrides the policy's engine.max_inflight when given: requests inside the engine at once; 0 = --max-num-seqs.",
  },
  "max-queue": {
    type: "int",
    default: DEFAULT_POLICY.engine.maxQueue,
    min: 0,
    unit: "requests",
    description:
      "Overrides the policy's engine.max_queue when given: requests waiting beyond the in-engine limit; 0 disables queueing.",
  },
  "max-queue-time": {
    type: "duration",
    defaultMs: DEFAULT_POLICY.engine.maxQueueMs,
    minMs: 0,
    defaultText: "0 (the class's TTFT objective)",
    description:
      "Overrides the policy's engine.max_queue_ms when given: longest wait in the queue; 0 = the class's TTFT objective.",
  },
  "ttft-margin": {
    type: "duration",
    defaultMs: DEFAULT_POLICY.engine.ttftMarginMs,
    minMs: 0,
    description:
      "Overrides the policy's engine.ttft_margin_ms when given: reject when predicted TTFT exceeds the objective minus this.",
  },
  "reject-status": {
    type: "enum",
    values: ["429", "503", "529"],
    default: "429",
    description: "Overrides the policy's rejection.http_status when given: HTTP status of rejections.",
  },
  "scrape-interval": {
    type: "duration",
    defaultMs: 500,
    minMs: 10,
    maxMs: 60_000,
    description: "How often the engine's Prometheus /metrics is scraped (vLLM or SGLang names).",
  },
  "engine-failures": {
    type: "int",
    default: 2,
    min: 1,
    max: 100,
    description: "Consecutive failed scrapes after which the engine counts as down (queued requests fail).",
  },
  "reevaluate-interval": {
    type: "duration",
    defaultMs: 10,
    minMs: 1,
    maxMs: 1_000,
    description: "While requests are queued, predictions are re-checked this often.",
  },
  "load-heartbeat": {
    type: "duration",
    defaultMs: 1_000,
    minMs: 10,
    maxMs: 60_000,
    description: "Load snapshots go out on every change (1 ms debounce) and at least this often.",
  },
  "upstream-timeout": {
    type: "duration",
    defaultMs: 600_000,
    minMs: 100,
    description: "Longest time a request may spend inside the engine before it is aborted (504).",
  },
  "max-body-bytes": {
    type: "int",
    default: 4 * 1024 * 1024,
    min: 1024,
    unit: "bytes",
    description: "Request bodies over this size get 413.",
  },
});
