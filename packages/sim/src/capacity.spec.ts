import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { findCapacity } from "./capacity.js";
import { DEFAULT_CLASS_MIX } from "./classes.js";
import type { ExperimentOptions } from "./experiment.js";
import { constantStepEngine, regularTrace } from "./test-fixtures.js";

describe("findCapacity", () => {
  it("finds the hand-computed capacity of a one-engine, one-at-a-time queue", () => {
    // 100 requests, one per trace second; one engine runs one request per 100 ms step (maxNumSeqs 1,
    // one output token). At rate scale s > 10 the queue grows: request k gets its first token at
    // (k+1)·100 ms, TTFT = (k+1)·100 − k·1000/s. Attainment ≥ 99 % allows one miss, so request 98 must meet
    // the 2 s objective: 98·(100 − 1000/s) ≤ 1900 ⇔ s ≤ 1000 / (100 − 1900/98) ≈ 12.405.
    const experiment: ExperimentOptions = {
      trace: regularTrace(100, 1000, 100, 1),
      engine: constantStepEngine(100, 1),
      engineCount: 1,
      loadDelayMs: 0,
      dispatchDelayMs: 0,
      staticLimit: 1,
      workload: { seed: 1, spreadBucketMs: 0, classMix: DEFAULT_CLASS_MIX },
    };
    const exact = 1000 / (100 - 1900 / 98);
    const result = findCapacity(experiment, { startScale: 1, relativeTolerance: 0.01 });
    assert.ok(result.found);
    assert.ok(result.rateScale <= exact && result.rateScale >= exact / 1.01, `found ${result.rateScale}`);
    // Bracketing doubled from 1 until 16 failed, then bisected.
    assert.deepEqual(
      result.probes.slice(0, 5).map((p) => p.rateScale),
      [1, 2, 4, 8, 16],
    );
    assert.ok(result.goodputRps > 0);
  });

  it("reports a target that even the lightest load cannot reach", () => {
    // Every request needs 3 s of steps for its first token: TTFT objective 2 s is never met.
    const experiment: ExperimentOptions = {
      trace: regularTrace(5, 1000, 100, 1),
      engine: constantStepEngine(3000, 1),
      engineCount: 1,
      loadDelayMs: 0,
      dispatchDelayMs: 0,
      staticLimit: 1,
      workload: { seed: 1, spreadBucketMs: 0, classMix: DEFAULT_CLASS_MIX },
    };
    const result = findCapacity(experiment, { maxBracketSteps: 3 });
    assert.deepEqual(result, {
      found: false,
      reason: "infeasible_at_min_load",
      probes: result.probes,
      requiredAttainment: 0.99,
    });
    assert.equal(result.probes.length, 4);
  });

  it("with the light-load reference, requires a fraction of what 'none' attains at 1/16 of the start scale", () => {
    // Request 0 has 2 output tokens and 150 ms steps: mean ITL 150 ms > 100 ms, a miss at any load.
    // With 50 requests that one miss caps attainment at 98 %: the absolute 99 % is never reached.
    const trace = regularTrace(50, 1000, 100, 1);
    trace.records[0] = { timestampMs: 0, promptTokens: 100, outputTokens: 2 };
    const experiment: ExperimentOptions = {
      trace,
      engine: constantStepEngine(150, 1),
      engineCount: 1,
      loadDelayMs: 0,
      dispatchDelayMs: 0,
      staticLimit: 1,
      workload: { seed: 1, spreadBucketMs: 0, classMix: DEFAULT_CLASS_MIX },
    };
    const absolute = findCapacity(experiment, { startScale: 2 });
    const relative = findCapacity(experiment, { startScale: 2, reference: "light-load" });
    assert.equal(relative.lightLoad?.rateScale, 2 / 16);
    assert.equal(relative.lightLoad?.attainment, 0.98);
    assert.equal(relative.requiredAttainment, 0.99 * 0.98);
    assert.ok(!absolute.found && absolute.reason === "infeasible_at_min_load");
    // 49 of 50 must pass, so only the infeasible one may miss: the queue must not push any TTFT over 2 s.
    assert.ok(relative.found && relative.rateScale > 2, JSON.stringify(relative.probes));
  });
});
