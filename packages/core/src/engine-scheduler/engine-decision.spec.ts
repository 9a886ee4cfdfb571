import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { manualClock } from "../clock.js";
import { createEngineModel } from "../engine/engine-model.js";
import type { ClassObjectives } from "../policy/types.js";
import {
  createEngineDecision,
  type EngineDecision,
  type EngineDecisionOptions,
  engineDecisionOptionsFromPolicy,
} from "./engine-decision.js";
import { DuplicateRequestIdError, EngineSchedulerConfigError, InvalidSchedulerInputError } from "./errors.js";

const critical: ClassObjectives = {
  name: "critical",
  priority: 300,
  ttftObjectiveMs: 1000,
  itlObjectiveMs: 50,
  limitShare: 1,
};
const standard: ClassObjectives = {
  name: "standard",
  priority: 200,
  ttftObjectiveMs: 1000,
  itlObjectiveMs: 100,
  limitShare: 1,
};
const sheddable: ClassObjectives = {
  name: "sheddable",
  priority: 100,
  ttftObjectiveMs: 10_000,
  itlObjectiveMs: 200,
  limitShare: 0.5,
};

/**
 * Round numbers: prefill costs exactly 1 ms per uncached token with no fixed part, decode 30 ms + 5 ms
 * per running sequence, margin 50 ms (so the TTFT limit of critical/standard is 950 ms).
 */
function decision(overrides: Partial<EngineDecisionOptions> = {}): EngineDecision {
  return createEngineDecision({
    classes: [critical, standard, sheddable],
    engine: { maxInflight: 1, maxQueue: 64, maxQueueMs: 0, ttftMarginMs: 50 },
    retryAfterMinMs: 100,
    retryAfterMaxMs: 30_000,
    engineMaxNumSeqs: 256,
    models: {
      prefillSeedFixedMs: 0,
      prefillSeedTokensPerS: 1000,
      decodeSeedBaseMs: 30,
      decodeSeedMsPer64Seqs: 5 * 64,
      decodeSeedKvLinearMs: 0,
      decodeSeedKvQuadraticMs: 0,
    },
    ...overrides,
  });
}
const facts = { kvUsage: 0 };

/** Fills the single engine slot with a 100-token request whose first token has not come yet. */
function withBusyEngine(d: EngineDecision, nowMs = 0) {
  assert.equal(d.offer({ id: "running", className: "critical", promptTokens: 100 }, nowMs).admit, true);
  assert.equal(d.nextAdmission(nowMs, facts).kind, "admit");
}

