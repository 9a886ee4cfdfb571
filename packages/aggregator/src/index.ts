// Public API of @sluice/aggregator: the `sluice aggregator` command, the decision-events stream
// helper (shared with `sluice events`) and the pieces the command is built from.

export type { AggregatorMetrics, SnapshotKind } from "./aggregator-metrics.js";
export { createAggregatorMetrics } from "./aggregator-metrics.js";
export { toClusterLoad } from "./cluster-load-message.js";
export type { ClusterState, IngestOutcome } from "./cluster-state.js";
export { createClusterState } from "./cluster-state.js";
export type {
  AggregatorCommand,
  LaunchAggregatorOptions,
  LaunchedAggregator,
  PublishedView,
} from "./command.js";
export { AGGREGATOR_ELECTION, aggregatorCommand, launchAggregator, runAggregator } from "./command.js";
export { aggregatorSchema, DEFAULT_DEBOUNCE_MS, DEFAULT_HEARTBEAT_MS } from "./config.js";
export { EventsStreamError } from "./errors.js";
export type { EnsureOutcome, EventsStreamOptions } from "./events-stream.js";
export {
  DEFAULT_EVENTS_MAX_AGE_MS,
  DEFAULT_EVENTS_MAX_BYTES,
  DEFAULT_EVENTS_STREAM,
  EVENTS_STREAM_SUBJECT,
  ensureEventsStream,
  eventsStreamOptionsWithDefaults,
} from "./events-stream.js";
export type { AggregateOptionsSource } from "./policy-shares.js";
export { aggregateOptionsFromPolicies } from "./policy-shares.js";
export type { PublishLoop, PublishLoopOptions } from "./publish-loop.js";
export { createPublishLoop } from "./publish-loop.js";
