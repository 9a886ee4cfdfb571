// Public API of @sluice/router: the `sluice router` command and the pieces it is built from (for
// tests, benchmarks and embedding).

export type { LaunchedRouter, LaunchRouterOptions, RouterCommand } from "./command.js";
export { launchRouter, routerCommand, runRouter } from "./command.js";
export { routerSchema } from "./config.js";
export type { RouterEventInput, RouterEventPublisher } from "./decision-events.js";
export { createRouterEventPublisher, REJECT_REASONS } from "./decision-events.js";
export type { DynamoLoad, DynamoSubjects } from "./dynamo.js";
export { dynamoSubjects, parseDynamoLoad, parseDynamoModelEntry } from "./dynamo.js";
export { MalformedInputError, RouteRequestError, RouterSettingsError } from "./errors.js";
export type { RouterGrpcOptions } from "./grpc-service.js";
export { effectiveDeadlineMs, routeResponseOf, routerGrpcImplementation } from "./grpc-service.js";
export type { DecodedKvEvent } from "./kv-events.js";
export { decodeKvEvent } from "./kv-events.js";
export type { PromptInput } from "./prompt.js";
export { chatPromptText, promptBlockHashes, promptTokenIds } from "./prompt.js";
export type { MessageSource, RouterMetrics } from "./router-metrics.js";
export { createRouterMetrics } from "./router-metrics.js";
export type {
  PendingRoute,
  RouteAnswer,
  RouteCall,
  RouteRejected,
  RouteRejectReason,
  RouteRouted,
  RouterService,
  RouterServiceDeps,
  RouterServiceListener,
} from "./router-service.js";
export { createRouterService } from "./router-service.js";
export type { RegisteredWorker, WorkerRegistry } from "./worker-registry.js";
export { createWorkerRegistry, parseEngineRegistration } from "./worker-registry.js";
