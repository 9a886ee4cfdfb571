// The Sluice levels as simulator policies: `sluice-l1`, `sluice-l3`, `sluice-l1l2`, `sluice-l1l2l3`. Each
// level is core's own decision code (DESIGN §8: the simulator runs what the processes run), configured
// from one resolved policy (`withPolicyDefaults`, i.e. the documented defaults unless overridden).

import { DEFAULT_POLICY, type ResolvedPolicy } from "@sluice/core";
import { SimUsageError } from "./errors.js";
import type { AdmissionDecision, AdmissionPolicy, PolicyContext } from "./policy.js";
import { createSimEngineGate } from "./sluice-engine-gate.js";
import { createSimIngress } from "./sluice-ingress.js";
import { createSimRouter, type SimRouterOptions } from "./sluice-router.js";

export interface SluiceLevels {
  l1: boolean;
  l2: boolean;
  l3: boolean;
}

export interface SluicePolicyOptions {
  levels: SluiceLevels;
  context: PolicyContext;
  /** Default: core's `DEFAULT_POLICY`. */
  policy?: ResolvedPolicy;
  /** Router tunables (not policy), e.g. busy checks; defaults as `sluice router`. */
  routerDecision?: SimRouterOptions["decision"];
  seed?: number;
  /** The L3 sidecar's re-evaluation interval. */
  reevaluateIntervalMs?: number;
}

const ADMIT: AdmissionDecision = Object.freeze({ admit: true });

export function sluicePolicyName(levels: SluiceLevels): string {
  return `sluice-${levels.l1 ? "l1" : ""}${levels.l2 ? "l2" : ""}${levels.l3 ? "l3" : ""}`;
}

export function sluicePolicy(options: SluicePolicyOptions): AdmissionPolicy {
  const { levels, context } = options;
  if (!levels.l1 && !levels.l2 && !levels.l3)
    throw new SimUsageError("a sluice policy needs at least one level");
  const policy = options.policy ?? DEFAULT_POLICY;
  const router = levels.l2
    ? createSimRouter({
        policy,
        context,
        seed: options.seed ?? 1,
        ...(options.routerDecision !== undefined ? { decision: options.routerDecision } : {}),
      })
    : undefined;
  const ingress = levels.l1
    ? createSimIngress({
        policy,
        context,
        ...(router !== undefined ? { predictedLoad: () => router.predictedLoad() } : {}),
      })
    : undefined;
  return {
    name: sluicePolicyName(levels),
    admit: (request, view, nowMs) => (ingress === undefined ? ADMIT : ingress.admit(request, view, nowMs)),
    ...(ingress !== undefined
      ? {
          onComplete: (_request, _facts, nowMs) => ingress.onComplete(nowMs),
          onRelease: (request) => ingress.onRelease(request),
          onObservation: (engine, observation, nowMs) => ingress.onObservation(engine, observation, nowMs),
        }
      : {}),
    ...(router !== undefined ? { router } : {}),
    ...(levels.l3
      ? {
          createEngineGate: () =>
            createSimEngineGate({
              policy,
              context,
              ...(options.reevaluateIntervalMs !== undefined
                ? { reevaluateIntervalMs: options.reevaluateIntervalMs }
                : {}),
            }),
        }
      : {}),
  };
}
