// Settings of `sluice router` that are not in the etcd policy: where it listens, how it fills gaps in
// its knowledge (router-options.ts of the core), and the NVIDIA Dynamo compatibility option. The
// per-model thresholds (busy checks, hold queue sizes, max hold time) come from the policy.
import { DEFAULT_PREFIX_INDEX_OPTIONS, DEFAULT_ROUTER_DECISION_OPTIONS } from "@sluice/core";
import { defineSchema } from "@sluice/runtime";

const TOKEN = /[A-Za-z0-9_-]{0,64}/;

export const routerSchema = defineSchema({
  host: {
    type: "string",
    default: "127.0.0.1",
    description: "Address the gRPC server (sluice.v1.Router) binds (0.0.0.0 for all interfaces).",
  },
  "grpc-port": {
    type: "int",
    default: 7100,
    min: 0,
    max: 65_535,
    description: "Port of the gRPC server; 0 picks a free one (logged and registered in etcd).",
  },
  "advertise-address": {
    type: "string",
    default: "",
    defaultText: "<bound host>:<bound port>",
    description: "host:port others dial, registered under instances/router/<id> as the grpc address.",
  },
  temperature: {
    type: "number",
    default: DEFAULT_ROUTER_DECISION_OPTIONS.temperature,
    min: 0,
    description: "Softmax temperature over worker costs; 0 always picks the cheapest worker.",
  },
  "default-prefill-rate": {
    type: "number",
    default: DEFAULT_ROUTER_DECISION_OPTIONS.defaultPrefillTokensPerS,
    min: 1,
    unit: "tokens/s",
    description: "Prefill throughput assumed for a worker until its engine reports a measured one.",
  },
  "default-kv-release-fraction": {
    type: "number",
    default: DEFAULT_ROUTER_DECISION_OPTIONS.defaultKvReleaseFractionPerS,
    min: 0.000_001,
    unit: "fraction/s",
    description:
      "Fraction of a worker's KV capacity assumed released per second (Retry-After) until reported.",
  },
  "max-observed-age": {
    type: "duration",
    defaultMs: DEFAULT_ROUTER_DECISION_OPTIONS.maxObservedAgeMs,
    minMs: 0,
    description: "Engine load observations older than this are ignored (the prediction alone is used).",
  },
  "busy-decode-blocks": {
    type: "boolean",
    default: true,
    description: "Run the decode-block busy check (policy router.busy_decode_block_fraction).",
  },
  "busy-pending-prefill": {
    type: "boolean",
    default: true,
    description:
      "Run the pending-prefill busy check (policy router.busy_pending_prefill_tokens / batch ratio).",
  },
  "busy-predicted-ttft": {
    type: "boolean",
    default: true,
    description: "Run the predicted-TTFT busy check (policy router.busy_ttft_objective_fraction).",
  },
  "gap-policy": {
    type: "enum",
    values: ["reset", "mark-stale"],
    default: DEFAULT_PREFIX_INDEX_OPTIONS.gapPolicy,
    description:
      "When KV events of a worker were lost: reset drops its indexed blocks; mark-stale ignores its overlap until a cleared event.",
  },
  "deadline-margin": {
    type: "duration",
    defaultMs: 50,
    minMs: 0,
    maxMs: 10_000,
    description:
      "A held call is answered this long before the caller's gRPC deadline, so it gets a rejection, not a timeout.",
  },
  "dynamo-namespace": {
    type: "string",
    default: "",
    pattern: TOKEN,
    patternText: "a Dynamo namespace (letters, digits, '-' and '_')",
    description:
      "Also consume NVIDIA Dynamo's KV events / kv_metrics / etcd models/ of this namespace (needs --dynamo-component).",
  },
  "dynamo-component": {
    type: "string",
    default: "",
    pattern: TOKEN,
    patternText: "a Dynamo component name (letters, digits, '-' and '_')",
    description: "Dynamo component whose kv_events are consumed (e.g. backend).",
  },
  "dynamo-etcd-prefix": {
    type: "string",
    default: "models/",
    description: "etcd key prefix of Dynamo's model entries (ModelEntry JSON with runtime_config).",
  },
  "dynamo-block-size": {
    type: "int",
    default: 16,
    min: 1,
    max: 4096,
    unit: "tokens",
    description: "KV block size of the Dynamo workers (kv_cache_block_size; not in their model entries).",
  },
});