describe("L3 decision: predicted TTFT", () => {
  it("rejects on arrival exactly when one more queued request pushes the prediction over the limit", () => {
    const d = decision();
    withBusyEngine(d);
    // Each queued request: 100 pending in the engine + 100 per request ahead + its own 50 tokens.
    for (let k = 0; k <= 8; k++) {
      const r = d.offer({ id: `q${k}`, className: "critical", promptTokens: 50 }, 0);
      assert.deepEqual(r, { admit: true, predictedTtftMs: 150 + 50 * k }, `q${k}`);
    }
    // Same shape but 100-token requests, so the 8th one ahead lands exactly on the limit.
    const e = decision();
    withBusyEngine(e);
    for (let k = 0; k < 8; k++) e.offer({ id: `q${k}`, className: "critical", promptTokens: 100 }, 0);
    const atLimit = e.offer({ id: "at-limit", className: "critical", promptTokens: 50 }, 0);
    assert.deepEqual(atLimit, { admit: true, predictedTtftMs: 950 }, "equal to the limit is admitted");
    const over = e.offer({ id: "over", className: "critical", promptTokens: 50 }, 0);
    assert.deepEqual(over, {
      admit: false,
      rejection: {
        level: "engine",
        reason: "predicted_ttft",
        class: "critical",
        observed: 1000,
        limit: 950,
        retryAfterMs: 100, // 50 ms of excess, clamped up to the policy minimum
      },
    });
    assert.equal(e.snapshot().queued, 9, "the rejected request was not queued");
  });

  it("a higher-priority arrival flips a queued request on reevaluate", () => {
    const d = decision();
    withBusyEngine(d);
    for (let k = 0; k < 7; k++) d.offer({ id: `s${k}`, className: "standard", promptTokens: 100 }, 0);
    // Last standard request: 100 engine + 700 ahead + 100 own = 900 ≤ 950.
    assert.deepEqual(d.offer({ id: "victim", className: "standard", promptTokens: 100 }, 0), {
      admit: true,
      predictedTtftMs: 900,
    });
    assert.deepEqual(d.reevaluate(0), []);
    // A critical request goes ahead of every standard one: 100 + 100 = 200 for itself…
    assert.deepEqual(d.offer({ id: "vip", className: "critical", promptTokens: 100 }, 0), {
      admit: true,
      predictedTtftMs: 200,
    });
    // …and the last standard request now waits 100 ms more: 1000 > 950.
    const rejected = d.reevaluate(0);
    assert.deepEqual(
      rejected.map((r) => [r.id, r.rejection.reason, r.rejection.observed, r.rejection.limit]),
      [["victim", "predicted_ttft", 1000, 950]],
    );
    assert.equal(d.snapshot().queued, 8);
    assert.deepEqual(d.reevaluate(0), [], "a rejection is reported once");
  });

  it("rejects a queued request as soon as time spent waiting pushes it over", () => {
    const d = decision();
    withBusyEngine(d);
    // 100 engine + 500 ahead + 100 own = 700 predicted at arrival, so 250 ms of waiting is the slack.
    for (let k = 0; k < 5; k++) d.offer({ id: `a${k}`, className: "sheddable", promptTokens: 100 }, 0);
    assert.deepEqual(d.offer({ id: "late", className: "critical", promptTokens: 100 }, 0), {
      admit: true,
      predictedTtftMs: 200,
    });
    const clock = manualClock(0);
    for (let k = 0; k < 5; k++) d.offer({ id: `c${k}`, className: "critical", promptTokens: 100 }, 0);
    // c4: 100 engine + 500 ahead (late, c0..c3) + 100 own = 700 at t = 0. The engine works off its
    // 100 pending tokens at the learned 1 ms/token by t = 100, so from then on c4 predicts t + 600.
    clock.set(250);
    assert.deepEqual(d.reevaluate(clock.nowMs()), [], "250 + 600 is within the limit");
    clock.set(350);
    assert.deepEqual(d.reevaluate(clock.nowMs()), [], "350 + 600 = 950 is still within the limit");
    clock.set(351);
    const rejected = d.reevaluate(clock.nowMs());
    assert.deepEqual(
      rejected.map((r) => [r.id, r.rejection.reason, r.rejection.observed]),
      [["c4", "predicted_ttft", 951]],
    );
  });

  it("counts the engine's progress through its pending prefill at the learned rate", () => {
    const d = decision({ engine: { maxInflight: 4, maxQueue: 64, maxQueueMs: 0, ttftMarginMs: 50 } });
    // A 600-token prompt enters the idle engine at t = 0 (1 ms/token, no fixed part).
    d.offer({ id: "long", className: "sheddable", promptTokens: 600 }, 0);
    assert.equal(d.nextAdmission(0, facts).kind, "admit");
    const predicted = (id: string, nowMs: number) => {
      const r = d.offer({ id, className: "sheddable", promptTokens: 100 }, nowMs);
      assert.ok(r.admit);
      d.cancel(id);
      return r.predictedTtftMs;
    };
    assert.equal(predicted("p0", 0), 700, "all 600 tokens ahead, then its own 100");
    assert.equal(predicted("p1", 250), 450, "250 ms in, 350 tokens are left");
    assert.equal(predicted("p2", 900), 100, "never less than nothing ahead");
    // A second prompt enters at 300 behind the rest of the first: 300 + 200 tokens ahead of a newcomer.
    d.offer({ id: "second", className: "sheddable", promptTokens: 200 }, 300);
    assert.equal(d.nextAdmission(300, facts).kind, "admit");
    assert.equal(predicted("p3", 300), 600);
    // The first prompt's first token at 400 (later than the rate said; the model learns from it): only
    // the second is left, and the engine's progress on it counts from this first token.
    d.onFirstToken("long", 400);
    const m = d.models;
    assert.ok(Math.abs(predicted("p4", 400) - m.prefillMs(200 + 100)) < 1e-9);
    const left = 200 - 50 / m.prefillMsPerToken();
    assert.ok(Math.abs(predicted("p5", 450) - m.prefillMs(left + 100)) < 1e-9);
    assert.equal(d.snapshot().pendingPrefillTokens, 200, "the published pending work stays exact");
  });

  it("adds the wait for engine slots, paced by the learned release interval", () => {
    const d = decision({
      engine: { maxInflight: 1, maxQueue: 8, maxQueueMs: 0, ttftMarginMs: 50 },
      models: { prefillSeedFixedMs: 0, prefillSeedTokensPerS: 1e9 },
    });
    for (const id of ["a", "b", "c", "d"]) d.offer({ id, className: "sheddable", promptTokens: 10 }, 0);
    assert.equal(d.nextAdmission(0, facts).kind, "admit");
    d.onFinished("a");
    assert.equal(d.nextAdmission(100, facts).kind, "admit", "b: the queue stayed non-empty for 100 ms");
    assert.equal(d.snapshot().models.slotReleaseIntervalMs, 100);
    // e waits for c's and d's turns and then its own: 3 releases.
    const r = d.offer({ id: "e", className: "sheddable", promptTokens: 10 }, 100);
    assert.equal(r.admit && Math.round(r.predictedTtftMs), 300);
  });

  it("counts upstream time against the objective and excludes cached prefix tokens", () => {
    const d = decision();
    // Empty engine, free slot: only the request's own uncached prefill counts.
    assert.deepEqual(
      d.offer(
        { id: "a", className: "critical", promptTokens: 1000, cachedTokens: 900, upstreamElapsedMs: 300 },
        0,
      ),
      { admit: true, predictedTtftMs: 400 },
    );
    const r = d.offer({ id: "b", className: "critical", promptTokens: 1000, upstreamElapsedMs: 300 }, 0);
    assert.equal(r.admit, false);
    assert.equal(!r.admit && r.rejection.observed, 300 + 100 + 1000, "waits behind a's 100 uncached tokens");
  });
});

