export type { AdminServer, AdminServerOptions } from "./admin-server.js";
export { startAdminServer } from "./admin-server.js";
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
export { describeAllowed, formatDurationMs, parseDurationMs, parseSettingValue } from "./config-values.js";
export type { ConfigErrorDetails, ConfigSource } from "./errors.js";
export {
  AdminServerError,
  ConfigError,
  ConfigSchemaError,
  GrpcCallError,
  GrpcServerError,
} from "./errors.js";
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
export type { ProcessShell, ProcessShellOptions } from "./process-shell.js";
export { maskUrlCredentials, startProcessShell } from "./process-shell.js";
export type { Readiness, ReadinessCheck, ReadinessReport, ReadinessResult } from "./readiness.js";
export { createReadiness, DEFAULT_READINESS_CHECK_TIMEOUT_MS } from "./readiness.js";
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
