import { defineSchema } from "@sluice/runtime";
import {
  DEFAULT_DEFAULT_MAX_TOKENS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RLS_SLOT_HOLD_MS,
  DEFAULT_ROUTE_TIMEOUT_MS,
  DEFAULT_STATE_DEBOUNCE_MS,
  DEFAULT_STATE_HEARTBEAT_MS,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
} from "./options.js";

/** Settings of `sluice ingress` (the common ones — id, NATS, etcd, admin, logging — are merged in). */
export const ingressSchema = defineSchema({
  host: {
    type: "string",
    default: "127.0.0.1",
    description: "Address the OpenAI-compatible HTTP server binds (0.0.0.0 for all interfaces).",
  },
  port: {
    type: "int",
    default: 8080,
    min: 0,
    max: 65_535,
    description: "Port of the OpenAI-compatible HTTP server; 0 picks a free one (logged and registered).",
  },
  "advertise-url": {
    type: "string",
    default: "",
    defaultText: "http://<bound host>:<bound port>",
    description:
      "URL clients reach this ingress at, as registered in etcd (for 0.0.0.0 binds behind NAT/pods).",
  },
  "grpc-host": {
    type: "string",
    default: "127.0.0.1",
    description:
      "Address the gRPC server binds: sluice.v1.Admission (Check/Release) and Envoy's envoy.service.ratelimit.v3.RateLimitService.",
  },
  "grpc-port": {
    type: "int",
    default: 0,
    min: 0,
    max: 65_535,
    description: "Port of the gRPC server; 0 picks a free one (logged and registered).",
  },
  "rls-slot-hold": {
    type: "duration",
    defaultMs: DEFAULT_RLS_SLOT_HOLD_MS,
    minMs: 10,
    maxMs: 3_600_000,
    description:
      "How long a request admitted through Envoy's rate limit API (no release call) counts as in flight; set it to the mean request duration.",
  },
  "max-body-bytes": {
    type: "int",
    default: DEFAULT_MAX_BODY_BYTES,
    min: 1024,
    unit: "bytes",
    description: "Request bodies over this size get 413 before any decision.",
  },
  "request-timeout": {
    type: "duration",
    defaultMs: DEFAULT_REQUEST_TIMEOUT_MS,
    minMs: 100,
    maxMs: 600_000,
    description:
      "Time a client gets to send a whole request (headers and body); slower senders are cut with 408.",
  },
  "upstream-timeout": {
    type: "duration",
    defaultMs: DEFAULT_UPSTREAM_TIMEOUT_MS,
    minMs: 100,
    description:
      "An engine silent for longer than this (no response bytes) fails the request: 504, or a cut stream.",
  },
  "route-timeout": {
    type: "duration",
    defaultMs: DEFAULT_ROUTE_TIMEOUT_MS,
    minMs: 10,
    maxMs: 60_000,
    description:
      "Deadline of one Route call to a router (its hold queue answers within it); no answer → local least-loaded choice.",
  },
  "default-max-tokens": {
    type: "int",
    default: DEFAULT_DEFAULT_MAX_TOKENS,
    min: 1,
    unit: "tokens",
    description: "Output budget charged to the KV load of requests that set no max_tokens.",
  },
  "trust-class-header": {
    type: "boolean",
    default: false,
    description:
      "Honour x-sluice-class from every client (trusted networks); otherwise only trusted tenants may raise their class.",
  },
  "max-inflight": {
    type: "int",
    default: 0,
    min: 0,
    unit: "requests",
    description:
      "Global in-flight limit per model used when etcd holds no policy for it (policy ingress.max_inflight); 0 = none.",
  },
  "kv-overcommit": {
    type: "number",
    default: 1.25,
    min: 0.01,
    max: 100,
    description: "In-flight KV limit as a multiple of live engines' KV blocks when etcd holds no policy.",
  },
  "state-debounce": {
    type: "duration",
    defaultMs: DEFAULT_STATE_DEBOUNCE_MS,
    minMs: 0,
    maxMs: 1_000,
    description: "Minimum gap between change-driven ingress.state snapshots.",
  },
  "state-heartbeat": {
    type: "duration",
    defaultMs: DEFAULT_STATE_HEARTBEAT_MS,
    minMs: 10,
    maxMs: 60_000,
    description:
      "ingress.state snapshots go out at least this often; peers silent for 3 periods are dropped.",
  },
});
