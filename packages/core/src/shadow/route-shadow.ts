// L2 in shadow: the stateless part of the router decision. `decideRoute` with the candidate policy on
// the same workers, overlaps, load picture and clock says whether a worker is free for the request;
// when none is, whether the candidate would hold it depends only on whether its class may be held at
// all (`router.classMaxHeld`). What it does NOT evaluate: the candidate's hold-queue occupancy (so a
// "hold" may in reality have been `hold_queue_full`), and what happens to the request while held.
import type { RouteDecision, RouterPolicy } from "../router/router-decision.js";
import { ADMIT_VERDICT, type ShadowVerdict } from "./shadow-verdict.js";

/** Maps a `decideRoute` result under `policy` to admit / hold / reject. */
export function routeShadowVerdict(decision: RouteDecision, policy: RouterPolicy): ShadowVerdict {
  if (decision.routed) return ADMIT_VERDICT;
  const holdable = decision.reason === "all_engines_busy" || decision.reason === "predicted_ttft";
  const maxHeld = policy.router.classMaxHeld[decision.class] ?? 0;
  return {
    outcome: holdable && maxHeld > 0 ? "hold" : "reject",
    reason: decision.reason,
    observed: decision.observed,
    limit: decision.limit,
  };
}
