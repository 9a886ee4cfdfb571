// Public API of @sluice/sim: the `sluice sim` command, and the pieces benchmarks and later admission
// levels build on (trace readers, workload, simulator, policies, reports, capacity search, plot).

export { parseAzureTrace } from "./azure-reader.js";
export type { BlockExpansionOptions } from "./block-hash.js";
export { expandBlockHashes, MOONCAKE_TRACE_BLOCK_TOKENS, uniqueBlockHashes } from "./block-hash.js";
export type { CapacityOptions, CapacityProbe, CapacityResult } from "./capacity.js";
export { DEFAULT_CAPACITY_OPTIONS, findCapacity } from "./capacity.js";
export type { ClassMix, ClassObjectives, RequestClass } from "./classes.js";
export { DEFAULT_CLASS_MIX, DEFAULT_CLASS_OBJECTIVES, parseClassMix, REQUEST_CLASSES } from "./classes.js";
export type { EngineSetup, EngineSetupOptions, StepModelName } from "./engine-setup.js";
export { createEngineSetup, DEFAULT_ENGINE_SETUP } from "./engine-setup.js";
export { CapacityNotFoundError, SimUsageError, SimulationStalledError, TraceFormatError } from "./errors.js";
export { EventQueue } from "./event-queue.js";
export type { ExperimentOptions, PolicyName } from "./experiment.js";
export { createPolicy, POLICY_NAMES, runPolicy } from "./experiment.js";
export { parseMooncakeTrace } from "./mooncake-reader.js";
export { renderSweepSvg } from "./plot.js";
export type {
  AdmissionDecision,
  AdmissionPolicy,
  ClusterView,
  CompletionFacts,
  EngineView,
  PolicyFactory,
  PolicyRequest,
  RejectionLevel,
} from "./policy.js";
export { noAdmissionPolicy } from "./policy.js";
export { parseTrace, readTraceFile } from "./read-trace.js";
export type { PolicyReport } from "./report.js";
export { formatReportTable, summarize } from "./report.js";
export type { Command, CommandIo, SimJsonRow, SimOutput } from "./sim-command.js";
export { runSim, simCommand } from "./sim-command.js";
export type { SimFlags } from "./sim-flags.js";
export { parseSimFlags, SIM_HELP } from "./sim-flags.js";
export type { SimRunResult, SimulatorOptions } from "./simulator.js";
export { DEFAULT_DISPATCH_DELAY_MS, DEFAULT_LOAD_DELAY_MS, simulate } from "./simulator.js";
export type { StaticPolicyOptions } from "./static-policy.js";
export { staticLimitPolicy } from "./static-policy.js";
export type { Trace, TraceFormat, TraceReadOptions, TraceRecord } from "./trace.js";
export type { SimRequest, Workload, WorkloadOptions } from "./workload.js";
export { buildWorkload, DEFAULT_SPREAD_BUCKET_MS } from "./workload.js";
