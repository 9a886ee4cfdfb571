// One simulation setup (trace, engines, delays, objectives) run under several policies and rate scales.

import { type ClassObjectives, DEFAULT_CLASS_OBJECTIVES, type RequestClass } from "./classes.js";
import type { EngineSetup } from "./engine-setup.js";
import { SimUsageError } from "./errors.js";
import { type AdmissionPolicy, noAdmissionPolicy } from "./policy.js";
import { type SimRunResult, simulate } from "./simulator.js";
import { staticLimitPolicy } from "./static-policy.js";
import type { Trace } from "./trace.js";
import { buildWorkload, type WorkloadOptions } from "./workload.js";

export const POLICY_NAMES = ["none", "static"] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

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
  onProgress?: (settled: number, total: number) => void;
}

export function isPolicyName(name: string): name is PolicyName {
  return (POLICY_NAMES as readonly string[]).includes(name);
}

export function createPolicy(name: PolicyName, staticLimit: number): AdmissionPolicy {
  switch (name) {
    case "none":
      return noAdmissionPolicy();
    case "static":
      return staticLimitPolicy({ maxInflight: staticLimit });
    default:
      throw new SimUsageError(`unknown policy "${String(name)}"; known: ${POLICY_NAMES.join(", ")}`);
  }
}

export function runPolicy(
  experiment: ExperimentOptions,
  policy: PolicyName,
  rateScale: number,
): SimRunResult {
  const workload = buildWorkload(experiment.trace, { ...experiment.workload, rateScale });
  return simulate(workload, {
    createEngine: experiment.engine.createEngine,
    blockHashesOf: experiment.engine.blockHashesOf,
    engineCount: experiment.engineCount,
    policy: createPolicy(policy, experiment.staticLimit),
    objectives: experiment.objectives ?? DEFAULT_CLASS_OBJECTIVES,
    loadDelayMs: experiment.loadDelayMs,
    dispatchDelayMs: experiment.dispatchDelayMs,
    ...(experiment.onProgress ? { onProgress: experiment.onProgress } : {}),
  });
}
