import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { DEFAULT_CLASS_MIX, DEFAULT_CLASS_OBJECTIVES } from "./classes.js";
import { dynamoEmaPolicy } from "./dynamo-ema-policy.js";
import { createEngineSetup, type EngineSetup } from "./engine-setup.js";
import { SimUsageError } from "./errors.js";
import { policyContextOf } from "./experiment.js";
import { estimateFalseRejections, evaluateRejection, wilsonInterval } from "./false-rejection.js";
import type { AdmissionPolicy } from "./policy.js";
import { summarize } from "./report.js";
import { type SimulatorOptions, simulate } from "./simulator.js";
import { sluicePolicy } from "./sluice-policy.js";
import { staticLimitPolicy } from "./static-policy.js";
import { constantStepEngine, traceOf } from "./test-fixtures.js";
import type { TraceRecord } from "./trace.js";
import { buildWorkload, type Workload } from "./workload.js";

const noSpread = { spreadBucketMs: 0, seed: 1, classMix: DEFAULT_CLASS_MIX };

function optionsFor(
  engine: EngineSetup,
  policy: () => AdmissionPolicy,
  extra: Partial<SimulatorOptions> = {},
): () => SimulatorOptions {
  return () => ({
    createEngine: engine.createEngine,
    blockHashesOf: engine.blockHashesOf,
    engineCount: 1,
    policy: policy(),
    objectives: DEFAULT_CLASS_OBJECTIVES,
    loadDelayMs: 0,
    dispatchDelayMs: 0,
    ...extra,
  });
}

const workloadOf = (records: TraceRecord[]): Workload => buildWorkload(traceOf(records), noSpread);

// Static limit 1 on one engine with 10 ms steps: A (t=0, 3 tokens) runs 0–30; B (t=5, 10 tokens) is
// rejected while A is in flight; C (t=35) finds the engine empty and is admitted.
const abc: TraceRecord[] = [
  { timestampMs: 0, promptTokens: 50, outputTokens: 3 },
  { timestampMs: 5, promptTokens: 50, outputTokens: 10 },
  { timestampMs: 35, promptTokens: 50, outputTokens: 3 },
];
const static1 = () => staticLimitPolicy({ maxInflight: 1 });

describe("force-admit hook", () => {
  it("admits the one request past every level, counts it in flight, and leaves everything else alone", () => {
    const engine = constantStepEngine(10);
    const base = simulate(workloadOf(abc), optionsFor(engine, static1)());
    assert.deepEqual([...base.admitted], [1, 0, 1]);
    assert.equal(base.forcedRequest, -1);
    const forced = simulate(workloadOf(abc), optionsFor(engine, static1, { forceAdmitRequest: 1 })());
    assert.equal(forced.forcedRequest, 1);
    // B runs (first token at 20 after A's step 10–20 … it shares steps with A) and meets its objectives;
    // C now sees B in flight and is rejected by the limit: admitting B cost C.
    assert.deepEqual([...forced.admitted], [1, 1, 0]);
    assert.equal(forced.completed[1], 1);
    assert.equal(forced.metObjectives[1], 1);
    assert.equal(forced.rejections.get("L1:static_inflight_limit"), 1);
    assert.equal(forced.rejectionKey[2], "L1:static_inflight_limit");
    assert.equal(forced.rejectionKey[1], undefined);
  });

  it("bypasses L1, L2 and L3 of the full system without breaking their accounting", () => {
    // 40 × 8000-token burst on one engine: sluice-l1l2l3 rejects the tail. Forcing the last request in
    // must not stall the run or leak a slot (simulate throws on a request left in flight).
    const engine = createEngineSetup({ numGpuBlocks: 16384 });
    const records = Array.from({ length: 40 }, (_, i) => ({
      timestampMs: i,
      promptTokens: 8000,
      outputTokens: 20,
    }));
    const policy = () =>
      sluicePolicy({
        levels: { l1: true, l2: true, l3: true },
        context: policyContextOf({ engine, engineCount: 1 }),
      });
    const base = simulate(workloadOf(records), { ...optionsFor(engine, policy)(), loadDelayMs: 10 });
    assert.equal(base.admitted[39], 0);
    const forced = simulate(workloadOf(records), {
      ...optionsFor(engine, policy, { forceAdmitRequest: 39 })(),
      loadDelayMs: 10,
    });
    assert.equal(forced.admitted[39], 1);
    assert.equal(forced.completed[39], 1);
    // It enters the engine's own FCFS queue ahead of the L3 sidecar's queue, so it gets its first token in
    // time — at the expense of a request L3 was holding, which the counterfactual counts: not a false
    // rejection.
    const sample = evaluateRejection(
      workloadOf(records),
      39,
      () => ({ ...optionsFor(engine, policy)(), loadDelayMs: 10 }),
      { warmupMs: 1000, horizonMs: 1000 },
    );
    assert.ok(sample !== undefined);
    assert.equal(sample.forcedMet, true);
    assert.ok(sample.othersWorse >= 1);
    assert.equal(sample.strict, false);
    assert.equal(sample.net, false);
  });

  it("refuses an index outside the workload", () => {
    const engine = constantStepEngine(10);
    assert.throws(
      () => simulate(workloadOf(abc), optionsFor(engine, static1, { forceAdmitRequest: 3 })()),
      SimUsageError,
    );
  });
});

