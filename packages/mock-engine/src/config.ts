import { DEFAULT_ENGINE_MODEL_OPTIONS } from "@sluice/core";
import { defineSchema } from "@sluice/runtime";
import {
  DEFAULT_FORCE_OUTPUT_TOKENS,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_MODEL_LEN,
  DEFAULT_MAX_TOKENS,
  DEFAULT_MODEL,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from "./options.js";

/** Settings of `sluice mock-engine` (the common ones — id, NATS, etcd, admin, logging — are merged in). */
export const mockEngineSchema = defineSchema({
  host: {
    type: "string",
    default: "127.0.0.1",
    description: "Address the OpenAI API server binds (0.0.0.0 for all interfaces).",
  },
  port: {
    type: "int",
    default: 8000,
    min: 0,
    max: 65_535,
    description: "Port of the OpenAI API server; 0 picks a free one (logged and registered).",
  },
  "advertise-url": {
    type: "string",
    default: "",
    defaultText: "http://<bound host>:<bound port>",
    description:
      "URL others reach this engine at, as registered in etcd (for 0.0.0.0 binds behind NAT/pods).",
  },
  model: { type: "string", default: DEFAULT_MODEL, description: "Model name served (the OpenAI `model`)." },
  "worker-id": {
    type: "string",
    default: "",
    defaultText: "the instance id (--id)",
    pattern: /[A-Za-z0-9_-]{0,64}/,
    patternText: "letters, digits, '-' and '_' (a NATS subject token), at most 64",
    description:
      "Worker id in NATS subjects, etcd keys and KV events (a decimal u64 is used as Dynamo's worker_id).",
  },
  speedup: {
    type: "number",
    default: 1,
    min: 0.001,
    max: 1_000_000,
    description: "Engine time runs this many times faster than wall time (1 = real time).",
  },
  "num-gpu-blocks": {
    type: "int",
    default: DEFAULT_ENGINE_MODEL_OPTIONS.numGpuBlocks,
    min: 1,
    unit: "blocks",
    description: "KV cache capacity (vLLM num_gpu_blocks).",
  },
  "block-size": {
    type: "int",
    default: DEFAULT_ENGINE_MODEL_OPTIONS.blockSize,
    min: 1,
    max: 4096,
    unit: "tokens",
    description: "Tokens per KV block (vLLM block_size).",
  },
  "max-num-seqs": {
    type: "int",
    default: DEFAULT_ENGINE_MODEL_OPTIONS.maxNumSeqs,
    min: 1,
    unit: "requests",
    description: "Largest running batch (vLLM max_num_seqs).",
  },
  "max-num-batched-tokens": {
    type: "int",
    default: DEFAULT_ENGINE_MODEL_OPTIONS.maxNumBatchedTokens,
    min: 1,
    unit: "tokens",
    description: "Token budget of one step (vLLM max_num_batched_tokens); longer prompts prefill in chunks.",
  },
  watermark: {
    type: "number",
    default: DEFAULT_ENGINE_MODEL_OPTIONS.watermark,
    min: 0,
    max: 0.99,
    description: "Fraction of KV blocks kept free when admitting waiting requests.",
  },
  "enable-prefix-caching": {
    type: "boolean",
    default: true,
    description: "Reuse cached prompt blocks by chained block hash (vLLM enable_prefix_caching).",
  },
  "step-model": {
    type: "enum",
    values: ["dynamo", "splitwise"],
    default: "dynamo",
    description:
      "Step-time model: NVIDIA Dynamo mocker fits, or measured Splitwise curves (needs --splitwise-csv).",
  },
  "splitwise-csv": {
    type: "string",
    default: "",
    description: "Path of splitwise-sim's perf_model.csv, for --step-model splitwise.",
  },
  "splitwise-model": {
    type: "string",
    default: "llama2-70b",
    description: "`model` column of the Splitwise profile.",
  },
  "splitwise-hardware": {
    type: "string",
    default: "h100-80gb",
    description: "`hardware` column of the Splitwise profile.",
  },
  "splitwise-tp": {
    type: "int",
    default: 4,
    min: 1,
    max: 64,
    description: "`tensor_parallel` column of the Splitwise profile.",
  },
  "max-model-len": {
    type: "int",
    default: DEFAULT_MAX_MODEL_LEN,
    min: 2,
    unit: "tokens",
    description: "Longest prompt + output of one request (vLLM max_model_len); longer ones get 400.",
  },
  "default-max-tokens": {
    type: "int",
    default: DEFAULT_MAX_TOKENS,
    min: 1,
    unit: "tokens",
    description:
      "Output length of requests that set no max_tokens (vLLM's completions default; the mock has no EOS).",
  },
  "force-output-tokens": {
    type: "int",
    default: DEFAULT_FORCE_OUTPUT_TOKENS,
    min: 0,
    unit: "tokens",
    description:
      "Benchmarks: every request generates exactly this many tokens (capped by its max_tokens, raised by min_tokens); 0 = off.",
  },
  "max-body-bytes": {
    type: "int",
    default: DEFAULT_MAX_BODY_BYTES,
    min: 1024,
    unit: "bytes",
    description: "Request bodies over this size get 413.",
  },
  "headers-timeout": {
    type: "duration",
    defaultMs: DEFAULT_HEADERS_TIMEOUT_MS,
    minMs: 100,
    description: "Time a client has to send the request headers.",
  },
  "request-timeout": {
    type: "duration",
    defaultMs: DEFAULT_REQUEST_TIMEOUT_MS,
    minMs: 100,
    description: "Time a client has to send the whole request (streamed responses are not bounded).",
  },
  "register-engine": {
    type: "boolean",
    default: true,
    description:
      "Write /…/engines/<worker-id> under this process's lease (off when an engine-scheduler sidecar registers it).",
  },
  "publish-load": {
    type: "boolean",
    default: true,
    description:
      "Publish load snapshots on engine.<worker-id>.load (off behind an engine-scheduler sidecar, which publishes the worker's load).",
  },
  "load-heartbeat": {
    type: "duration",
    defaultMs: 1_000,
    minMs: 10,
    maxMs: 60_000,
    description: "Load snapshots go out on every change (1 ms debounce) and at least this often.",
  },
});
