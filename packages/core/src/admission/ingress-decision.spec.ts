import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PolicyInput, ResolvedPolicy } from "../policy/types.js";
import { withPolicyDefaults } from "../policy/with-defaults.js";
import { InvalidAdmissionFactsError } from "./errors.js";
import {
  decideIngress,
  estimatePromptTokensFromBytes,
  type IngressDecision,
  type IngressFacts,
  type IngressReject,
  type IngressView,
  requestKvBlocks,
} from "./ingress-decision.js";

const NOW = 1_000_000;

const baseView: IngressView = {
  globalStateAvailable: true,
  inflightRequests: 0,
  inflightKvBlocks: 0,
  liveInstances: 1,
  kvCapacityBlocks: 800, // × 1.25 overcommit = 1000 blocks
  kvBlockSize: 16,
  completionRatePerS: 10,
  kvBlockReleaseRatePerS: 0,
  predictedTtftMsByClass: undefined,
  clusterLoadAtMs: NOW,
};

/** One KV block: 10 prompt + 6 output tokens at block size 16. */
function facts(className: string, blocks = 1): IngressFacts {
  return { className, promptTokens: blocks * 16 - 6, maxTokens: 6 };
}

function policy(input: PolicyInput = {}): ResolvedPolicy {
  return withPolicyDefaults({ ...input, ingress: { maxInflight: 100, ...input.ingress } });
}

function decide(f: IngressFacts, view: Partial<IngressView>, p = policy(), nowMs = NOW): IngressDecision {
  return decideIngress(f, { ...baseView, ...view }, p, nowMs);
}

function rejected(d: IngressDecision): IngressReject {
  assert.equal(d.admitted, false, "expected a rejection");
  return d as IngressReject;
}