describe("false-rejection counterfactual", () => {
  it("is not a false rejection when admitting it costs another request its objectives", () => {
    const engine = constantStepEngine(10);
    const sample = evaluateRejection(workloadOf(abc), 1, optionsFor(engine, static1), {
      warmupMs: 1000,
      horizonMs: 1000,
    });
    assert.ok(sample !== undefined);
    assert.equal(sample.forcedMet, true);
    assert.equal(sample.othersWorse, 1);
    assert.equal(sample.strict, false);
    assert.equal(sample.net, false);
  });

  it("is a false rejection when the request would have met its objectives and cost nobody", () => {
    // Without C, B's rejection was needless: B would have run alongside A and both meet their objectives.
    const engine = constantStepEngine(10);
    const ab = abc.slice(0, 2);
    const options = optionsFor(engine, static1);
    const full = simulate(workloadOf(ab), options());
    const estimate = estimateFalseRejections(workloadOf(ab), full, options, {
      sampleSize: 5,
      warmupMs: 1000,
      horizonMs: 1000,
    });
    assert.equal(estimate.rejected, 1);
    assert.equal(estimate.samples.length, 1);
    assert.deepEqual(
      [estimate.strict.count, estimate.net.count, estimate.forcedMet.count, estimate.notReproduced],
      [1, 1, 1, 0],
    );
  });

  it("gives the textbook Wilson interval", () => {
    const [lo0, hi0] = wilsonInterval(0, 30);
    assert.equal(lo0, 0);
    assert.ok(Math.abs(hi0 - 0.1135) < 5e-4, String(hi0));
    const [lo, hi] = wilsonInterval(15, 30);
    assert.ok(Math.abs(lo - 0.3315) < 5e-4 && Math.abs(hi - 0.6685) < 5e-4, `${lo} ${hi}`);
    assert.deepEqual(wilsonInterval(0, 0), [0, 1]);
  });
});

describe("retry-after hook", () => {
  it("retries each rejected request once at rejection + Retry-After and reports whether it got in", () => {
    // B is rejected at t=5 with the cold Retry-After (1000 ms: no completion seen yet), arrives again at
    // 1005 when the engine is empty, and is admitted. C is admitted as before; retries are not counted as
    // rejections of the trace.
    const engine = constantStepEngine(10);
    const result = simulate(workloadOf(abc), optionsFor(engine, static1, { retryRejected: true })());
    assert.deepEqual([...result.retries.of], [1]);
    assert.deepEqual([...result.retries.atMs], [1005]);
    assert.deepEqual([...result.retries.admitted], [1]);
    assert.deepEqual([...result.retries.metObjectives], [1]);
    assert.equal(result.admitted.length, 3);
    assert.equal(result.rejections.get("L1:static_inflight_limit"), 1);
    const report = summarize(result, 1, undefined);
    assert.equal(report.retries, 1);
    assert.equal(report.retry_after_accuracy, 1);
    assert.equal(report.retry_met_fraction, 1);
  });

  it("makes no retry when the policy gives no Retry-After", () => {
    const engine = constantStepEngine(10);
    // dynamo-ema with a tiny TTFT threshold rejects once a first token was seen, without Retry-After.
    const ema = () => dynamoEmaPolicy({ timeConstantMs: 10_000, ttftThresholdMs: 1, itlThresholdMs: 1000 });
    const result = simulate(workloadOf(abc), optionsFor(engine, ema, { retryRejected: true })());
    assert.ok([...result.admitted].includes(0));
    assert.equal(result.retries.of.length, 0);
    assert.equal(summarize(result, 1, undefined).retry_after_accuracy, null);
  });
});

describe("class mix", () => {
  it("assigns classes by the seeded mix and reports each class", () => {
    const records = Array.from({ length: 2000 }, (_, i) => ({
      timestampMs: i * 50,
      promptTokens: 100,
      outputTokens: 4,
    }));
    const mix = { critical: 0.2, standard: 0.6, sheddable: 0.2 };
    const build = (seed: number) =>
      buildWorkload(traceOf(records), { spreadBucketMs: 0, seed, classMix: mix }).requests.map(
        (r) => r.requestClass,
      );
    const classes = build(7);
    assert.deepEqual(classes, build(7));
    assert.notDeepEqual(classes, build(8));
    const share = (c: string) => classes.filter((k) => k === c).length / classes.length;
    assert.ok(Math.abs(share("critical") - 0.2) < 0.04, String(share("critical")));
    assert.ok(Math.abs(share("sheddable") - 0.2) < 0.04, String(share("sheddable")));
    const engine = constantStepEngine(10);
    const workload = buildWorkload(traceOf(records), { spreadBucketMs: 0, seed: 7, classMix: mix });
    const report = summarize(simulate(workload, optionsFor(engine, static1)()), 1, undefined);
    assert.deepEqual(Object.keys(report.by_class).sort(), ["critical", "sheddable", "standard"]);
    const total = Object.values(report.by_class).reduce((s, c) => s + c.requests, 0);
    assert.equal(total, 2000);
    assert.equal(report.by_class.critical?.requests, classes.filter((k) => k === "critical").length);
    // Unloaded (one 4-token request every 50 ms): every class is admitted and meets its objectives.
    for (const c of Object.values(report.by_class)) {
      assert.equal(c.rejected_fraction, 0);
      assert.equal(c.slo_attainment_admitted, 1);
    }
  });
});
