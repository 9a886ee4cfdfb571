// Public API of @sluice/sim: the `sluice sim` command, and the pieces benchmarks and later admission
// levels build on (trace readers, workload, simulator, policies, reports, capacity search, plot).

export { parseAzureTrace } from "./azure-reader.js";
export type { BlockExpansionOptions } from "./block-hash.js";
export { expandBlockHashes, MOONCAKE_TRACE_BLOCK_TOKENS, uniqueBlockHashes } from "./block-hash.js";
export type { CapacityOptions, CapacityProbe, CapacityResult } from "./capacity.js";
export { DEFAULT_CAPACITY_OPTIONS, findCapacity } from "./capacity.js";
export type { ClassMix, ClassObjectives, RequestClass } from "./classes.js";
export { DEFAULT_CLASS_MIX, DEFAULT_CLASS_OBJECTIVES, parseClassMix, REQUEST_CLASSES } from "./classes.js";
export type { DynamoBusyOptions } from "./dynamo-busy-policy.js";
export { DEFAULT_DYNAMO_BUSY_OPTIONS, dynamoBusyPolicy } from "./dynamo-busy-policy.js";
export type { DynamoEmaOptions, TimeWeightedEma } from "./dynamo-ema-policy.js";
export { createTimeWeightedEma, dynamoEmaPolicy } from "./dynamo-ema-policy.js";
export type { EngineSetup, EngineSetupOptions, StepModelName } from "./engine-setup.js";
export { createEngineSetup, DEFAULT_ENGINE_SETUP } from "./engine-setup.js";
export { CapacityNotFoundError, SimUsageError, SimulationStalledError, TraceFormatError } from "./errors.js";
export { EventQueue } from "./event-queue.js";
export type { BaselineOptions, ExperimentOptions, PolicyName } from "./experiment.js";
export {
  createPolicy,
  DEFAULT_BASELINE_OPTIONS,
  DEFAULT_EMA_TIME_CONSTANT_MS,
  POLICY_NAMES,
  policyContextOf,
  runPolicy,
  simulatorOptionsOf,
  workloadOf,
} from "./experiment.js";
export type {
  FalseRejectionEstimate,
  FalseRejectionOptions,
  FalseRejectionSample,
  Proportion,
} from "./false-rejection.js";
export {
  DEFAULT_FALSE_REJECTION_OPTIONS,
  estimateFalseRejections,
  evaluateRejection,
  wilsonInterval,
  windowOf,
} from "./false-rejection.js";
export { parseMooncakeTrace } from "./mooncake-reader.js";
export { renderSweepSvg } from "./plot.js";
export type {
  AdmissionDecision,
  AdmissionPolicy,
  ClusterView,
  CompletionFacts,
  EngineObservation,
  EngineView,
  PolicyContext,
  PolicyFactory,
  PolicyRequest,
  RejectionLevel,
  SimEngineGate,
  SimGateOffer,
  SimGatePump,
  SimRouteDrain,
  SimRouteOutcome,
  SimRouter,
} from "./policy.js";
export { noAdmissionPolicy } from "./policy.js";
export { parseTrace, readTraceFile } from "./read-trace.js";
export { LatencyHistogram, parseDurationMs } from "./replay-support.js";
export type { ClassReport, PolicyReport } from "./report.js";
export { formatReportTable, summarize } from "./report.js";
export type { Command, CommandIo, SimJsonRow, SimOutput } from "./sim-command.js";
export { runSim, simCommand } from "./sim-command.js";
export type { SimFlags } from "./sim-flags.js";
export { parseSimFlags, SIM_HELP } from "./sim-flags.js";
export type { SimRetries, SimRunResult, SimulatedRun, SimulatorOptions } from "./simulator.js";
export { DEFAULT_DISPATCH_DELAY_MS, DEFAULT_LOAD_DELAY_MS, simulate } from "./simulator.js";
export type { SimEngineGateOptions } from "./sluice-engine-gate.js";
export { createSimEngineGate, DEFAULT_GATE_REEVALUATE_INTERVAL_MS } from "./sluice-engine-gate.js";
export type { SimIngress, SimIngressOptions } from "./sluice-ingress.js";
export { createSimIngress, workerIdOf } from "./sluice-ingress.js";
export type { SluiceLevels, SluicePolicyOptions } from "./sluice-policy.js";
export { sluicePolicy, sluicePolicyName } from "./sluice-policy.js";
export type { SimRouterOptions, SluiceSimRouter } from "./sluice-router.js";
export { createSimRouter } from "./sluice-router.js";
export type { StaticPolicyOptions } from "./static-policy.js";
export { staticLimitPolicy } from "./static-policy.js";
export type { Trace, TraceFormat, TraceReadOptions, TraceRecord } from "./trace.js";
export type { SimRequest, Workload, WorkloadOptions } from "./workload.js";
export { buildWorkload, DEFAULT_SPREAD_BUCKET_MS } from "./workload.js";
