export type { AdminServer, AdminServerOptions } from "./admin-server.js";
export { OPEN_ADMIN_PATHS, startAdminServer } from "./admin-server.js";
export type { Codec, DecodeResult, ProtoJsonCodecOptions } from "./codec.js";
export { CodecError, jsonCodec, protoCodec, protoJsonCodec } from "./codec.js";
export type { LoadConfigOptions, LoadedConfig } from "./config.js";
export { CONFIG_FILE_ENV, defaultValue, describeSource, loadConfig } from "./config.js";
export type { CommonSchema, LogLevel } from "./config-common.js";
export { commonSchema, defaultInstanceId, LOG_LEVELS } from "./config-common.js";
export type { HelpOptions } from "./config-help.js";
export { renderHelp, renderMarkdown } from "./config-help.js";
export type {
  BooleanSetting,
  ConfigSchema,
  ConfigValues,
  DurationSetting,
  EnumSetting,
  IntSetting,
  ListSetting,
  NumberSetting,
  Setting,
  StringSetting,
} from "./config-schema.js";
export { camelCase, defineSchema, envVarName, mergeSchemas, valueKey } from "./config-schema.js";
export type {
  AdminSecurityConfigValues,
  EtcdSecurityConfigValues,
  SecurityConfigValues,
} from "./config-security.js";
export {
  adminTokenFromConfig,
  etcdSecurityFromConfig,
  natsSecurityFromConfig,
  securitySchema,
} from "./config-security.js";
export { describeAllowed, formatDurationMs, parseDurationMs, parseSettingValue } from "./config-values.js";
export type { DecisionEventFields } from "./decision-event-json.js";
export { encodeDecisionEventJson } from "./decision-event-json.js";
export type { CampaignOptions, Leadership, LeadershipLossReason } from "./election.js";
export { campaign, currentLeader } from "./election.js";
export type { ConfigErrorDetails, ConfigSource } from "./errors.js";
export {
  AdminServerError,
  ConfigError,
  ConfigSchemaError,
  ConnectionClosedError,
  GrpcCallError,
  GrpcServerError,
  SecretFileError,
} from "./errors.js";
export type {
  EtcdSession,
  EtcdSessionEvent,
  EtcdSessionListener,
  EtcdSessionOptions,
  InstanceRegistration,
} from "./etcd.js";
export {
  createEtcdClient,
  createEtcdSession,
  DEFAULT_ETCD_DIAL_TIMEOUT_MS,
  DEFAULT_ETCD_REVOKE_TIMEOUT_MS,
  DEFAULT_LEASE_TTL_SEC,
  DEFAULT_MAX_REGRANT_DELAY_MS,
  DEFAULT_REGRANT_DELAY_MS,
  etcdRetryDelayMs,
  etcdSessionOptionsWithDefaults,
  openEtcdSession,
} from "./etcd.js";
export type { EtcdAuth, EtcdSecurity, EtcdTlsFiles } from "./etcd-auth.js";
export { describeEtcdSecurity, etcdClientSecurityOptions } from "./etcd-auth.js";
export type {
  BackgroundPrefixWatch,
  PrefixWatch,
  PrefixWatchHandlers,
  PrefixWatchOptions,
  PrefixWatchStatus,
  WatchEntry,
} from "./etcd-watch.js";
export {
  DEFAULT_LEASED_DELETE_GRACE_MS,
  DEFAULT_WATCH_MAX_INITIAL_RETRY_DELAY_MS,
  DEFAULT_WATCH_RETRY_DELAY_MS,
  startPrefixWatch,
  watchPrefix,
} from "./etcd-watch.js";
export type {
  GrpcCallOptions,
  GrpcClient,
  GrpcClientOptions,
  GrpcServer,
  GrpcServiceRegistration,
  StartGrpcServerOptions,
} from "./grpc.js";
export {
  createGrpcClient,
  DEFAULT_GRPC_DEADLINE_MS,
  formatHostPort,
  grpcClientOptionsWithDefaults,
  startGrpcServer,
} from "./grpc.js";
export type { SluiceKeys } from "./keys.js";
export {
  DEFAULT_KEY_PREFIX,
  DEFAULT_POLICY_KEY,
  KeySegmentError,
  keySegment,
  normalizeKeyPrefix,
  sluiceKeys,
} from "./keys.js";
export type { CreateLoggerOptions, Logger, ProcessLogger } from "./logger.js";
export { createLogger, noopLogger, REDACTED_PATHS } from "./logger.js";
export type {
  CounterMetric,
  CreateMetricsRegistryOptions,
  GaugeMetric,
  HistogramMetric,
  Labels,
  MetricDefinition,
  Metrics,
  PromMetricsOptions,
} from "./metrics.js";
export {
  createMetricsRegistry,
  createPromMetrics,
  noopMetrics,
  SLUICE_METRIC_PREFIX,
} from "./metrics.js";
export type {
  NatsClient,
  NatsConnectOptions,
  NatsHandle,
  NatsStatusEvent,
  NatsStatusListener,
  NatsSubscribeOptions,
} from "./nats.js";
export {
  connectNats,
  createNatsClient,
  DEFAULT_NATS_CONNECT_TIMEOUT_MS,
  DEFAULT_NATS_DRAIN_TIMEOUT_MS,
  DEFAULT_NATS_MAX_PINGS_OUT,
  DEFAULT_NATS_MAX_RECONNECT_DELAY_MS,
  DEFAULT_NATS_PING_INTERVAL_MS,
  DEFAULT_NATS_RECONNECT_DELAY_MS,
  DEFAULT_NATS_RECONNECT_JITTER_MS,
  isNatsAuthError,
  natsOptionsWithDefaults,
  natsReconnectDelayMs,
} from "./nats.js";
export type { NatsAuth, NatsTlsFiles } from "./nats-auth.js";
export { describeNatsAuth, natsAuthenticator, natsTlsOptions } from "./nats-auth.js";
export type { ParsedPolicy, ParsePolicyOptions } from "./policy-document.js";
export {
  parsePolicyText,
  parsePolicyValue,
  parseStoredPolicy,
  policyInputFromMessage,
  policyModelOf,
  serializePolicy,
} from "./policy-document.js";
export type { PolicyIssue } from "./policy-errors.js";
export { DOCUMENT_PATH, formatPolicyIssue, PolicyDocumentError } from "./policy-errors.js";
export type { PolicyRejectedEvent, PolicyRejectedMessage } from "./policy-events.js";
export { POLICY_REJECTED_OUTCOME, policyRejectedMessage } from "./policy-events.js";
export type { PolicyKeyRef, PolicyKeys, PolicyKind } from "./policy-keys.js";
export { policyKeys, SHADOW_POLICY_SEGMENT } from "./policy-keys.js";
export type { PolicyReporting, PolicyReportingDeps, ShadowReport } from "./policy-reporting.js";
export {
  createPolicyReporting,
  POLICY_APPLIED_TIMESTAMP_METRIC,
  SHADOW_DECISIONS_METRIC,
  SHADOW_OUTCOME,
} from "./policy-reporting.js";
export type {
  EffectivePolicy,
  EffectivePolicySource,
  PolicyApplied,
  PolicyRejected,
  PolicyWatcher,
  WatchPoliciesOptions,
} from "./policy-watch.js";
export {
  BUILT_IN_POLICY,
  POLICY_REJECTED_METRIC,
  POLICY_REVISION_METRIC,
  watchPolicies,
} from "./policy-watch.js";
export type { LaunchedProcessShell, LaunchOptions, LaunchProcessShellOptions } from "./process-launch.js";
export { launchProcessShell, runUntilExit } from "./process-launch.js";
export type { ProcessSecurity, ProcessShell, ProcessShellOptions } from "./process-shell.js";
export { maskUrlCredentials, startProcessShell } from "./process-shell.js";
export type { Readiness, ReadinessCheck, ReadinessReport, ReadinessResult } from "./readiness.js";
export { createReadiness, DEFAULT_READINESS_CHECK_TIMEOUT_MS } from "./readiness.js";
export type {
  RouterSyncFate,
  RouterSyncGate,
  RouterSyncGateOptions,
  RouterSyncRefusal,
  SyncWorkerCapacity,
} from "./router-sync-gate.js";
export {
  absurdAddReason,
  createRouterSyncGate,
  DEFAULT_SYNC_DEPARTED_KEEP_MS,
  DEFAULT_SYNC_MAX_HELD_PER_REPLICA,
  DEFAULT_SYNC_MAX_HELD_REPLICAS,
  DEFAULT_SYNC_REGISTRATION_WAIT_MS,
  DEFAULT_SYNC_WARN_INTERVAL_MS,
} from "./router-sync-gate.js";
export type { SecretValue } from "./secret-value.js";
export { describeSecret, readSecret } from "./secret-value.js";
export type { SharedState, SharedStateConfig } from "./shared-state.js";
export { leaseTtlSecOf, openSharedState } from "./shared-state.js";
export type {
  ShutdownHook,
  ShutdownHookContext,
  ShutdownLogger,
  ShutdownManager,
  ShutdownManagerOptions,
  ShutdownOutcome,
  ShutdownPhase,
} from "./shutdown.js";
export { createShutdownManager, DEFAULT_SHUTDOWN_PHASE_TIMEOUT_MS, SHUTDOWN_PHASES } from "./shutdown.js";
export type { Subjects } from "./subjects.js";
export {
  DEFAULT_NAMESPACE,
  SUBJECT_ROOT,
  SubjectTokenError,
  subjects,
  subjectToken,
  workerIdOfSubject,
} from "./subjects.js";
