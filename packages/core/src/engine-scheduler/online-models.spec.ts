import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEngineModel } from "../engine/engine-model.js";
import { dynamoMockerStepTime } from "../engine/step-time.js";
import { EngineSchedulerConfigError } from "./errors.js";
import { createOnlineModels, DEFAULT_ONLINE_MODEL_OPTIONS } from "./online-models.js";

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Time the engine model takes, alone and idle, from admission to the first token of a `tokens` prompt. */
function loneTtftMs(tokens: number): number {
  const engine = createEngineModel({ stepTime: dynamoMockerStepTime() });
  engine.add({ id: "probe", promptTokens: tokens, blockHashes: [], maxTokens: 1, arrivalMs: 0 });
  let now = 0;
  for (;;) {
    const r = engine.step(now);
    now += r.durationMs;
    if (r.firstTokens.includes("probe")) return now;
  }
}

describe("online models", () => {
  it("serves the seeds before any observation", () => {
    const m = createOnlineModels({ prefillSeedFixedMs: 20, prefillSeedTokensPerS: 50_000 });
    assert.equal(m.prefillMs(0), 0);
    assert.ok(Math.abs(m.prefillMs(5000) - (20 + 100)) < 1e-9);
    assert.ok(Math.abs(m.estimates().prefillTokensPerS - 50_000) < 1e-6);
    const c = DEFAULT_ONLINE_MODEL_OPTIONS;
    const u = 0.5;
    assert.ok(
      Math.abs(
        m.decodeStepMs(1, u) -
          (c.decodeSeedBaseMs +
            c.decodeSeedMsPer64Seqs / 64 +
            c.decodeSeedKvLinearMs * u +
            c.decodeSeedKvQuadraticMs * u * u),
      ) < 1e-9,
    );
    assert.equal(m.slotReleaseIntervalMs(), 0);
  });

  it("learns the engine model's prefill throughput within 10 % (Dynamo mocker profile, virtual time)", () => {
    // Seed deliberately 3× too fast so the test shows convergence, not the seed.
    const m = createOnlineModels({ prefillSeedFixedMs: 5, prefillSeedTokensPerS: 200_000 });
    const engine = createEngineModel({ stepTime: dynamoMockerStepTime() });
    const rnd = lcg(42);
    let now = 0;
    for (let i = 0; i < 300; i++) {
      const tokens = 256 + Math.floor(rnd() * 3840);
      const id = `r${i}`;
      const admittedMs = now;
      engine.add({ id, promptTokens: tokens, blockHashes: [], maxTokens: 1, arrivalMs: now });
      for (;;) {
        const r = engine.step(now);
        now += r.durationMs;
        if (r.firstTokens.includes(id)) break;
      }
      m.observePrefill({ aheadTokens: 0, uncachedTokens: tokens, elapsedMs: now - admittedMs });
      now += 5; // idle gap between requests
    }
    for (const tokens of [512, 1024, 2048, 4096]) {
      const actualTokensPerS = (tokens * 1000) / loneTtftMs(tokens);
      const learnedTokensPerS = (tokens * 1000) / m.prefillMs(tokens);
      const err = Math.abs(learnedTokensPerS - actualTokensPerS) / actualTokensPerS;
      assert.ok(
        err < 0.1,
        `at ${tokens} tokens: learned ${learnedTokensPerS.toFixed(0)} tok/s vs ${actualTokensPerS.toFixed(0)} (${(err * 100).toFixed(1)} %)`,
      );
    }
  });

  it("learns the decode step curve from observed gaps", () => {
    const m = createOnlineModels({
      decodeSeedBaseMs: 1,
      decodeSeedKvLinearMs: 1,
      decodeSeedKvQuadraticMs: 0,
    });
    const truth = dynamoMockerStepTime();
    const rnd = lcg(3);
    for (let i = 0; i < 2000; i++) {
      const kvUsage = rnd() * 0.9;
      const batchSize = 1 + Math.floor(rnd() * 200);
      const gapMs = truth.stepMs({ prefillTokens: 0, decodeSeqs: batchSize, outputSeqs: batchSize, kvUsage });
      assert.equal(m.observeDecode({ gapMs, batchSize, kvUsage }), true);
    }
    for (const [batch, u] of [
      [8, 0.1],
      [64, 0.4],
      [180, 0.8],
    ] as const) {
      const expected = truth.stepMs({ prefillTokens: 0, decodeSeqs: batch, outputSeqs: batch, kvUsage: u });
      const got = m.decodeStepMs(batch, u);
      assert.ok(Math.abs(got - expected) / expected < 0.1, `batch ${batch}, u ${u}: ${got} vs ${expected}`);
    }
    assert.equal(
      m.estimates().decodeSamples,
      DEFAULT_ONLINE_MODEL_OPTIONS.decodeWindowSize,
      "window is bounded",
    );
  });

  it("bounds the effect of outliers and still follows a real change of speed", () => {
    const m = createOnlineModels({ prefillWindowSize: 64 });
    const rnd = lcg(9);
    const feed = (msPerToken: number, n: number) => {
      for (let i = 0; i < n; i++) {
        const tokens = 500 + Math.floor(rnd() * 3000);
        m.observePrefill({ aheadTokens: 0, uncachedTokens: tokens, elapsedMs: 10 + msPerToken * tokens });
      }
    };
    feed(0.02, 64);
    const before = m.prefillMs(2000);
    assert.ok(Math.abs(before - 50) < 1, `fits 10 + 0.02·T: ${before}`);
    // One request stalled for a minute (client-side hiccup, engine pause) must not wreck the estimate.
    m.observePrefill({ aheadTokens: 0, uncachedTokens: 2000, elapsedMs: 60_000 });
    const after = m.prefillMs(2000);
    assert.ok(after < before * 1.15, `one outlier moved 2000-token prefill from ${before} to ${after}`);
    // The engine really got 3× slower (e.g. another model was co-located): followed within two windows.
    feed(0.06, 128);
    const slower = m.prefillMs(2000);
    assert.ok(Math.abs(slower - 130) / 130 < 0.05, `follows the change: ${slower}`);
  });

  it("ignores malformed observations and rejects bad options", () => {
    const m = createOnlineModels();
    assert.equal(m.observePrefill({ aheadTokens: 0, uncachedTokens: Number.NaN, elapsedMs: 5 }), false);
    assert.equal(m.observePrefill({ aheadTokens: 0, uncachedTokens: 0, elapsedMs: 5 }), false);
    assert.equal(m.observePrefill({ aheadTokens: 0, uncachedTokens: 10, elapsedMs: -1 }), false);
    assert.equal(m.observeDecode({ gapMs: Number.POSITIVE_INFINITY, batchSize: 1, kvUsage: 0 }), false);
    assert.equal(m.observeDecode({ gapMs: 5, batchSize: 0, kvUsage: 0 }), false);
    assert.equal(m.observeSlotReleaseInterval(-3), false);
    assert.equal(m.estimates().prefillSamples, 0);
    assert.throws(() => createOnlineModels({ prefillSeedTokensPerS: 0 }), EngineSchedulerConfigError);
    assert.throws(() => createOnlineModels({ prefillWindowSize: 0 }), EngineSchedulerConfigError);
    assert.throws(() => createOnlineModels({ outlierFactor: 1 }), EngineSchedulerConfigError);
    assert.throws(() => createOnlineModels({ decodeSeedBaseMs: Number.NaN }), EngineSchedulerConfigError);
  });

  it("averages slot-release intervals", () => {
    const m = createOnlineModels({ slotReleaseEwmaWeight: 0.5 });
    m.observeSlotReleaseInterval(100);
    assert.equal(m.slotReleaseIntervalMs(), 100);
    m.observeSlotReleaseInterval(200);
    assert.equal(m.slotReleaseIntervalMs(), 150);
  });
});