describe("L3 decision: queue limits", () => {
  it("rejects with queue_timeout once max_queue_ms has passed", () => {
    const d = decision({ engine: { maxInflight: 1, maxQueue: 64, maxQueueMs: 200, ttftMarginMs: 50 } });
    withBusyEngine(d);
    d.offer({ id: "waiting", className: "sheddable", promptTokens: 10 }, 0);
    assert.deepEqual(d.reevaluate(200), []);
    assert.deepEqual(d.reevaluate(201), [
      {
        id: "waiting",
        rejection: {
          level: "engine",
          reason: "queue_timeout",
          class: "sheddable",
          observed: 201,
          limit: 200,
          retryAfterMs: 100,
        },
      },
    ]);
    assert.equal(d.snapshot().queued, 0);
  });

  it("max_queue_ms 0 means the class's TTFT objective", () => {
    const d = decision({
      engine: { maxInflight: 1, maxQueue: 64, maxQueueMs: 0, ttftMarginMs: 0 },
      models: { prefillSeedFixedMs: 0, prefillSeedTokensPerS: 1e9 },
    });
    withBusyEngine(d);
    d.offer({ id: "w", className: "sheddable", promptTokens: 10 }, 0);
    assert.deepEqual(d.reevaluate(9_950), [], "well inside 10 s");
    const r = d.reevaluate(10_001);
    assert.equal(r.length, 1);
    assert.equal(r[0]!.rejection.reason, "queue_timeout");
    assert.equal(r[0]!.rejection.limit, 10_000);
  });

  it("bounds the sidecar at N + Q overall, lower shares first, with Retry-After from the drain", () => {
    const d = decision({ engine: { maxInflight: 1, maxQueue: 4, maxQueueMs: 0, ttftMarginMs: 50 } });
    withBusyEngine(d); // 1 in the engine
    // sheddable: share 0.5 → 1 + 2 = 3 requests in the sidecar.
    assert.equal(d.offer({ id: "s1", className: "sheddable", promptTokens: 100 }, 0).admit, true);
    assert.equal(d.offer({ id: "s2", className: "sheddable", promptTokens: 100 }, 0).admit, true);
    const full = d.offer({ id: "s3", className: "sheddable", promptTokens: 100 }, 0);
    assert.deepEqual(full, {
      admit: false,
      rejection: {
        level: "engine",
        reason: "queue_full",
        class: "sheddable",
        observed: 3,
        limit: 3,
        // 100 pending in the engine + 200 queued ahead, at 1 ms per token.
        retryAfterMs: 300,
      },
    });
    // critical: share 1 → 1 + 4 = 5.
    assert.equal(d.offer({ id: "c1", className: "critical", promptTokens: 10 }, 0).admit, true);
    assert.equal(d.offer({ id: "c2", className: "critical", promptTokens: 10 }, 0).admit, true);
    const critFull = d.offer({ id: "c3", className: "critical", promptTokens: 10 }, 0);
    assert.equal(!critFull.admit && critFull.rejection.reason, "queue_full");
    assert.equal(
      !critFull.admit && critFull.rejection.retryAfterMs,
      120,
      "only the work ahead of a critical request",
    );
    // A cancelled request frees its place at once.
    assert.equal(d.cancel("s1"), true);
    assert.equal(d.offer({ id: "c3", className: "critical", promptTokens: 10 }, 0).admit, true);
  });

  it("with max_queue 0 requests only pass straight into free slots", () => {
    const d = decision({ engine: { maxInflight: 2, maxQueue: 0, maxQueueMs: 0, ttftMarginMs: 50 } });
    assert.equal(d.offer({ id: "a", className: "critical", promptTokens: 10 }, 0).admit, true);
    assert.equal(d.offer({ id: "b", className: "critical", promptTokens: 10 }, 0).admit, true);
    const c = d.offer({ id: "c", className: "critical", promptTokens: 10 }, 0);
    assert.equal(!c.admit && c.rejection.reason, "queue_full");
  });
});

