import { defineSchema, LOG_LEVELS } from "@sluice/runtime";

/** Flags of `sluice up`. Everything has a default, so `sluice up` alone runs a demo stack. */
export const upSchema = defineSchema({
  engines: {
    type: "int",
    default: 2,
    min: 0,
    max: 64,
    description: "Number of mock engines to start.",
  },
  "engine-schedulers": {
    type: "boolean",
    default: true,
    description:
      "Front every mock engine with an engine-scheduler sidecar (L3); --no-engine-schedulers routes to engines directly.",
  },
  ingresses: {
    type: "int",
    default: 1,
    min: 0,
    max: 16,
    description: "Number of ingress instances (L1); they enforce one global limit between them.",
  },
  routers: {
    type: "int",
    default: 1,
    min: 0,
    max: 16,
    description: "Number of router replicas (L2) to start.",
  },
  aggregators: {
    type: "int",
    default: 1,
    min: 0,
    max: 8,
    description: "Number of aggregator instances (one leader, the rest standbys).",
  },
  model: {
    type: "string",
    default: "mock-llm",
    description: "Model name the mock engines serve.",
  },
  speedup: {
    type: "number",
    default: 1,
    min: 0.01,
    max: 1000,
    description: "Mock engine speed-up over real time (2 = steps take half as long).",
  },
  "nats-url": {
    type: "string",
    default: "",
    defaultText: "(start a local nats-server)",
    description: "Use this NATS server instead of starting one.",
  },
  "etcd-endpoints": {
    type: "list",
    default: [],
    defaultText: "(start a local etcd)",
    description: "Use these etcd endpoints instead of starting one.",
  },
  namespace: {
    type: "string",
    default: "default",
    pattern: /[A-Za-z0-9_-]+/,
    patternText: "letters, digits, '-' and '_' only",
    description: "Namespace of the stack's NATS subjects.",
  },
  "lease-ttl": {
    type: "duration",
    defaultMs: 5_000,
    minMs: 1_000,
    maxMs: 300_000,
    description: "etcd lease TTL of every started process.",
  },
  demo: {
    type: "boolean",
    default: true,
    description: "Run the demo workload against the stack (--no-demo: only start the stack).",
  },
  "demo-rps": {
    type: "number",
    default: 4,
    min: 0.1,
    max: 10_000,
    unit: "requests/s",
    description: "Arrival rate of the demo workload (Poisson).",
  },
  "demo-duration": {
    type: "duration",
    defaultMs: 0,
    minMs: 0,
    description: "Stop the demo workload after this long; 0 = until Ctrl-C.",
  },
  "exit-after-demo": {
    type: "boolean",
    default: false,
    description: "Stop the stack and exit when the demo workload ends (needs --demo-duration).",
  },
  "state-file": {
    type: "string",
    default: "",
    description: "Write where everything listens as JSON to this file (removed on exit).",
  },
  "data-dir": {
    type: "string",
    default: "",
    defaultText: "(a temp dir, removed on exit)",
    description: "Directory for NATS/etcd data and every process's log file; kept on exit when given.",
  },
  "start-timeout": {
    type: "duration",
    defaultMs: 30_000,
    minMs: 1_000,
    description: "How long to wait for every process to register in etcd before giving up.",
  },
  "log-level": {
    type: "enum",
    values: LOG_LEVELS,
    default: "info",
    description: "Log level of the started processes (their logs go to <data-dir>/logs/).",
  },
});
