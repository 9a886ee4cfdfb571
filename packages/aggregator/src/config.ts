import { DEFAULT_STALE_AFTER_MS } from "@sluice/core";
import { defineSchema } from "@sluice/runtime";
import {
  DEFAULT_EVENTS_MAX_AGE_MS,
  DEFAULT_EVENTS_MAX_BYTES,
  DEFAULT_EVENTS_STREAM,
} from "./events-stream.js";

export const DEFAULT_DEBOUNCE_MS = 50;
export const DEFAULT_HEARTBEAT_MS = 1_000;

/** Settings of `sluice aggregator` (the common ones — id, NATS, etcd, admin, logging — are merged in). */
export const aggregatorSchema = defineSchema({
  debounce: {
    type: "duration",
    defaultMs: DEFAULT_DEBOUNCE_MS,
    minMs: 0,
    maxMs: 10_000,
    description:
      "At most one cluster.load per this window after a change (0 = publish on every change); bounds CPU and NATS traffic under many engines.",
  },
  heartbeat: {
    type: "duration",
    defaultMs: DEFAULT_HEARTBEAT_MS,
    minMs: 10,
    maxMs: 60_000,
    description: "cluster.load is republished at least this often even when nothing changed.",
  },
  "stale-after": {
    type: "duration",
    defaultMs: DEFAULT_STALE_AFTER_MS,
    minMs: 10,
    maxMs: 600_000,
    description: "An engine whose last load snapshot is older than this is flagged stale.",
  },
  "events-stream": {
    type: "string",
    default: DEFAULT_EVENTS_STREAM,
    pattern: /[A-Za-z0-9_-]+/,
    patternText: "letters, digits, '-' and '_' (a JetStream stream name)",
    description:
      "JetStream stream the leader creates (if missing) to keep decision events (sluice.v1.*.events.>) for `sluice events --since`.",
  },
  "events-max-age": {
    type: "duration",
    defaultMs: DEFAULT_EVENTS_MAX_AGE_MS,
    minMs: 1_000,
    maxMs: 365 * 24 * 3_600_000,
    description: "Decision events older than this are discarded from the stream.",
  },
  "events-max-bytes": {
    type: "int",
    default: DEFAULT_EVENTS_MAX_BYTES,
    min: 1_048_576,
    unit: "bytes",
    description: "Size bound of the events stream; the oldest events are discarded first.",
  },
});
