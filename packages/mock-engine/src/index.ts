// Public API of @sluice/mock-engine: the `sluice mock-engine` command and the pieces it is built
// from (for tests and for embedding the engine in other processes).

export type { LaunchedMockEngine, MockEngineCommand } from "./command.js";
export { launchMockEngine, mockEngineCommand, runMockEngine } from "./command.js";
export type { RealtimeDriver, RealtimeDriverOptions, SequenceListener, StepObserver } from "./driver.js";
export { createRealtimeDriver, DEFAULT_MAX_LAG_MS, DEFAULT_SPEEDUP } from "./driver.js";
export type { ApiErrorType } from "./errors.js";
export { ApiError, EngineStoppedError, MockEngineConfigError } from "./errors.js";
export type { ApiServer } from "./http-server.js";
export type { KvEventPublisher, ParsedRouterEvent, Publisher } from "./kv-events.js";
export {
  createKvEventPublisher,
  dynamoWorkerId,
  parseRouterEvent,
  routerEventJson,
} from "./kv-events.js";
export type { LoadPublisher, LoadPublisherOptions } from "./load-publisher.js";
export {
  createLoadPublisher,
  DEFAULT_LOAD_DEBOUNCE_MS,
  DEFAULT_LOAD_HEARTBEAT_INTERVAL_MS,
} from "./load-publisher.js";
export type { MockEngine, MockEngineOptions } from "./mock-engine.js";
export { startMockEngine } from "./mock-engine.js";
export type { ApiOptions } from "./options.js";
export {
  apiOptionsWithDefaults,
  DEFAULT_FORCE_OUTPUT_TOKENS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_MODEL_LEN,
  DEFAULT_MAX_TOKENS,
  DEFAULT_MODEL,
} from "./options.js";
export type { GenerationRequest } from "./request-parse.js";
export type { Tokenizer } from "./tokenizer.js";
export { cl100kTokenizer } from "./tokenizer.js";
export type { MetricsSink, VllmMetrics } from "./vllm-metrics.js";
