import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { DEFAULT_CLASS_MIX, DEFAULT_CLASS_OBJECTIVES } from "./classes.js";
import type { AdmissionPolicy } from "./policy.js";
import { noAdmissionPolicy } from "./policy.js";
import { summarize } from "./report.js";
import { type SimulatorOptions, simulate } from "./simulator.js";
import { staticLimitPolicy } from "./static-policy.js";
import { constantStepEngine, regularTrace, traceOf } from "./test-fixtures.js";
import { buildWorkload } from "./workload.js";

function options(
  stepMs: number,
  policy: AdmissionPolicy,
  extra: Partial<SimulatorOptions> = {},
): SimulatorOptions {
  const engine = constantStepEngine(stepMs);
  return {
    createEngine: engine.createEngine,
    blockHashesOf: engine.blockHashesOf,
    engineCount: 1,
    policy,
    objectives: DEFAULT_CLASS_OBJECTIVES,
    loadDelayMs: 0,
    dispatchDelayMs: 0,
    ...extra,
  };
}

const noSpread = { spreadBucketMs: 0, seed: 1, classMix: DEFAULT_CLASS_MIX };

describe("simulate", () => {
  it("gives the hand-computed TTFT and ITL on one engine with 10 ms steps", () => {
    // One request, 100-token prompt, 4 output tokens: step 0–10 prefills and emits token 1, then three
    // decode steps emit tokens 2–4 at 20, 30, 40 ms. Dispatch delay 5 ms shifts everything by 5.
    const workload = buildWorkload(regularTrace(1, 1000, 100, 4), noSpread);
    const result = simulate(workload, options(10, noAdmissionPolicy(), { dispatchDelayMs: 5 }));
    assert.equal(result.ttftMs[0], 15);
    assert.equal(result.meanItlMs[0], 10);
    assert.equal(result.completed[0], 1);
    assert.equal(result.metObjectives[0], 1);
    assert.equal(result.endMs, 45);
    assert.equal(result.itl.count, 3);
    assert.ok(Math.abs(result.itl.quantile(0.5) - 10) < 0.1);
    assert.equal(result.computedPrefillTokens, 100);
  });

  it("queues behind a busy engine: the second request's TTFT includes the wait", () => {
    // maxNumSeqs 1: request 1 (t=0) runs steps 0–10 (first token) and 10–20 (last); request 2 arrives at
    // t=5 and can only start at 20, first token at 30 → TTFT 25.
    const engine = constantStepEngine(10, 1);
    const trace = traceOf([
      { timestampMs: 0, promptTokens: 50, outputTokens: 2 },
      { timestampMs: 5, promptTokens: 50, outputTokens: 2 },
    ]);
    const result = simulate(buildWorkload(trace, noSpread), {
      ...options(10, noAdmissionPolicy()),
      createEngine: engine.createEngine,
    });
    assert.deepEqual([...result.ttftMs], [10, 25]);
    assert.equal(result.endMs, 40);
  });

  it("runs completions due at an arrival's instant before the arrival (static limit frees the slot)", () => {
    // Request 0 completes at exactly 10 ms, request 1 arrives at 10 ms: limit 1 must admit it.
    const trace = traceOf([
      { timestampMs: 0, promptTokens: 10, outputTokens: 1 },
      { timestampMs: 10, promptTokens: 10, outputTokens: 1 },
    ]);
    const result = simulate(
      buildWorkload(trace, noSpread),
      options(10, staticLimitPolicy({ maxInflight: 1 })),
    );
    assert.deepEqual([...result.admitted], [1, 1]);
  });

  it("static policy rejects over its limit at L1 with a Retry-After", () => {
    const trace = regularTrace(6, 0, 100, 50);
    const result = simulate(
      buildWorkload(trace, noSpread),
      options(10, staticLimitPolicy({ maxInflight: 2, coldRetryAfterMs: 777 })),
    );
    assert.deepEqual([...result.admitted], [1, 1, 0, 0, 0, 0]);
    assert.deepEqual([...result.rejections], [["L1:static_inflight_limit", 4]]);
    assert.equal(result.retryAfterMs[2], 777);
    const report = summarize(result, 1, undefined);
    assert.equal(report.rejected_fraction, 0.666667);
    assert.equal(report.slo_attainment_admitted, 1);
    assert.equal(report.wasted_prefill_tokens, 0);
  });

  it("counts prompt tokens of requests that missed their objective as wasted", () => {
    // 1 s steps: TTFT 1 s meets standard's 2 s, but mean ITL 1 s misses its 100 ms.
    const result = simulate(
      buildWorkload(regularTrace(2, 10_000, 300, 3), noSpread),
      options(1000, noAdmissionPolicy()),
    );
    assert.deepEqual([...result.metObjectives], [0, 0]);
    assert.equal(result.wastedPrefillTokens, 600);
    assert.equal(summarize(result, 1, undefined).slo_attainment_admitted, 0);
  });

  it("routes to the least-loaded engine using its own routing decisions before stale snapshots arrive", () => {
    // 8 simultaneous requests, 4 engines, snapshots delayed 1 s: without counting its own decisions the
    // router would send all 8 to engine 0. Watch the engine each lands on through the policy view.
    const seen: number[][] = [];
    const spy: AdmissionPolicy = {
      name: "spy",
      admit(_r, view) {
        seen.push(view.engines.map((e) => e.believedInFlight));
        return { admit: true };
      },
    };
    const result = simulate(
      buildWorkload(regularTrace(8, 0, 100, 2), noSpread),
      options(10, spy, { engineCount: 4, loadDelayMs: 1000 }),
    );
    assert.deepEqual(seen[4], [1, 1, 1, 1]);
    assert.deepEqual(seen[7], [2, 2, 2, 1]);
    // Engines work in parallel. An idle engine starts a step on its first arrival, so the second request
    // routed to it at the same instant joins the next step: TTFT two steps.
    assert.deepEqual([...result.ttftMs], [10, 10, 10, 10, 20, 20, 20, 20]);
  });

  it("rejects late (engine level) a request the KV cache can never hold", () => {
    const trace = traceOf([{ timestampMs: 0, promptTokens: 1024 * 16 + 1, outputTokens: 1 }]);
    const result = simulate(buildWorkload(trace, noSpread), options(10, noAdmissionPolicy()));
    assert.deepEqual([...result.rejections], [["engine:request_too_long", 1]]);
    assert.equal(result.lateRejections, 1);
    assert.equal(result.admitted[0], 1);
  });

  it("shows the policy stale engine load until the snapshot arrives, but exact ingress in-flight", () => {
    // One engine, 10 ms steps, snapshots delayed 100 ms. A (t=0) finishes at 10; its snapshot arrives at 110.
    // B (t=50) therefore still sees A as in flight at the engine, while the ingress count is exact (0).
    // B finishes at 60 (snapshot at 160), so C (t=200) sees an empty engine.
    const seen: [believed: number, exact: number][] = [];
    const spy: AdmissionPolicy = {
      name: "spy",
      admit(_r, view) {
        seen.push([view.engines[0]?.believedInFlight ?? -1, view.inFlight]);
        return { admit: true };
      },
    };
    const trace = traceOf([0, 50, 200].map((t) => ({ timestampMs: t, promptTokens: 10, outputTokens: 1 })));
    simulate(buildWorkload(trace, noSpread), options(10, spy, { loadDelayMs: 100 }));
    assert.deepEqual(seen, [
      [0, 0],
      [1, 0],
      [0, 0],
    ]);
  });
});
