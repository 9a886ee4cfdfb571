// L3 in shadow: the arrival checks of the engine decision (`engine-decision.ts` `offer`) with the
// candidate's classes and engine limits, on the enforcing decision's view of the engine: how many
// requests are inside the engine or queued, and the TTFT the enforcing decision predicts for this
// request. Not evaluated: anything that needs the candidate's own queue — a different in-engine limit
// or class priority changes which requests would be ahead and so the prediction itself; later
// re-evaluation while queued (queue_timeout, a prediction that worsens); the ITL guard.
import type { ClassObjectives, EngineLimits } from "../policy/types.js";
import { ADMIT_VERDICT, type ShadowVerdict } from "./shadow-verdict.js";

export interface EngineShadowPolicy {
  readonly classes: readonly ClassObjectives[];
  readonly defaultClass: string;
  readonly engine: EngineLimits;
}

export interface EngineShadowFacts {
  /** Request class as the request asked for it; unknown names are judged as the candidate's default. */
  readonly className: string;
  /** Requests inside the engine plus queued, before this arrival. */
  readonly occupied: number;
  /** The engine's max_num_seqs (the in-engine limit when `engine.maxInflight` is 0). */
  readonly engineMaxNumSeqs: number;
  /** TTFT the enforcing decision predicts for this request (from its TTFT clock start). */
  readonly predictedTtftMs: number;
}

export function engineShadowVerdict(policy: EngineShadowPolicy, facts: EngineShadowFacts): ShadowVerdict {
  const cls =
    policy.classes.find((c) => c.name === facts.className) ??
    policy.classes.find((c) => c.name === policy.defaultClass);
  if (cls === undefined) return { outcome: "reject", reason: "invalid_request", observed: 0, limit: 0 };
  const inEngineLimit = policy.engine.maxInflight > 0 ? policy.engine.maxInflight : facts.engineMaxNumSeqs;
  const capacity = inEngineLimit + Math.floor(cls.limitShare * policy.engine.maxQueue);
  if (facts.occupied >= capacity) {
    return { outcome: "reject", reason: "queue_full", observed: facts.occupied, limit: capacity };
  }
  const limit = cls.ttftObjectiveMs - policy.engine.ttftMarginMs;
  if (facts.predictedTtftMs > limit) {
    return { outcome: "reject", reason: "predicted_ttft", observed: facts.predictedTtftMs, limit };
  }
  return ADMIT_VERDICT;
}
