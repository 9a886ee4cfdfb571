import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { DEFAULT_CLASS_MIX, DEFAULT_CLASS_OBJECTIVES } from "./classes.js";
import { dynamoBusyPolicy } from "./dynamo-busy-policy.js";
import { createTimeWeightedEma, dynamoEmaPolicy } from "./dynamo-ema-policy.js";
import { createEngineSetup, type EngineSetup } from "./engine-setup.js";
import { policyContextOf } from "./experiment.js";
import type { AdmissionPolicy, ClusterView, EngineView, PolicyRequest } from "./policy.js";
import { noAdmissionPolicy } from "./policy.js";
import { summarize } from "./report.js";
import { parseSimFlags } from "./sim-flags.js";
import { type SimRunResult, simulate } from "./simulator.js";
import { type SluiceLevels, sluicePolicy } from "./sluice-policy.js";
import { constantStepEngine, traceOf } from "./test-fixtures.js";
import type { TraceRecord } from "./trace.js";
import { buildWorkload, type SimRequest } from "./workload.js";

const noSpread = { spreadBucketMs: 0, seed: 1, classMix: DEFAULT_CLASS_MIX };

function run(
  records: TraceRecord[],
  engine: EngineSetup,
  engineCount: number,
  policy: (e: EngineSetup) => AdmissionPolicy,
  blockHashesOf: EngineSetup["blockHashesOf"] = engine.blockHashesOf,
): SimRunResult {
  return simulate(buildWorkload(traceOf(records), noSpread), {
    createEngine: engine.createEngine,
    blockHashesOf,
    engineCount,
    policy: policy(engine),
    objectives: DEFAULT_CLASS_OBJECTIVES,
    loadDelayMs: 10,
    dispatchDelayMs: 0,
  });
}

const levels = (l1: boolean, l2: boolean, l3: boolean): SluiceLevels => ({ l1, l2, l3 });
const sluice = (l: SluiceLevels, engineCount: number) => (e: EngineSetup) =>
  sluicePolicy({ levels: l, context: policyContextOf({ engine: e, engineCount }) });