describe("decideIngress", () => {
  it("sheds sheddable before standard before critical under the same in-flight load", () => {
    const outcome = (inflightRequests: number) =>
      ["sheddable", "standard", "critical"].map((c) => decide(facts(c), { inflightRequests }).admitted);
    // Shares 0.7 / 0.9 / 1.0 of 100: a class is refused once the load reaches its share.
    assert.deepEqual(outcome(69), [true, true, true]);
    assert.deepEqual(outcome(70), [false, true, true]);
    assert.deepEqual(outcome(89), [false, true, true]);
    assert.deepEqual(outcome(90), [false, false, true]);
    assert.deepEqual(outcome(99), [false, false, true]);
    assert.deepEqual(outcome(100), [false, false, false]);
  });

  it("sheds in the same order under the same KV load", () => {
    const outcome = (inflightKvBlocks: number) =>
      ["sheddable", "standard", "critical"].map(
        (c) => decide(facts(c), { inflightRequests: 1, inflightKvBlocks }).admitted,
      );
    assert.deepEqual(outcome(699), [true, true, true]);
    assert.deepEqual(outcome(700), [false, true, true]);
    assert.deepEqual(outcome(900), [false, false, true]);
    assert.deepEqual(outcome(1000), [false, false, false]);
  });

  it("rejects inflight_limit exactly at the threshold, with the numbers it used", () => {
    assert.equal(decide(facts("standard"), { inflightRequests: 89 }).admitted, true);
    const r = rejected(decide(facts("standard"), { inflightRequests: 90 }));
    assert.deepEqual(r, {
      admitted: false,
      level: "ingress",
      reason: "inflight_limit",
      class: "standard",
      observed: 91,
      limit: 90,
      retryAfterMs: 100, // 1 excess request at 10/s = 100 ms
      httpStatus: 429,
    });
    // maxInflight 0 = no count limit.
    const unlimited = withPolicyDefaults({});
    assert.equal(decide(facts("sheddable"), { inflightRequests: 1e6 }, unlimited).admitted, true);
  });

  it("rejects kv_overload exactly when in-flight blocks + this request's blocks pass share × overcommit × capacity", () => {
    // critical: 1.0 × 1.25 × 800 = 1000 blocks; a 3-block request.
    assert.equal(requestKvBlocks(42, 6, 16), 3);
    assert.equal(decide(facts("critical", 3), { inflightRequests: 5, inflightKvBlocks: 997 }).admitted, true);
    const r = rejected(decide(facts("critical", 3), { inflightRequests: 5, inflightKvBlocks: 998 }));
    assert.equal(r.reason, "kv_overload");
    assert.equal(r.observed, 1001);
    assert.equal(r.limit, 1000);
    // A policy may change the overcommit.
    const tight = policy({ ingress: { kvOvercommit: 1 } });
    assert.equal(
      rejected(decide(facts("critical"), { inflightRequests: 1, inflightKvBlocks: 800 }, tight)).limit,
      800,
    );
  });

  it("rejects predicted_ttft above the class objective while the cluster load is fresh", () => {
    const view = (ms: number, atMs = NOW): Partial<IngressView> => ({
      predictedTtftMsByClass: { critical: ms, standard: ms },
      clusterLoadAtMs: atMs,
    });
    assert.equal(decide(facts("standard"), view(2000)).admitted, true);
    const r = rejected(decide(facts("standard"), view(2001)));
    assert.deepEqual([r.reason, r.observed, r.limit], ["predicted_ttft", 2001, 2000]);
    assert.equal(decide(facts("critical"), view(1001)).admitted, false);
    assert.equal(
      decide(facts("sheddable"), view(5000)).admitted,
      true,
      "no prediction for the class: no rule",
    );
    // Age exactly maxClusterLoadAgeMs (2000) is still trusted; older is skipped in static mode…
    assert.equal(decide(facts("standard"), view(9000, NOW - 2000)).admitted, false);
    assert.equal(decide(facts("standard"), view(9000, NOW - 2001)).admitted, true);
    // …and refused in closed mode.
    const closed = policy({ failMode: "closed" });
    assert.equal(rejected(decide(facts("standard"), view(9000, NOW - 2001), closed)).reason, "fail_closed");
    // The check can be switched off (simulator comparisons).
    const off = policy({ ingress: { predictedTtftCheck: false } });
    assert.equal(decide(facts("standard"), view(9000), off).admitted, true);
  });

  it("rejects no_capacity when no engine is live, unless fail-open", () => {
    const r = rejected(decide(facts("critical"), { kvCapacityBlocks: 0 }));
    assert.equal(r.reason, "no_capacity");
    assert.equal(r.retryAfterMs, 1000);
    assert.equal(
      decide(facts("critical"), { kvCapacityBlocks: 0 }, policy({ failMode: "open" })).admitted,
      true,
    );
  });

  it("computes Retry-After from the predicted drain and clamps it", () => {
    // inflight: (projected − limit) / completion rate = (105 − 100) / 10/s = 500 ms.
    assert.equal(rejected(decide(facts("critical"), { inflightRequests: 104 })).retryAfterMs, 500);
    // Rounded up to whole ms: 1 / 3/s = 333.3 ms.
    assert.equal(
      rejected(decide(facts("critical"), { inflightRequests: 100, completionRatePerS: 3 })).retryAfterMs,
      334,
    );
    // Clamped below (1 / 1000/s = 1 ms → 100) and above (nothing measured → 30 000).
    assert.equal(
      rejected(decide(facts("critical"), { inflightRequests: 100, completionRatePerS: 1000 })).retryAfterMs,
      100,
    );
    assert.equal(
      rejected(decide(facts("critical"), { inflightRequests: 100, completionRatePerS: 0 })).retryAfterMs,
      30000,
    );
    const clamps = policy({ rejection: { retryAfterMinMs: 250, retryAfterMaxMs: 400 } });
    assert.equal(rejected(decide(facts("critical"), { inflightRequests: 100 }, clamps)).retryAfterMs, 250);
    assert.equal(rejected(decide(facts("critical"), { inflightRequests: 110 }, clamps)).retryAfterMs, 400);
    // kv: excess blocks / measured release rate: (1040 − 1000) / 20 blocks/s = 2000 ms.
    const kv = { inflightRequests: 100, inflightKvBlocks: 1000, kvBlockReleaseRatePerS: 20 };
    const noCount = policy({ ingress: { maxInflight: 0 } });
    assert.equal(rejected(decide(facts("critical", 40), kv, noCount)).retryAfterMs, 2000);
    // Without a measured release rate: completions × mean blocks per request = 10/s × 10 = 100 blocks/s.
    assert.equal(
      rejected(decide(facts("critical", 40), { ...kv, kvBlockReleaseRatePerS: 0 }, noCount)).retryAfterMs,
      400,
    );
    // A request larger than the whole KV limit never drains into room.
    assert.equal(rejected(decide(facts("critical", 1001), {}, noCount)).retryAfterMs, 30000);
    // predicted_ttft: predicted − objective.
    const ttft = { predictedTtftMsByClass: { standard: 3500 } };
    assert.equal(rejected(decide(facts("standard"), ttft)).retryAfterMs, 1500);
  });

  it("uses the policy's status, per-class L1 share overrides, and the default class for unknown names", () => {
    const p = policy({ rejection: { httpStatus: 529 }, ingress: { classLimitShare: { sheddable: 0.5 } } });
    const r = rejected(decide(facts("sheddable"), { inflightRequests: 50 }, p));
    assert.deepEqual([r.httpStatus, r.limit], [529, 50]);
    assert.equal(decide(facts("sheddable"), { inflightRequests: 49 }, p).admitted, true);
    const unknown = rejected(decide(facts("platinum"), { inflightRequests: 90 }));
    assert.equal(unknown.class, "standard");
  });

  it("charges one slot per live instance while synced, and applies fail-static limits when not", () => {
    // 4 live instances: projected = 96 + 4 = 100 ≤ 100 admits, 97 + 4 does not.
    assert.equal(decide(facts("critical"), { inflightRequests: 96, liveInstances: 4 }).admitted, true);
    assert.equal(decide(facts("critical"), { inflightRequests: 97, liveInstances: 4 }).admitted, false);
    // Bus down, static: own counts vs 100 ÷ 4 = 25, completion rate scaled by ¼ as well.
    const down = { globalStateAvailable: false, liveInstances: 4 };
    assert.equal(decide(facts("critical"), { ...down, inflightRequests: 24 }).admitted, true);
    const r = rejected(decide(facts("critical"), { ...down, inflightRequests: 25 }));
    assert.deepEqual([r.limit, r.observed, r.retryAfterMs], [25, 26, 400]); // 1 / (10/s ÷ 4)
    // open: the full limit against own counts.
    assert.equal(
      decide(facts("critical"), { ...down, inflightRequests: 99 }, policy({ failMode: "open" })).admitted,
      true,
    );
  });

  it("returns one shared object for admissions and refuses invalid facts", () => {
    assert.equal(decide(facts("critical"), {}), decide(facts("standard"), {}));
    assert.throws(
      () => decide({ className: "critical", promptTokens: -1, maxTokens: 1 }, {}),
      InvalidAdmissionFactsError,
    );
    assert.throws(
      () => decide({ className: "critical", promptTokens: 1, maxTokens: Number.NaN }, {}),
      InvalidAdmissionFactsError,
    );
    assert.throws(() => decide(facts("critical"), { kvBlockSize: 0 }), /kvBlockSize/);
  });

  it("estimates text prompts at 4 body bytes per token", () => {
    assert.equal(estimatePromptTokensFromBytes(0), 0);
    assert.equal(estimatePromptTokensFromBytes(4001), 1001);
    assert.equal(estimatePromptTokensFromBytes(30, 3), 10);
    assert.throws(() => estimatePromptTokensFromBytes(-1), InvalidAdmissionFactsError);
    assert.throws(() => estimatePromptTokensFromBytes(10, 0), InvalidAdmissionFactsError);
  });
});