describe("L3 decision: engine slots and the ITL guard", () => {
  it("releases in priority order, only into free slots", () => {
    const d = decision({ engine: { maxInflight: 2, maxQueue: 8, maxQueueMs: 0, ttftMarginMs: 50 } });
    d.offer({ id: "shed", className: "sheddable", promptTokens: 10 }, 0);
    d.offer({ id: "std", className: "standard", promptTokens: 10 }, 0);
    d.offer({ id: "crit", className: "critical", promptTokens: 10 }, 0);
    assert.deepEqual(d.nextAdmission(0, facts), { kind: "admit", id: "crit", className: "critical" });
    assert.deepEqual(d.nextAdmission(0, facts), { kind: "admit", id: "std", className: "standard" });
    assert.deepEqual(d.nextAdmission(0, facts), { kind: "idle" }, "no free slot");
    assert.equal(d.onFinished("crit"), true);
    assert.equal(d.onFinished("crit"), false, "a slot is released once");
    assert.deepEqual(d.nextAdmission(10, facts), { kind: "admit", id: "shed", className: "sheddable" });
    assert.deepEqual(d.nextAdmission(10, facts), { kind: "idle" }, "queue empty");
  });

  it("holds while the batch would exceed the tightest running ITL objective, then releases", () => {
    // Decode ms = 30 + 5·batch: critical (50 ms) allows 4 in the batch, standard (100 ms) 14. Prompts are
    // fully cached so no prefill chunk enters the prediction (that part has its own test below).
    const d = decision({ engine: { maxInflight: 32, maxQueue: 8, maxQueueMs: 0, ttftMarginMs: 50 } });
    for (let i = 0; i < 5; i++)
      d.offer({ id: `c${i}`, className: "critical", promptTokens: 1, cachedTokens: 1 }, 0);
    for (let i = 0; i < 4; i++) assert.equal(d.nextAdmission(0, facts).kind, "admit");
    assert.deepEqual(d.nextAdmission(0, facts), {
      kind: "hold",
      reason: "itl_guard",
      id: "c4",
      class: "critical",
      observed: 55,
      limit: 50,
    });
    assert.equal(d.snapshot().queued, 1, "a hold leaves the request queued");
    d.onFinished("c0");
    assert.deepEqual(d.nextAdmission(100, facts), { kind: "admit", id: "c4", className: "critical" });

    // Standard requests alone may build a larger batch, but a running critical one caps it at 50 ms.
    const s = decision({ engine: { maxInflight: 32, maxQueue: 32, maxQueueMs: 0, ttftMarginMs: 50 } });
    for (let i = 0; i < 16; i++)
      s.offer({ id: `s${i}`, className: "standard", promptTokens: 1, cachedTokens: 1 }, 0);
    let admitted = 0;
    while (s.nextAdmission(0, facts).kind === "admit") admitted++;
    assert.equal(admitted, 14, "30 + 5·14 = 100 ms");
  });

  it("never holds an empty engine, so a too-slow model cannot starve the queue", () => {
    const d = decision({
      engine: { maxInflight: 8, maxQueue: 8, maxQueueMs: 0, ttftMarginMs: 50 },
      models: { decodeSeedBaseMs: 500, prefillSeedFixedMs: 0, prefillSeedTokensPerS: 1000 },
    });
    d.offer({ id: "a", className: "critical", promptTokens: 1 }, 0);
    d.offer({ id: "b", className: "critical", promptTokens: 1 }, 0);
    assert.equal(d.nextAdmission(0, facts).kind, "admit", "empty engine: admitted although 500 ms > 50 ms");
    assert.equal(d.nextAdmission(0, facts).kind, "hold");
    d.onFinished("a");
    assert.deepEqual(d.nextAdmission(100, facts), { kind: "admit", id: "b", className: "critical" });
  });

  it("counts the newcomer's KV in the predicted ITL when the engine size is known", () => {
    const d = decision({
      engine: { maxInflight: 8, maxQueue: 8, maxQueueMs: 0, ttftMarginMs: 50 },
      engineKvTotalTokens: 10_000,
      models: {
        decodeSeedBaseMs: 20,
        decodeSeedMsPer64Seqs: 0,
        decodeSeedKvLinearMs: 40,
        decodeSeedKvQuadraticMs: 0,
      },
    });
    d.offer({ id: "a", className: "critical", promptTokens: 10 }, 0);
    // Fully cached: its KV counts, its prefill is nil (and "a" has its first token, so none is pending).
    d.offer({ id: "big", className: "critical", promptTokens: 5000, cachedTokens: 5000 }, 0);
    assert.equal(d.nextAdmission(0, facts).kind, "admit");
    d.onFirstToken("a", 0);
    // 20 + 40 · (0.3 + 0.5) = 52 > 50.
    const r = d.nextAdmission(0, { kvUsage: 0.3 });
    assert.equal(r.kind, "hold");
    assert.equal(r.kind === "hold" && Math.round(r.observed), 52);
    assert.equal(d.nextAdmission(0, { kvUsage: 0.2 }).kind, "admit", "20 + 40 · 0.7 = 48");
  });
});

