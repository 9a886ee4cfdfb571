import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EngineSchedulerConfigError } from "./errors.js";
import { createPredictionAudit } from "./prediction-audit.js";

describe("prediction audit", () => {
  it("returns the relative error of a recorded prediction once", () => {
    const a = createPredictionAudit();
    a.record("r", 300, 1000);
    assert.deepEqual(a.resolve("r", 1400), {
      predictedTtftMs: 300,
      measuredTtftMs: 400,
      signedRelativeError: -0.25,
      relativeError: 0.25,
    });
    assert.equal(a.resolve("r", 1500), null);
    assert.equal(a.resolve("unknown", 1500), null);
    a.record("fast", 10, 0);
    assert.equal(
      a.resolve("fast", 0)?.relativeError,
      10,
      "a 0 ms TTFT is floored at 1 ms, not a division by 0",
    );
  });

  it("stays bounded: forget, and drop the oldest past maxPending", () => {
    const a = createPredictionAudit(2);
    a.record("x", 1, 0);
    a.record("y", 1, 0);
    a.forget("y");
    assert.equal(a.pending, 1);
    a.record("y", 1, 0);
    a.record("z", 1, 0);
    assert.equal(a.pending, 2);
    assert.equal(a.dropped, 1);
    assert.equal(a.resolve("x", 5), null, "the oldest entry was dropped");
    a.record("n", Number.NaN, 0);
    assert.equal(a.resolve("n", 5), null, "non-finite predictions are not recorded");
    assert.throws(() => createPredictionAudit(0), EngineSchedulerConfigError);
  });
});