describe("sluice-l1 in the simulator", () => {
  it("rejects once in-flight KV blocks would pass the class's share of kv_overcommit × capacity", () => {
    // One engine of 1024 × 16-token blocks, 100 ms steps: a standard request may fill
    // floor(0.9 × 1.25 × 1024) = 1152 blocks; each request needs ceil((4000 + 200) / 16) = 263, so at most
    // 4 are in flight at once and the rest of a 10-request burst is refused with kv_overload.
    const engine = constantStepEngine(100);
    const records = Array.from({ length: 10 }, (_, i) => ({
      timestampMs: i,
      promptTokens: 4000,
      outputTokens: 200,
    }));
    const result = run(records, engine, 1, sluice(levels(true, false, false), 1));
    assert.equal(result.rejections.get("L1:kv_overload"), 6);
    assert.ok(Math.max(...result.inFlightAtArrival) <= 4);
    assert.deepEqual([...result.admitted], [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
    // Retry-After is a predicted drain clamped to the policy's bounds, never NaN.
    for (let i = 4; i < 10; i++) assert.ok((result.retryAfterMs[i] as number) >= 100);
  });
});

describe("sluice-l1l2 in the simulator", () => {
  // Requests 1 and 3 share a 1024-token prefix; the others are unique.
  const shared = (r: SimRequest): bigint[] => {
    const blocks = Math.floor(r.promptTokens / 16);
    return Array.from({ length: blocks }, (_, j) =>
      r.index % 2 === 1 && j < 64 ? BigInt(1_000_000 + j) : BigInt((r.index + 1) * 100_000 + j),
    );
  };
  const records: TraceRecord[] = [
    { timestampMs: 0, promptTokens: 200, outputTokens: 150 }, // long: pins engine 0 while 1 arrives
    { timestampMs: 5, promptTokens: 1200, outputTokens: 2 }, // prefix P → the idle engine 1
    { timestampMs: 3000, promptTokens: 200, outputTokens: 2 },
    { timestampMs: 6000, promptTokens: 1200, outputTokens: 2 }, // prefix P again, both engines idle
  ];

  it("routes a shared prefix to the worker that holds it, where least-loaded does not", () => {
    const engine = constantStepEngine(10);
    const routed = run(records, engine, 2, sluice(levels(true, true, false), 2), shared);
    const leastLoaded = run(records, engine, 2, () => noAdmissionPolicy(), shared);
    // Least-loaded sends request 3 to engine 0 (tie → lowest index), which never saw the prefix.
    assert.equal(leastLoaded.prefixCacheHitTokens, 0);
    // The router found P's 64 blocks on engine 1 through its KV events and sent request 3 there.
    assert.equal(routed.prefixCacheHitTokens, 64 * 16);
    assert.equal(summarize(routed, 1, undefined).slo_attainment_admitted, 1);
  });

  it("holds a request while every worker is busy and routes it once the prediction fits", () => {
    // 12k-token prompts, 100 ms steps. Request 1 arrives at t=1 before any load report: its predicted TTFT
    // ((12k pending + 12k own) at the default 10k tok/s = 2.4 s) is over the 2 s objective on the only
    // engine, so it is held. The engine's first snapshot (t=100, arriving at 110) reports ~82k tok/s and
    // the drain routes it. Without L2 it would have joined the engine at t=1 and shared step 2.
    const records = [
      { timestampMs: 0, promptTokens: 12_000, outputTokens: 2 },
      { timestampMs: 1, promptTokens: 12_000, outputTokens: 2 },
    ];
    const engine = constantStepEngine(100, 256, 4096);
    const result = run(records, engine, 1, sluice(levels(true, true, false), 1));
    const direct = run(records, engine, 1, () => noAdmissionPolicy());
    assert.equal(result.rejections.size, 0);
    assert.equal(result.completed[1], 1);
    assert.equal(direct.ttftMs[1], 299);
    assert.equal(result.ttftMs[1], 399, "held until t=110, then prefilled in the steps 200–400");
  });

  it("rejects with hold_timeout when nothing frees within the maximum hold time", () => {
    // 500 ms steps: request 0's first token comes at 1.5 s, after request 1's 1 s hold has expired.
    const big = (t: number): TraceRecord => ({ timestampMs: t, promptTokens: 20_000, outputTokens: 2 });
    const result = run(
      [big(0), big(1)],
      constantStepEngine(500, 256, 4096),
      1,
      sluice(levels(true, true, false), 1),
    );
    assert.equal(result.rejections.get("L2:hold_timeout"), 1);
    assert.equal(result.admitted[1], 0);
    assert.equal(result.completed[0], 1);
    assert.ok((result.retryAfterMs[1] as number) >= 100);
  });
});

describe("sluice-l3 in the simulator", () => {
  it("rejects the tail of a burst whose predicted TTFT misses the objective, and only requests that would miss", () => {
    // A burst of 40 × 8000-token prompts on one engine with the Dynamo step model: ~175 ms of prefill
    // each, so under `none` request i gets its first token at ≈ 175·(i+1) ms and the tail misses 2 s.
    const engine = createEngineSetup({ numGpuBlocks: 16384 });
    const records = Array.from({ length: 40 }, (_, i) => ({
      timestampMs: i,
      promptTokens: 8000,
      outputTokens: 20,
    }));
    const withL3 = run(records, engine, 1, sluice(levels(false, false, true), 1));
    const without = run(records, engine, 1, () => noAdmissionPolicy());
    const rejected = [...withL3.admitted].flatMap((a, i) => (a === 0 ? [i] : []));
    assert.ok(rejected.length >= 20, `rejected ${rejected.length}`);
    assert.equal(withL3.rejections.get("L3:predicted_ttft"), rejected.length);
    // The rejected requests are exactly the tail of the burst (the queue is FCFS within a class) …
    assert.deepEqual(
      rejected,
      Array.from({ length: rejected.length }, (_, k) => 40 - rejected.length + k),
    );
    // … and each of them would have missed its TTFT objective without admission control.
    const objective = DEFAULT_CLASS_OBJECTIVES.standard.ttftObjectiveMs;
    for (const i of rejected)
      assert.ok((without.ttftMs[i] as number) > objective, `request ${i} was saveable`);
    const l3 = summarize(withL3, 1, undefined);
    const none = summarize(without, 1, undefined);
    assert.ok(l3.goodput_rps >= none.goodput_rps);
    assert.ok(l3.slo_attainment_admitted > none.slo_attainment_admitted);
  });
});

describe("sluice policies are deterministic", () => {
  it("gives identical reports for the same seed", () => {
    const engine = createEngineSetup({});
    const records: TraceRecord[] = Array.from({ length: 300 }, (_, i) => ({
      timestampMs: i * 20,
      promptTokens: 500 + ((i * 7919) % 6000),
      outputTokens: 20 + ((i * 104729) % 300),
      hashIds: [i % 5, (i % 5) * 10 + 1, 1000 + i],
    }));
    const once = () =>
      JSON.stringify(
        ["sluice-l1l2l3", "sluice-l3"].map((name) =>
          summarize(
            run(records, engine, 2, (e) =>
              sluicePolicy({
                levels: name === "sluice-l3" ? levels(false, false, true) : levels(true, true, true),
                context: policyContextOf({ engine: e, engineCount: 2 }),
              }),
            ),
            1,
            undefined,
          ),
        ),
      );
    assert.equal(once(), once());
  });
});

describe("Dynamo baselines", () => {
  const view = (engines: Partial<EngineView>[]): ClusterView => ({
    inFlight: 0,
    inFlightByClass: { critical: 0, standard: 0, sheddable: 0 },
    engines: engines.map((e, index) => ({
      index,
      believedInFlight: 0,
      observedKvUsage: 0,
      observedPendingPrefillTokens: 0,
      observedAtMs: 0,
      ...e,
    })),
  });
  const request: PolicyRequest = {
    index: 0,
    requestClass: "standard",
    promptTokens: 10,
    outputTokens: 10,
    arrivalMs: 0,
  };
  const context = {
    engineCount: 2,
    numGpuBlocks: 100,
    blockSize: 16,
    maxNumSeqs: 8,
    maxNumBatchedTokens: 1000,
  };

  it("dynamo-busy rejects only when every worker is over a threshold", () => {
    const p = dynamoBusyPolicy(context, { decodeBlockThreshold: 0.85, prefillBatchFraction: 1.5 });
    assert.equal(
      p.admit(request, view([{ observedKvUsage: 0.9 }, { observedKvUsage: 0.85 }]), 0).admit,
      true,
    );
    assert.equal(
      p.admit(request, view([{ observedKvUsage: 0.9 }, { observedPendingPrefillTokens: 1501 }]), 0).admit,
      false,
    );
  });

  it("the PR #1949 time-weighted EMA weights samples by recency and decays when idle", () => {
    const ema = createTimeWeightedEma(1000);
    ema.record(100, 0);
    assert.equal(ema.read(0), 100);
    // Δt = τ: W = 1 + e^-1, α = 1/W.
    ema.record(300, 1000);
    const alpha = 1 / (1 + Math.exp(-1));
    assert.ok(Math.abs(ema.read(1000) - (alpha * 300 + (1 - alpha) * 100)) < 1e-9);
    assert.ok(Math.abs(ema.read(2000) - ema.read(1000) * Math.exp(-1)) < 1e-9);
  });

  it("dynamo-ema rejects while the TTFT average is over its threshold", () => {
    const p = dynamoEmaPolicy({ timeConstantMs: 1000, ttftThresholdMs: 2000, itlThresholdMs: 100 });
    p.onFirstToken?.({ ...request, arrivalMs: 0 }, 3000);
    const d = p.admit(request, view([{}]), 3000);
    assert.equal(d.admit, false);
    assert.equal(d.admit === false && d.reason, "dynamo_ema_ttft");
    // After ~2τ idle the average decays under the threshold: 3000 · e^-1 ≈ 1104.
    assert.equal(p.admit(request, view([{}]), 4000).admit, true);
  });
});

describe("policy flags", () => {
  it("accepts every policy name and the baselines' tunables, and names the flag on bad values", () => {
    const flags = parseSimFlags([
      "--trace",
      "t.jsonl",
      "--policy",
      "dynamo-busy,dynamo-ema,sluice-l1,sluice-l3,sluice-l1l2,sluice-l1l2l3",
      "--busy-thresholds",
      "0.9,2",
      "--ema-tau-ms",
      "5000",
      "--ema-thresholds",
      "1500,80",
    ]);
    assert.deepEqual(flags.baselines, {
      dynamoBusy: { decodeBlockThreshold: 0.9, prefillBatchFraction: 2 },
      emaTimeConstantMs: 5000,
      emaTtftThresholdMs: 1500,
      emaItlThresholdMs: 80,
    });
    assert.throws(() => parseSimFlags(["--trace", "t", "--busy-thresholds", "1.2,1"]), /--busy-thresholds/);
    assert.throws(() => parseSimFlags(["--trace", "t", "--ema-thresholds", "100"]), /--ema-thresholds/);
    assert.throws(() => parseSimFlags(["--trace", "t", "--policy", "sluice-l2"]), /sluice-l1l2l3/);
  });
});
