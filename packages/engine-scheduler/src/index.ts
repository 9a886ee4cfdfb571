// Public API of @sluice/engine-scheduler: the `sluice engine-scheduler` command and the pieces it is
// built from (for tests, benchmarks and embedding).

export type {
  EngineSchedulerCommand,
  LaunchEngineSchedulerOptions,
  LaunchedEngineScheduler,
} from "./command.js";
export { engineSchedulerCommand, launchEngineScheduler, runEngineScheduler } from "./command.js";
export { engineSchedulerSchema } from "./config.js";
export type { DecisionEventPublisher, EngineEventInput, EngineEventStep } from "./decision-events.js";
export { createDecisionEventPublisher } from "./decision-events.js";
export type { EngineFacts, EngineScraper, EngineScraperOptions } from "./engine-facts.js";
export { parseEngineMetrics, startEngineScraper } from "./engine-facts.js";
export { BadRequestError, EngineUnavailableError } from "./errors.js";
export type { LiveEngineDecision, Reconfigured } from "./live-decision.js";
export { createLiveEngineDecision } from "./live-decision.js";
export type { LoadPublisher, LoadPublisherDeps, LoadSnapshot } from "./load-publisher.js";
export { createLoadPublisher } from "./load-publisher.js";
export type { ProxyServer, ProxyServerOptions } from "./proxy-server.js";
export { startProxyServer } from "./proxy-server.js";
export type { SidecarFailureReason, SidecarRejectionBody } from "./rejection-response.js";
export { rejectionBody } from "./rejection-response.js";
export type { RequestFacts } from "./request-facts.js";
export {
  CACHED_TOKENS_HEADER,
  CLASS_HEADER,
  ELAPSED_MS_HEADER,
  estimateTextTokens,
  PROMPT_TOKENS_HEADER,
  REQUEST_ID_HEADER,
  requestFacts,
} from "./request-facts.js";
export type {
  EndOutcome,
  SchedulerListener,
  SidecarCounts,
  SidecarScheduler,
  SidecarSchedulerOptions,
  TerminalOutcome,
  Waiter,
} from "./scheduler.js";
export { createSidecarScheduler } from "./scheduler.js";
export type { SidecarMetrics } from "./sidecar-metrics.js";
export { createSidecarMetrics } from "./sidecar-metrics.js";
