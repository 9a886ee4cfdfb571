// Public API of @sluice/core: pure decision code and models shared by the processes and the simulator.

// L1 (ingress) admission decision and multi-frontend sync state
export {
  FrontendSyncConfigError,
  InvalidAdmissionFactsError,
  InvalidPeerSnapshotError,
} from "./admission/errors.js";
export type {
  FrontendSyncOptions,
  GlobalInflightView,
  IngressStateSnapshot,
  PeerStatus,
  ReceiveOutcome,
  SyncedLoad,
} from "./admission/frontend-sync.js";
export {
  createGlobalInflightView,
  DEFAULT_FRONTEND_SYNC_OPTIONS,
  frontendSyncOptionsWithDefaults,
} from "./admission/frontend-sync.js";
export type {
  IngressAdmit,
  IngressDecision,
  IngressFacts,
  IngressReject,
  IngressRejectReason,
  IngressView,
  TenantLoad,
} from "./admission/ingress-decision.js";
export {
  decideIngress,
  estimatePromptTokensFromBytes,
  NO_DRAIN_RETRY_AFTER_MS,
  PROMPT_BYTES_PER_TOKEN,
  requestKvBlocks,
  tenantInflightLimitOf,
  tenantMappingOf,
} from "./admission/ingress-decision.js";
export type { Clock, ManualClock } from "./clock.js";
// Time
export { manualClock } from "./clock.js";
// Cluster aggregation (sluice aggregator → cluster.load)
export type {
  ClassHeadroomView,
  ClassShare,
  ClusterAggregateOptions,
  ClusterFacts,
  EngineCapacity,
  IngressInflight,
  ModelLoadView,
  ObservedEngineLoad,
  PredictedWorkerLoad,
} from "./cluster/cluster-aggregate.js";
export {
  aggregateClusterLoad,
  clusterAggregateOptionsWithDefaults,
  clusterLoadChanged,
  DEFAULT_CLUSTER_AGGREGATE_OPTIONS,
  DEFAULT_STALE_AFTER_MS,
} from "./cluster/cluster-aggregate.js";
export { ClusterAggregateConfigError } from "./cluster/errors.js";
// Engine model (mock-engine and simulator)
export { createEngineModel } from "./engine/engine-model.js";
export {
  EngineBusyError,
  EngineConfigError,
  InvalidEngineRequestError,
  RequestTooLongError,
} from "./engine/errors.js";
export {
  DEFAULT_ENGINE_MODEL_OPTIONS,
  withDefaults as engineModelOptionsWithDefaults,
} from "./engine/options.js";
export type { SplitwiseCurves, SplitwiseProfileSelector } from "./engine/step-time.js";
export {
  DYNAMO_MOCKER_STEP_COEFFICIENTS,
  dynamoMockerStepTime,
  interpolateCurve,
  parseSplitwiseCurves,
  splitwiseStepTime,
} from "./engine/step-time.js";
export type {
  BlockHash,
  EngineLoadSnapshot,
  EngineModel,
  EngineModelOptions,
  EngineRequest,
  KvEvent,
  StepResult,
  StepTimeInput,
  StepTimeModel,
} from "./engine/types.js";
export type {
  EngineArrival,
  EngineArrivalDecision,
  EngineDecision,
  EngineDecisionOptions,
  EngineDecisionSnapshot,
  EngineFacts,
  EngineRejection,
  EngineRejectReason,
  EngineRelease,
} from "./engine-scheduler/engine-decision.js";
// L3 engine-scheduler decision, queue and online models
export {
  createEngineDecision,
  DEFAULT_ENGINE_DECISION_OPTIONS,
  engineDecisionOptionsFromPolicy,
  engineDecisionOptionsWithDefaults,
} from "./engine-scheduler/engine-decision.js";
export {
  DuplicateRequestIdError,
  EngineSchedulerConfigError,
  InvalidSchedulerInputError,
  QueueCapacityError,
} from "./engine-scheduler/errors.js";
export type {
  DecodeObservation,
  OnlineModelEstimates,
  OnlineModelOptions,
  OnlineModels,
  PrefillObservation,
} from "./engine-scheduler/online-models.js";
export {
  createOnlineModels,
  DEFAULT_ONLINE_MODEL_OPTIONS,
  onlineModelOptionsWithDefaults,
} from "./engine-scheduler/online-models.js";
export type { PredictionAudit, PredictionAuditResult } from "./engine-scheduler/prediction-audit.js";
export { createPredictionAudit } from "./engine-scheduler/prediction-audit.js";
export type { QueueEntry, QueueEntryInput, RequestQueue } from "./engine-scheduler/request-queue.js";
export { createRequestQueue } from "./engine-scheduler/request-queue.js";
export type { BlockHashes } from "./kv/block-hash.js";
// KV block hashing (Dynamo-compatible)
export {
  chainSequenceHashes,
  computeBlockHashes,
  computeLocalBlockHashes,
  nextSequenceHash,
  XXH3_SEED,
} from "./kv/block-hash.js";
// Policy (plain mirror of sluice.v1.Policy) and class resolution
export type { ClassRequest, ClassResolver, ClassSource, ResolvedClass } from "./policy/class-resolution.js";
export { createClassResolver, resolveClass } from "./policy/class-resolution.js";
export { BUILT_IN_CLASSES, DEFAULT_POLICY } from "./policy/defaults.js";
export { PolicyError } from "./policy/errors.js";
export type {
  ClassInput,
  ClassObjectives,
  EngineLimits,
  FailMode,
  IngressLimits,
  PolicyInput,
  RejectHttpStatus,
  RejectionSettings,
  ResolvedPolicy,
  RouterLimits,
  TenantInput,
  TenantMapping,
} from "./policy/types.js";
export { withPolicyDefaults } from "./policy/with-defaults.js";
// Chat template shared by the mock engine, the router and the ingress
export type { ChatMessage } from "./prompt/chat-template.js";
export { applyChatTemplate } from "./prompt/chat-template.js";
// L2 router: prefix index, predicted load, hold queue, selection (packages/core/src/router)
export { RouterConfigError, RouterInputError } from "./router/errors.js";
export type {
  DrainResult,
  HeldEntry,
  HoldClass,
  HoldQueue,
  HoldQueueOptions,
  OfferOutcome,
} from "./router/hold-queue.js";
export { createHoldQueue } from "./router/hold-queue.js";
export type {
  GapPolicy,
  KvEventOutcome,
  PrefixIndex,
  PrefixIndexOptions,
  PrefixIndexStats,
  PrefixMatches,
} from "./router/prefix-index.js";
export {
  createPrefixIndex,
  DEFAULT_PREFIX_INDEX_OPTIONS,
  prefixIndexOptionsWithDefaults,
} from "./router/prefix-index.js";
export type {
  DecideRouteInput,
  L2DrainResult,
  L2RouteResult,
  L2Router,
  L2RouterDeps,
  OverlapLookup,
  RouteDecision,
  RouteRequestFacts,
  RouterPolicy,
  RouterReject,
  RouterRejectReason,
  RouterRouted,
  RouterWorker,
  WorkerAssessment,
} from "./router/router-decision.js";
export { assessWorkers, createL2Router, decideRoute } from "./router/router-decision.js";
export type { BusyChecks, RouterDecisionOptions } from "./router/router-options.js";
export {
  DEFAULT_ROUTER_DECISION_OPTIONS,
  routerDecisionOptionsWithDefaults,
} from "./router/router-options.js";
export type {
  ObservedWorkerLoad,
  RoutedAdd,
  RoutedRef,
  RouterSyncDelta,
  SyncOutcome,
  WorkerLoad,
  WorkerLoadOptions,
  WorkerLoadView,
} from "./router/worker-load.js";
export {
  createWorkerLoad,
  DEFAULT_WORKER_LOAD_OPTIONS,
  workerLoadOptionsWithDefaults,
} from "./router/worker-load.js";
// Shadow policies: verdicts of a candidate policy beside the enforcing one
export type { EngineShadowFacts, EngineShadowPolicy } from "./shadow/engine-shadow.js";
export { engineShadowVerdict } from "./shadow/engine-shadow.js";
export { routeShadowVerdict } from "./shadow/route-shadow.js";
export type {
  ShadowComparison,
  ShadowDecisionEvent,
  ShadowEventInput,
  ShadowOutcome,
  ShadowVerdict,
} from "./shadow/shadow-verdict.js";
export { ADMIT_VERDICT, compareShadow, shadowDecisionEvent } from "./shadow/shadow-verdict.js";