describe("L3 decision: bookkeeping and the prediction audit", () => {
  it("feeds first tokens to the prefill model and audits the prediction", () => {
    const d = decision({ engine: { maxInflight: 4, maxQueue: 8, maxQueueMs: 0, ttftMarginMs: 50 } });
    assert.deepEqual(d.offer({ id: "a", className: "critical", promptTokens: 200 }, 0), {
      admit: true,
      predictedTtftMs: 200,
    });
    assert.equal(d.nextAdmission(10, facts).kind, "admit");
    assert.equal(d.snapshot().pendingPrefillTokens, 200);
    const audit = d.onFirstToken("a", 250);
    assert.deepEqual(audit, {
      predictedTtftMs: 200,
      measuredTtftMs: 250,
      signedRelativeError: -0.2,
      relativeError: 0.2,
    });
    assert.equal(d.onFirstToken("a", 260), null, "first token counted once");
    assert.equal(d.snapshot().pendingPrefillTokens, 0);
    assert.equal(d.models.estimates().prefillSamples, 1, "admission (10) → first token (250) observed");
    assert.equal(d.onFinished("a"), true);
    assert.equal(d.snapshot().inEngine, 0);
    assert.equal(d.audit.pending, 0);
  });

  it("cancels from the queue and from the engine, releasing pending prefill", () => {
    const d = decision({ engine: { maxInflight: 1, maxQueue: 8, maxQueueMs: 0, ttftMarginMs: 50 } });
    withBusyEngine(d);
    d.offer({ id: "q", className: "critical", promptTokens: 10 }, 0);
    assert.equal(d.cancel("q"), true);
    assert.equal(d.cancel("running"), true);
    assert.equal(d.cancel("nope"), false);
    const s = d.snapshot();
    assert.deepEqual([s.queued, s.inEngine, s.pendingPrefillTokens, d.audit.pending], [0, 0, 0, 0]);
  });

  it("rejects malformed arrivals and options with clear errors", () => {
    const d = decision();
    assert.throws(
      () => d.offer({ id: "x", className: "gold", promptTokens: 1 }, 0),
      InvalidSchedulerInputError,
    );
    assert.throws(
      () => d.offer({ id: "x", className: "critical", promptTokens: 0 }, 0),
      InvalidSchedulerInputError,
    );
    assert.throws(
      () => d.offer({ id: "x", className: "critical", promptTokens: 5, cachedTokens: 6 }, 0),
      InvalidSchedulerInputError,
    );
    assert.throws(
      () => d.offer({ id: "x", className: "critical", promptTokens: 5, upstreamElapsedMs: -1 }, 0),
      InvalidSchedulerInputError,
    );
    d.offer({ id: "x", className: "critical", promptTokens: 5 }, 0);
    assert.throws(
      () => d.offer({ id: "x", className: "critical", promptTokens: 5 }, 0),
      DuplicateRequestIdError,
    );
    assert.throws(() => decision({ classes: [] }), EngineSchedulerConfigError);
    assert.throws(() => decision({ classes: [critical, critical] }), EngineSchedulerConfigError);
    assert.throws(() => decision({ retryAfterMinMs: 10, retryAfterMaxMs: 5 }), EngineSchedulerConfigError);
    assert.throws(
      () => decision({ engine: { maxInflight: -1, maxQueue: 1, maxQueueMs: 0, ttftMarginMs: 0 } }),
      EngineSchedulerConfigError,
    );
  });

  it("builds options from a resolved policy, max_inflight 0 meaning the engine's max_num_seqs", () => {
    const o = engineDecisionOptionsFromPolicy(
      {
        classes: [critical],
        engine: { maxInflight: 0, maxQueue: 64, maxQueueMs: 0, ttftMarginMs: 50 },
        rejection: { httpStatus: 429, retryAfterMinMs: 100, retryAfterMaxMs: 30_000 },
      },
      { maxNumSeqs: 3 },
    );
    assert.equal(createEngineDecision(o).snapshot().inEngineLimit, 3);
  });
});

