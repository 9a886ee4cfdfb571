// One simulation setup (trace, engines, delays, objectives) run under several policies and rate scales.

import { type ClassObjectives, DEFAULT_CLASS_OBJECTIVES, type RequestClass } from "./classes.js";
import {
  DEFAULT_DYNAMO_BUSY_OPTIONS,
  type DynamoBusyOptions,
  dynamoBusyPolicy,
} from "./dynamo-busy-policy.js";
import { dynamoEmaPolicy } from "./dynamo-ema-policy.js";
import type { EngineSetup } from "./engine-setup.js";
import { SimUsageError } from "./errors.js";
import { type AdmissionPolicy, noAdmissionPolicy, type PolicyContext } from "./policy.js";
import { type SimRunResult, type SimulatorOptions, simulate } from "./simulator.js";
import { sluicePolicy } from "./sluice-policy.js";
import { staticLimitPolicy } from "./static-policy.js";
import type { Trace } from "./trace.js";
import { buildWorkload, type Workload, type WorkloadOptions } from "./workload.js";

export const POLICY_NAMES = [
  "none",
  "static",
  "dynamo-busy",
  "dynamo-ema",
  "sluice-l1",
  "sluice-l3",
  "sluice-l1l2",
  "sluice-l1l2l3",
] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/** Tunables of the baselines (the sluice-* policies take core's policy defaults). */
export interface BaselineOptions {
  /** In-flight limit of the `static` policy. */
  staticLimit: number;
  dynamoBusy: DynamoBusyOptions;
  /** Time constant τ of `dynamo-ema`. */
  emaTimeConstantMs: number;
  /** `dynamo-ema` thresholds; default: the standard class's TTFT / mean-ITL objectives. */
  emaTtftThresholdMs: number;
  emaItlThresholdMs: number;
}

/** τ of `dynamo-ema`: 10 s, one of the time constants PR #1949's benchmarks exercise (1, 10, 30, 60 s). */
export const DEFAULT_EMA_TIME_CONSTANT_MS = 10_000;

export const DEFAULT_BASELINE_OPTIONS: Readonly<BaselineOptions> = Object.freeze({
  staticLimit: 256,
  dynamoBusy: DEFAULT_DYNAMO_BUSY_OPTIONS,
  emaTimeConstantMs: DEFAULT_EMA_TIME_CONSTANT_MS,
  emaTtftThresholdMs: DEFAULT_CLASS_OBJECTIVES.standard.ttftObjectiveMs,
  emaItlThresholdMs: DEFAULT_CLASS_OBJECTIVES.standard.meanItlObjectiveMs,
});

export interface ExperimentOptions {
  trace: Trace;
  engine: EngineSetup;
  engineCount: number;
  loadDelayMs: number;
  dispatchDelayMs: number;
  /** Workload shaping except the rate scale, which varies per run. */
  workload: Omit<WorkloadOptions, "rateScale">;
  objectives?: Readonly<Record<RequestClass, Readonly<ClassObjectives>>>;
  /** In-flight limit of the `static` policy. */
  staticLimit: number;
  /** Other baselines' tunables; defaults `DEFAULT_BASELINE_OPTIONS`. */
  baselines?: Partial<Omit<BaselineOptions, "staticLimit">>;
  seed?: number;
  onProgress?: (settled: number, total: number) => void;
}

export function isPolicyName(name: string): name is PolicyName {
  return (POLICY_NAMES as readonly string[]).includes(name);
}

export function createPolicy(
  name: PolicyName,
  context: PolicyContext,
  baselines: Partial<BaselineOptions> = {},
  seed = 1,
): AdmissionPolicy {
  const o: BaselineOptions = { ...DEFAULT_BASELINE_OPTIONS, ...baselines };
  switch (name) {
    case "none":
      return noAdmissionPolicy();
    case "static":
      return staticLimitPolicy({ maxInflight: o.staticLimit });
    case "dynamo-busy":
      return dynamoBusyPolicy(context, o.dynamoBusy);
    case "dynamo-ema":
      return dynamoEmaPolicy({
        timeConstantMs: o.emaTimeConstantMs,
        ttftThresholdMs: o.emaTtftThresholdMs,
        itlThresholdMs: o.emaItlThresholdMs,
      });
    case "sluice-l1":
      return sluicePolicy({ levels: { l1: true, l2: false, l3: false }, context, seed });
    case "sluice-l3":
      return sluicePolicy({ levels: { l1: false, l2: false, l3: true }, context, seed });
    case "sluice-l1l2":
      return sluicePolicy({ levels: { l1: true, l2: true, l3: false }, context, seed });
    case "sluice-l1l2l3":
      return sluicePolicy({ levels: { l1: true, l2: true, l3: true }, context, seed });
    default:
      throw new SimUsageError(`unknown policy "${String(name)}"; known: ${POLICY_NAMES.join(", ")}`);
  }
}

/** The cluster facts a policy configures itself from. */
export function policyContextOf(
  experiment: Pick<ExperimentOptions, "engine" | "engineCount">,
): PolicyContext {
  const o = experiment.engine.options;
  return {
    engineCount: experiment.engineCount,
    numGpuBlocks: o.numGpuBlocks,
    blockSize: o.blockSize,
    maxNumSeqs: o.maxNumSeqs,
    maxNumBatchedTokens: o.maxNumBatchedTokens,
  };
}

/** The workload of `experiment` at `rateScale`. */
export function workloadOf(experiment: ExperimentOptions, rateScale: number): Workload {
  return buildWorkload(experiment.trace, { ...experiment.workload, rateScale });
}

/** Simulator options for `policy`, with a FRESH (stateful) policy on every call. */
export function simulatorOptionsOf(
  experiment: ExperimentOptions,
  policy: PolicyName,
  extra: Partial<SimulatorOptions> = {},
): () => SimulatorOptions {
  const context = policyContextOf(experiment);
  const baselines = { ...experiment.baselines, staticLimit: experiment.staticLimit };
  return () => ({
    createEngine: experiment.engine.createEngine,
    blockHashesOf: experiment.engine.blockHashesOf,
    engineCount: experiment.engineCount,
    policy: createPolicy(policy, context, baselines, experiment.seed ?? 1),
    objectives: experiment.objectives ?? DEFAULT_CLASS_OBJECTIVES,
    loadDelayMs: experiment.loadDelayMs,
    dispatchDelayMs: experiment.dispatchDelayMs,
    ...(experiment.onProgress ? { onProgress: experiment.onProgress } : {}),
    ...extra,
  });
}

/** One run of `policy` at `rateScale`; `extra` sets simulator hooks (`retryRejected`, `forceAdmitRequest`). */
export function runPolicy(
  experiment: ExperimentOptions,
  policy: PolicyName,
  rateScale: number,
  extra: Partial<SimulatorOptions> = {},
): SimRunResult {
  return simulate(workloadOf(experiment, rateScale), simulatorOptionsOf(experiment, policy, extra)());
}
