// Public API of @sluice/ingress: the `sluice ingress` command and the pieces it is built from.

export type {
  AdmissionController,
  AdmissionRequest,
  AdmissionResult,
  BatchAdmissionResult,
  IngressShadowReport,
  Rejection,
} from "./admission-controller.js";
export { createAdmissionController, DEFAULT_CHARGE_BLOCK_SIZE } from "./admission-controller.js";
export type { IngressCommand, LaunchedIngress, LaunchIngressOptions } from "./command.js";
export { ingressCommand, launchIngress } from "./command.js";
export { ingressSchema } from "./config.js";
export type { EventSink, IngressEvent } from "./decision-events.js";
export { type NatsEventSink, natsEventSink, noopEventSink } from "./decision-events.js";
export type { EngineDirectory, EngineEntry } from "./engine-registry.js";
export { enginesOf, liveModels, parseEngineRegistration, staticEngineDirectory } from "./engine-registry.js";
export type {
  EngineLease,
  EngineSelector,
  LocalEngineSelector,
  RoutePrompt,
  RouterRejection,
  Selection,
  SelectQuery,
} from "./engine-selector.js";
export { leastInflightSelector } from "./engine-selector.js";
export type { EnvoyRlsService, EnvoyRlsServiceOptions } from "./envoy-rls-service.js";
export { createEnvoyRlsService } from "./envoy-rls-service.js";
export { HttpError, IngressConfigError, RlsRequestError, UpstreamError } from "./errors.js";
export { endToEndHeaders } from "./hop-by-hop.js";
export type {
  InflightLedger,
  InflightLoad,
  LedgerCounters,
  Slot,
  TerminalOutcome,
} from "./inflight-ledger.js";
export { createInflightLedger } from "./inflight-ledger.js";
export type { IngressMetrics } from "./ingress-metrics.js";
export { createIngressMetrics } from "./ingress-metrics.js";
export type {
  IngressPoliciesOptions,
  IngressPolicySource,
  PolicyInForce,
  PolicySource,
} from "./ingress-policies.js";
export {
  DEFAULT_MAX_POLICY_START_RETRY_DELAY_MS,
  DEFAULT_POLICY_START_RETRY_DELAY_MS,
  startIngressPolicies,
  staticPolicySource,
} from "./ingress-policies.js";
export type { ModelSync } from "./model-sync.js";
export { createModelSync, TENANT_BUCKET } from "./model-sync.js";
export {
  DEFAULT_DEFAULT_MAX_TOKENS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_RLS_SLOT_HOLD_MS,
  DEFAULT_STATE_DEBOUNCE_MS,
  DEFAULT_STATE_HEARTBEAT_MS,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
} from "./options.js";
export type { ProxyServer, ProxyServerOptions } from "./proxy-server.js";
export { EVENTS_HEADER, REQUEST_ID_HEADER, startProxyServer } from "./proxy-server.js";
export { rejectionBody, rejectionHeaders } from "./rejection-response.js";
export type { RequestFacts } from "./request-facts.js";
export { parseRequestFacts } from "./request-facts.js";
export type { RlsDescriptorKey, RlsFacts } from "./rls-descriptors.js";
export { MAX_RLS_HITS, parseRlsRequest, RLS_DESCRIPTOR_KEYS } from "./rls-descriptors.js";
export { routePromptOf } from "./route-prompt.js";
export type {
  RouteFallbackReason,
  RouterClient,
  RouterSelector,
  RouterSelectorOptions,
} from "./router-selector.js";
export { CACHED_TOKENS_HEADER, parseRouterTarget, routerSelector } from "./router-selector.js";