describe("L3 decision: the ITL guard prices the newcomer's prefill chunks", () => {
  // Dynamo prefill seed at 8192-token chunks (a ≈ 22.2 ms, b ≈ 18.6 µs/token: a full chunk ≈ 175 ms) and a
  // flat 30 ms decode step; TTFT objectives wide enough that only the ITL guard decides.
  const wide: ClassObjectives = { ...standard, ttftObjectiveMs: 60_000 };
  const guarded = (overrides: Partial<EngineDecisionOptions> = {}) =>
    createEngineDecision({
      classes: [wide],
      engine: { maxInflight: 8, maxQueue: 8, maxQueueMs: 0, ttftMarginMs: 0 },
      engineMaxNumBatchedTokens: 8192,
      models: { decodeSeedBaseMs: 30, decodeSeedKvLinearMs: 0, decodeSeedKvQuadraticMs: 0 },
      ...overrides,
    });
  /** One running request with `maxTokens` output tokens whose first token came at 0. */
  const running = (d: EngineDecision, maxTokens?: number) => {
    d.offer({ id: "r", className: "standard", promptTokens: 100, ...(maxTokens ? { maxTokens } : {}) }, 0);
    assert.equal(d.nextAdmission(0, facts).kind, "admit");
    d.onFirstToken("r", 0);
  };

  it("holds a big prompt that would push a short running response over its mean ITL, admits a small one", () => {
    const big = guarded();
    running(big, 11); // 10 gaps: 5 chunks of ~175 ms would add ~87 ms to its mean
    big.offer({ id: "big", className: "standard", promptTokens: 5 * 8192 }, 0);
    const held = big.nextAdmission(0, facts);
    assert.equal(held.kind, "hold");
    if (held.kind === "hold") {
      assert.equal(held.limit, 100);
      // 30 + min(10, 5)·(5·a + b·40960)/5 / 10
      const m = big.models;
      const expected = 30 + (5 * m.prefillFixedMs() + m.prefillMsPerToken() * 5 * 8192) / 10;
      assert.ok(Math.abs(held.observed - expected) < 1e-9, `${held.observed} vs ${expected}`);
      assert.ok(held.observed > 110 && held.observed < 125, `${held.observed}`);
    }
    // When the running request finishes, the empty engine takes the held head: no starvation.
    big.onFinished("r");
    assert.equal(big.nextAdmission(50, facts).kind, "admit");

    const small = guarded();
    running(small, 11);
    small.offer({ id: "small", className: "standard", promptTokens: 1000 }, 0);
    assert.equal(small.nextAdmission(0, facts).kind, "admit", "one ~41 ms chunk over 10 gaps: ~34 ms");
  });

  it("lets a long response absorb the same chunks, and uses the assumed length without maxTokens", () => {
    const long = guarded();
    running(long, 1001);
    long.offer({ id: "big", className: "standard", promptTokens: 5 * 8192 }, 0);
    assert.equal(long.nextAdmission(0, facts).kind, "admit", "30 + 875/1000 ms");

    // Without maxTokens the request is averaged over itlGuardAssumedOutputTokens − 1 gaps.
    const assumedShort = guarded({ itlGuardAssumedOutputTokens: 11 });
    running(assumedShort);
    assumedShort.offer({ id: "big", className: "standard", promptTokens: 5 * 8192 }, 0);
    assert.equal(assumedShort.nextAdmission(0, facts).kind, "hold");
    const assumedLong = guarded({ itlGuardAssumedOutputTokens: 1001 });
    running(assumedLong);
    assumedLong.offer({ id: "big", className: "standard", promptTokens: 5 * 8192 }, 0);
    assert.equal(assumedLong.nextAdmission(0, facts).kind, "admit");
  });

  it("counts prefill already committed in the engine and only the chunks a nearly-done response still meets", () => {
    const d = guarded();
    running(d, 11); // 10 gaps
    // 3 chunks committed (no first token yet): 30 + 3·175/10 ≈ 82 ms, admitted.
    d.offer({ id: "p", className: "standard", promptTokens: 3 * 8192, maxTokens: 1000 }, 0);
    assert.equal(d.nextAdmission(0, facts).kind, "admit");
    // Two more chunks on top of the committed three: 30 + 5·175/10 ≈ 117 ms.
    d.offer({ id: "n", className: "standard", promptTokens: 2 * 8192 }, 0);
    assert.equal(d.nextAdmission(0, facts).kind, "hold");
    // 270 ms later "r" has ~9 of its 10 gaps behind it (at 30 ms each): the remaining one meets at most one
    // chunk, 30 + 175/10 ≈ 47 ms, so the same newcomer goes in.
    assert.equal(d.nextAdmission(270, facts).kind, "admit");
  });

  it("holds a held head only until the batch drains or its TTFT deadline rejects it", () => {
    const d = guarded({ classes: [{ ...standard, ttftObjectiveMs: 3000 }] });
    running(d, 3);
    d.offer({ id: "big", className: "standard", promptTokens: 2 * 8192 }, 0);
    assert.equal(d.nextAdmission(0, facts).kind, "hold");
    assert.deepEqual(d.reevaluate(1000), []);
    const rejected = d.reevaluate(2990);
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0]?.rejection.reason, "predicted_ttft");
    assert.equal(d.snapshot().queued, 0);
  });
});

