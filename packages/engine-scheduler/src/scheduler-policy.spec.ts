import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type EngineRejection,
  type EngineShadowPolicy,
  engineDecisionOptionsFromPolicy,
  type ShadowComparison,
  withPolicyDefaults,
} from "@sluice/core";
import { createLiveEngineDecision } from "./live-decision.js";
import { createSidecarScheduler, type Waiter } from "./scheduler.js";

const optionsOf = (maxQueue: number) =>
  engineDecisionOptionsFromPolicy(withPolicyDefaults({ engine: { maxInflight: 1, maxQueue } }), {
    maxNumSeqs: 8,
  });

function harness() {
  const decision = createLiveEngineDecision(optionsOf(4));
  let shadow: EngineShadowPolicy | undefined;
  const shadows: ShadowComparison[] = [];
  const scheduler = createSidecarScheduler({
    decision,
    nowMs: () => 0,
    reevaluateIntervalMs: 1_000_000,
    kvUsage: () => 0,
    shadowPolicy: () => shadow,
    engineMaxNumSeqs: 8,
    listener: { shadow: (_id, _cls, c) => shadows.push(c) },
  });
  const log: string[] = [];
  const waiter = (id: string): Waiter => ({
    admit: () => log.push(`admit ${id}`),
    reject: (r: EngineRejection) => log.push(`reject ${id} ${r.reason}`),
    fail: (e) => log.push(`fail ${id} ${e.message}`),
  });
  const submit = (id: string) =>
    scheduler.submit({ id, className: "standard", promptTokens: 10 }, waiter(id));
  return {
    decision,
    scheduler,
    log,
    submit,
    shadows,
    setShadow: (p: EngineShadowPolicy | undefined) => {
      shadow = p;
    },
  };
}

describe("sidecar scheduler: live policy and shadow", () => {
  it("answers the queued requests a new policy refuses, exactly once", () => {
    const h = harness();
    h.submit("a");
    h.submit("b");
    h.submit("c");
    assert.deepEqual(h.log, ["admit a"]);
    h.scheduler.settleQueued(h.decision.reconfigure(optionsOf(0), 0, "standard"));
    assert.deepEqual(h.log, ["admit a", "reject b queue_full", "reject c queue_full"]);
    const c = h.scheduler.counts();
    assert.deepEqual([c.queued, c.inEngine, c.rejected], [0, 1, 2]);
    h.scheduler.settleQueued(h.decision.reconfigure(optionsOf(0), 0, "standard"));
    assert.equal(h.log.length, 3, "nothing is answered twice");
    assert.equal(h.scheduler.finish("a", "completed"), true);
    assert.equal(h.scheduler.counts().inEngine, 0);
    h.scheduler.close();
  });

  it("judges arrivals with the shadow candidate only when one exists, enforcing neither", () => {
    const h = harness();
    h.submit("a");
    assert.equal(h.shadows.length, 0);
    h.setShadow(withPolicyDefaults({ engine: { maxInflight: 1, maxQueue: 0 } }));
    const result = h.submit("b");
    assert.equal(result.admit, true, "queued under the enforcing policy");
    assert.equal(h.shadows.length, 1);
    assert.deepEqual(
      [h.shadows[0]?.enforced.outcome, h.shadows[0]?.shadow.outcome, h.shadows[0]?.shadow.reason],
      ["admit", "reject", "queue_full"],
    );
    h.setShadow(undefined);
    h.submit("c");
    assert.equal(h.shadows.length, 1);
    // b and c stay queued: stop the re-check timer so the test process can end.
    h.scheduler.close();
  });
});
