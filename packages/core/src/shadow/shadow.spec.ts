import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { withPolicyDefaults } from "../policy/with-defaults.js";
import type { RouteDecision, RouterRejectReason } from "../router/router-decision.js";
import { engineShadowVerdict } from "./engine-shadow.js";
import { routeShadowVerdict } from "./route-shadow.js";
import { ADMIT_VERDICT, compareShadow, shadowDecisionEvent } from "./shadow-verdict.js";

const busy = (cls: string, reason: RouterRejectReason = "all_engines_busy"): RouteDecision => ({
  routed: false,
  level: "router",
  reason,
  class: cls,
  observed: 900,
  limit: 800,
  predictedTtftMs: 50,
  retryAfterMs: 100,
});

describe("routeShadowVerdict", () => {
  const policy = withPolicyDefaults({ router: { classMaxHeld: { critical: 4, standard: 0 } } });
  it("admits a routed decision", () => {
    const routed: RouteDecision = {
      routed: true,
      workerId: "w",
      overlapBlocks: 0,
      predictedTtftMs: 1,
      uncachedTokens: 1,
      blocks: 1,
    };
    assert.equal(routeShadowVerdict(routed, policy), ADMIT_VERDICT);
  });
  it("holds busy requests only of classes the candidate may hold", () => {
    assert.equal(routeShadowVerdict(busy("critical"), policy).outcome, "hold");
    assert.deepEqual(routeShadowVerdict(busy("standard"), policy), {
      outcome: "reject",
      reason: "all_engines_busy",
      observed: 900,
      limit: 800,
    });
    assert.equal(routeShadowVerdict(busy("critical", "no_engines"), policy).outcome, "reject");
  });
});

describe("engineShadowVerdict", () => {
  const policy = withPolicyDefaults({ engine: { maxInflight: 2, maxQueue: 10, ttftMarginMs: 100 } });
  const facts = { className: "standard", occupied: 0, engineMaxNumSeqs: 8, predictedTtftMs: 100 };
  it("admits within limits", () => {
    assert.equal(engineShadowVerdict(policy, facts).outcome, "admit");
  });
  it("rejects on the candidate's class capacity (in-engine limit + share of the queue)", () => {
    // standard: 2 + floor(0.9 × 10) = 11
    assert.deepEqual(engineShadowVerdict(policy, { ...facts, occupied: 11 }), {
      outcome: "reject",
      reason: "queue_full",
      observed: 11,
      limit: 11,
    });
    assert.equal(engineShadowVerdict(policy, { ...facts, occupied: 10 }).outcome, "admit");
  });
  it("rejects on the candidate's TTFT objective minus margin; unknown classes are the default", () => {
    const v = engineShadowVerdict(policy, { ...facts, className: "gold", predictedTtftMs: 1950 });
    assert.deepEqual(v, { outcome: "reject", reason: "predicted_ttft", observed: 1950, limit: 1900 });
  });
});

describe("compareShadow", () => {
  it("disagrees on outcome or on the reason of a rejection", () => {
    const reject = { outcome: "reject", reason: "queue_full", observed: 3, limit: 2 } as const;
    assert.equal(compareShadow(ADMIT_VERDICT, ADMIT_VERDICT).disagree, false);
    assert.equal(compareShadow(ADMIT_VERDICT, reject).disagree, true);
    assert.equal(compareShadow(reject, { ...reject, observed: 9 }).disagree, false);
    assert.equal(compareShadow(reject, { ...reject, reason: "predicted_ttft" }).disagree, true);
    const hold = { outcome: "hold", reason: undefined, observed: 0, limit: 0 } as const;
    assert.equal(compareShadow(hold, { ...hold, reason: "all_engines_busy" }).disagree, false);
  });
  it("builds the event with both revisions", () => {
    const e = shadowDecisionEvent({
      level: "engine",
      instanceId: "i",
      requestId: "r",
      requestClass: "standard",
      model: "m",
      comparison: compareShadow(ADMIT_VERDICT, ADMIT_VERDICT),
      enforcedRevision: 3,
      shadowRevision: 7,
      timestampMs: 5,
    });
    assert.equal(e.type, "shadow");
    assert.equal(e.enforced.policyRevision, 3);
    assert.equal(e.shadow.policyRevision, 7);
    assert.equal(e.shadow.outcome, "admit");
  });
});