describe("L3 decision: prefill seed at the engine's chunk size", () => {
  /** The engine model's real time from admission to first token of one prompt on an idle engine. */
  const actualFirstTokenMs = (promptTokens: number, maxNumBatchedTokens: number) => {
    const engine = createEngineModel({ maxNumBatchedTokens });
    engine.add({ id: "p", promptTokens, maxTokens: 2, blockHashes: [], arrivalMs: 0 });
    let nowMs = 0;
    for (;;) {
      const step = engine.step(nowMs);
      nowMs += step.durationMs;
      if (step.firstTokens.includes("p")) return nowMs;
      assert.ok(step.durationMs > 0, "the engine made progress");
    }
  };

  it("predicts an 8192-token prompt within 10 % of the engine model before any sample", () => {
    const d = createEngineDecision({ engineMaxNumBatchedTokens: 8192 });
    assert.equal(d.models.estimates().prefillSamples, 0);
    const predicted = d.predictTtftMs("standard", 8192, 0);
    const actual = actualFirstTokenMs(8192, 8192);
    assert.ok(Math.abs(predicted - actual) / actual < 0.1, `predicted ${predicted} ms, engine ${actual} ms`);
    // The old seed (the profile at 1000-token chunks, ~65.8k tokens/s) was > 10 % optimistic here.
    const old = createEngineDecision({
      models: { prefillSeedFixedMs: 22.24, prefillSeedTokensPerS: 65_845 },
    });
    assert.ok((actual - old.predictTtftMs("standard", 8192, 0)) / actual > 0.1);
  });

  it("seeds from the chunk size it is given, and explicit seeds win", () => {
    const small = createEngineDecision({ engineMaxNumBatchedTokens: 2048 });
    const actual = actualFirstTokenMs(2048, 2048);
    const predicted = small.predictTtftMs("standard", 2048, 0);
    assert.ok(Math.abs(predicted - actual) / actual < 0.1, `predicted ${predicted} ms, engine ${actual} ms`);
    assert.ok(small.models.estimates().prefillTokensPerS > 60_000, "smaller chunks prefill faster per token");
    const explicit = createEngineDecision({ models: { prefillSeedFixedMs: 0, prefillSeedTokensPerS: 1000 } });
    assert.equal(explicit.predictTtftMs("standard", 100, 0), 100);
    assert.equal(
      engineDecisionOptionsFromPolicy(
        {
          classes: [standard],
          engine: { maxInflight: 0, maxQueue: 1, maxQueueMs: 0, ttftMarginMs: 0 },
          rejection: { httpStatus: 429, retryAfterMinMs: 1, retryAfterMaxMs: 2 },
        },
        { maxNumSeqs: 4, maxNumBatchedTokens: 4096 },
      ).engineMaxNumBatchedTokens,
      4096,
    );
  });

  it("rejects a bad chunk size, assumption or maxTokens", () => {
    assert.throws(() => createEngineDecision({ engineMaxNumBatchedTokens: 0 }), EngineSchedulerConfigError);
    assert.throws(() => createEngineDecision({ itlGuardAssumedOutputTokens: 1 }), EngineSchedulerConfigError);
    const d = createEngineDecision();
    assert.throws(
      () => d.offer({ id: "x", className: "standard", promptTokens: 10, maxTokens: 0 }, 0),
      InvalidSchedulerInputError,
    );
    assert.throws(
      () => d.offer({ id: "y", className: "standard", promptTokens: 10, maxTokens: 1.5 }, 0),
      InvalidSchedulerInputError,
    );
  });
});

