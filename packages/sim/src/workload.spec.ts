import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { DEFAULT_CLASS_MIX, parseClassMix } from "./classes.js";
import { traceOf } from "./test-fixtures.js";
import { buildWorkload } from "./workload.js";

// Three requests share the 3 s bucket at t=0, one is alone at 3000, one at 6000.
const bucketed = traceOf([
  { timestampMs: 0, promptTokens: 1, outputTokens: 1 },
  { timestampMs: 0, promptTokens: 2, outputTokens: 1 },
  { timestampMs: 0, promptTokens: 3, outputTokens: 1 },
  { timestampMs: 3000, promptTokens: 4, outputTokens: 1 },
  { timestampMs: 6000, promptTokens: 5, outputTokens: 1 },
]);

describe("buildWorkload", () => {
  it("spreads a shared timestamp over its bucket with seeded jitter, leaving lone timestamps alone", () => {
    const w = buildWorkload(bucketed, {
      seed: 7,
      spreadBucketMs: 3000,
      classMix: DEFAULT_CLASS_MIX,
      rateScale: 1,
    });
    const times = w.requests.map((r) => r.arrivalMs);
    for (let i = 0; i < 3; i++) assert.ok((times[i] as number) >= 0 && (times[i] as number) < 3000);
    assert.equal(new Set(times.slice(0, 3)).size, 3);
    assert.deepEqual(times.slice(3), [3000, 6000]);
    assert.deepEqual(
      w.requests.map((r) => r.index),
      [0, 1, 2, 3, 4],
    );
    for (let i = 1; i < times.length; i++) assert.ok((times[i] as number) >= (times[i - 1] as number));
    const again = buildWorkload(bucketed, {
      seed: 7,
      spreadBucketMs: 3000,
      classMix: DEFAULT_CLASS_MIX,
      rateScale: 1,
    });
    assert.deepEqual(again, w);
    const other = buildWorkload(bucketed, {
      seed: 8,
      spreadBucketMs: 3000,
      classMix: DEFAULT_CLASS_MIX,
      rateScale: 1,
    });
    assert.notDeepEqual(other.requests.slice(0, 3), w.requests.slice(0, 3));
  });

  it("replays literal timestamps with spread 0, compresses by the rate scale and cuts by duration", () => {
    const w = buildWorkload(bucketed, { spreadBucketMs: 0, rateScale: 2, durationMs: 6000 });
    assert.deepEqual(
      w.requests.map((r) => r.arrivalMs),
      [0, 0, 0, 1500],
    );
    assert.equal(w.windowMs, 3000);
    assert.throws(() => buildWorkload(bucketed, { rateScale: 0 }), /rate scale/);
    assert.throws(() => buildWorkload(bucketed, { durationMs: 0 }), /duration/);
  });

  it("draws classes from the mix, reproducibly", () => {
    const many = traceOf(
      Array.from({ length: 4000 }, (_, i) => ({ timestampMs: i, promptTokens: 1, outputTokens: 1 })),
    );
    const mix = parseClassMix("critical=0.2,standard=0.6,sheddable=0.2");
    const w = buildWorkload(many, { classMix: mix, seed: 3 });
    const counts = { critical: 0, standard: 0, sheddable: 0 };
    for (const r of w.requests) counts[r.requestClass]++;
    assert.ok(Math.abs(counts.critical / 4000 - 0.2) < 0.03, JSON.stringify(counts));
    assert.ok(Math.abs(counts.standard / 4000 - 0.6) < 0.03, JSON.stringify(counts));
    assert.deepEqual(buildWorkload(many, { classMix: mix, seed: 3 }).requests, w.requests);
  });

  it("validates --class-mix", () => {
    assert.deepEqual(parseClassMix("standard=1"), { critical: 0, standard: 1, sheddable: 0 });
    assert.throws(() => parseClassMix("gold=1"), /CLASS=SHARE/);
    assert.throws(() => parseClassMix("critical=0.5"), /sum to 1/);
    assert.throws(() => parseClassMix("critical=x,standard=1"), /must be a number/);
  });
});
