import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { engineDecisionOptionsFromPolicy, withPolicyDefaults } from "@sluice/core";
import { createLiveEngineDecision } from "./live-decision.js";

const optionsOf = (engine: { maxInflight: number; maxQueue: number }) =>
  engineDecisionOptionsFromPolicy(withPolicyDefaults({ engine }), { maxNumSeqs: 8 });

const arrival = (id: string, className = "standard") => ({ id, className, promptTokens: 10 });

describe("live engine decision", () => {
  it("moves queued requests to the new generation and lets a larger limit release them", () => {
    const d = createLiveEngineDecision(optionsOf({ maxInflight: 1, maxQueue: 4 }));
    for (const id of ["a", "b", "c"]) assert.equal(d.offer(arrival(id), 0).admit, true);
    assert.equal(d.nextAdmission(0, { kvUsage: 0 }).kind, "admit");
    assert.equal(d.nextAdmission(0, { kvUsage: 0 }).kind, "idle");
    const out = d.reconfigure(optionsOf({ maxInflight: 3, maxQueue: 4 }), 1, "standard");
    assert.deepEqual(out, { rejected: [], failed: [] });
    assert.equal(d.generation, 1);
    assert.equal(d.snapshot().inEngineLimit, 3);
    // "a" still counts: two more fit, not three.
    assert.equal(d.nextAdmission(1, { kvUsage: 0 }).kind, "admit");
    assert.equal(d.nextAdmission(1, { kvUsage: 0 }).kind, "admit");
    assert.equal(d.nextAdmission(1, { kvUsage: 0 }).kind, "idle");
    assert.equal(d.snapshot().inEngine, 3);
    assert.equal(d.onFinished("a"), true, "the old generation's request ends where it was admitted");
    assert.equal(d.onFinished("a"), false);
    assert.equal(d.snapshot().inEngine, 2);
    assert.equal(d.cancel("b"), true);
    assert.equal(d.onFinished("c"), true);
    assert.equal(d.snapshot().inEngine, 0);
  });

  it("re-judges queued requests under stricter limits and keeps old in-engine requests counted", () => {
    const d = createLiveEngineDecision(optionsOf({ maxInflight: 2, maxQueue: 4 }));
    for (const id of ["a", "b", "c", "e"]) assert.equal(d.offer(arrival(id), 0).admit, true);
    assert.equal(d.nextAdmission(0, { kvUsage: 0 }).kind, "admit");
    assert.equal(d.nextAdmission(0, { kvUsage: 0 }).kind, "admit");
    const out = d.reconfigure(optionsOf({ maxInflight: 1, maxQueue: 0 }), 1, "standard");
    assert.equal(out.rejected.length, 2, "nothing may queue any more");
    for (const r of out.rejected) assert.equal(r.rejection.reason, "queue_full");
    assert.equal(d.snapshot().queued, 0);
    assert.equal(d.snapshot().inEngine, 2);
    const refused = d.offer(arrival("f"), 2);
    assert.equal(refused.admit, false, "two old requests fill the new capacity of one");
    if (!refused.admit)
      assert.deepEqual([refused.rejection.reason, refused.rejection.observed], ["queue_full", 2]);
    d.onFinished("a");
    assert.equal(d.offer(arrival("f"), 2).admit, false);
    d.onFinished("b");
    assert.equal(d.offer(arrival("f"), 2).admit, true);
    assert.equal(d.nextAdmission(2, { kvUsage: 0 }).kind, "admit");
  });

  it("judges requests of a class the new policy dropped as its default class", () => {
    const d = createLiveEngineDecision(optionsOf({ maxInflight: 1, maxQueue: 4 }));
    d.offer(arrival("a"), 0);
    d.nextAdmission(0, { kvUsage: 0 });
    d.offer(arrival("s", "sheddable"), 0);
    const policy = withPolicyDefaults({
      classes: [{ name: "gold", priority: 10, ttftObjectiveMs: 5000, itlObjectiveMs: 100, limitShare: 1 }],
      defaultClass: "gold",
      engine: { maxInflight: 1, maxQueue: 4 },
    });
    const out = d.reconfigure(engineDecisionOptionsFromPolicy(policy, { maxNumSeqs: 8 }), 1, "gold");
    assert.deepEqual(out, { rejected: [], failed: [] });
    assert.equal(d.snapshot().queued, 1);
    d.onFinished("a");
    const release = d.nextAdmission(2, { kvUsage: 0 });
    assert.equal(release.kind === "admit" && release.className, "gold");
  });
});