describe("L3 decision: idle probe", () => {
  // 2 000 tokens predict 2 000 ms at the seeded 1 ms per token: over the 950 ms limit of critical.
  const long = (id: string) => ({ id, className: "critical", promptTokens: 2_000 });

  it("an empty engine admits one request predicted to miss per interval, then rejects as usual", () => {
    const d = decision({ idleProbeIntervalMs: 1_000 });
    assert.deepEqual(d.offer(long("p1"), 0), { admit: true, predictedTtftMs: 2_000, probe: true });
    // Not idle any more (p1 queued): the next one is judged by its prediction.
    const second = d.offer(long("r1"), 0);
    assert.equal(second.admit, false);
    // reevaluate spares the queued probe however late it now predicts.
    assert.deepEqual(d.reevaluate(900), []);
    assert.deepEqual(d.nextAdmission(900, facts), { kind: "admit", id: "p1", className: "critical" });
    assert.equal(d.onFinished("p1"), true); // no first token: the model is left as seeded
    // Idle again, but within the interval of the last probe.
    assert.equal(d.offer(long("r2"), 950).admit, false);
    assert.equal(d.offer(long("r3"), 999).admit, false);
    assert.deepEqual(d.offer(long("p2"), 1_000), { admit: true, predictedTtftMs: 2_000, probe: true });
  });

  it("probes only an empty engine, and not at all when the interval is 0", () => {
    const busy = decision({ idleProbeIntervalMs: 1_000 });
    withBusyEngine(busy);
    assert.equal(busy.offer(long("r"), 0).admit, false, "something in the engine: no probe");
    const off = decision({ idleProbeIntervalMs: 0 });
    assert.equal(off.offer(long("r"), 0).admit, false);
    assert.throws(() => decision({ idleProbeIntervalMs: -1 }), EngineSchedulerConfigError);
  });

  it("a cancelled probe is no longer spared by reevaluate's prediction check", () => {
    const d = decision({ idleProbeIntervalMs: 1 });
    assert.equal(d.offer(long("p1"), 0).admit, true);
    assert.equal(d.cancel("p1"), true);
    // Re-offered with the same id while another request is queued: an ordinary arrival again.
    withBusyEngine(d, 5);
    assert.equal(d.offer({ id: "small", className: "critical", promptTokens: 10 }, 5).admit, true);
    assert.equal(d.offer(long("p1"), 5).admit, false);
  });
});
