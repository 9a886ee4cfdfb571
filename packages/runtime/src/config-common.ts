// Settings every Sluice process shares. Role schemas are merged onto this one with mergeSchemas().

import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { defineSchema, mergeSchemas } from "./config-schema.js";
import { securitySchema } from "./config-security.js";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `<hostname>-<pid>-<random>`: unique across restarts on one host, readable in `etcdctl get`. */
export function defaultInstanceId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, "-") || "host";
  return `${host}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

// Ids and namespaces end up as NATS subject tokens and etcd key segments: no dots, wildcards or spaces.
const TOKEN = /[A-Za-z0-9_-]+/;
const TOKEN_TEXT = "letters, digits, '-' and '_' only (it becomes a NATS subject token and etcd key segment)";

const baseSchema = defineSchema({
  id: {
    type: "string",
    default: defaultInstanceId,
    defaultText: "<hostname>-<pid>-<random>",
    pattern: TOKEN,
    patternText: TOKEN_TEXT,
    description:
      "Instance id, unique among processes of this role; used in etcd keys, NATS subjects and logs.",
  },
  namespace: {
    type: "string",
    default: "default",
    pattern: TOKEN,
    patternText: TOKEN_TEXT,
    description:
      "Namespace of the NATS subjects (sluice.v1.<namespace>.…); processes only see their namespace.",
  },
  "nats-url": {
    type: "string",
    default: "nats://127.0.0.1:4222",
    description: "NATS server URL(s), comma-separated for a cluster.",
  },
  "etcd-endpoints": {
    type: "list",
    default: ["http://127.0.0.1:2379"],
    description: "etcd client endpoints.",
  },
  "etcd-prefix": {
    type: "string",
    default: "/sluice/v1",
    pattern: /\/[A-Za-z0-9_./-]*[A-Za-z0-9_-]/,
    patternText: "an absolute key prefix like /sluice/v1 (no trailing slash)",
    description: "Key prefix of all Sluice keys in etcd.",
  },
  "lease-ttl": {
    type: "duration",
    defaultMs: 5_000,
    minMs: 1_000,
    maxMs: 300_000,
    description:
      "TTL of this process's etcd lease (kept alive at TTL/3); a crashed process disappears from every view within it.",
  },
  "admin-host": {
    type: "string",
    default: "127.0.0.1",
    description:
      "Address the admin HTTP server (/metrics, /healthz, /readyz) binds; the default keeps it on loopback. Use 0.0.0.0 where kubelet probes or Prometheus must reach it, with --admin-token-file.",
  },
  "admin-port": {
    type: "int",
    default: 0,
    min: 0,
    max: 65_535,
    description: "Port of the admin HTTP server; 0 picks a free port (logged at start-up).",
  },
  "log-level": {
    type: "enum",
    values: LOG_LEVELS,
    default: "info",
    description: "Minimum level of the JSON log lines written to stdout.",
  },
  "shutdown-timeout": {
    type: "duration",
    defaultMs: 10_000,
    minMs: 0,
    maxMs: 600_000,
    description:
      "Bound on draining in-flight work after SIGTERM; when hit, remaining work is abandoned and the exit code is 1.",
  },
});

/** Base settings, then NATS/etcd auth and TLS and the admin token (config-security.ts). */
export const commonSchema = mergeSchemas(baseSchema, securitySchema);

export type CommonSchema = typeof commonSchema;
