import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { manualClock } from "./clock.js";

describe("manualClock", () => {
  it("moves only when told, never backwards", () => {
    const c = manualClock(100);
    assert.equal(c.nowMs(), 100);
    c.advance(25.5);
    assert.equal(c.nowMs(), 125.5);
    c.set(200);
    assert.equal(c.nowMs(), 200);
    assert.throws(() => c.set(199), RangeError);
    assert.throws(() => c.advance(-1), RangeError);
    assert.throws(() => c.advance(Number.NaN), RangeError);
    assert.throws(() => manualClock(Number.POSITIVE_INFINITY), RangeError);
    assert.equal(c.nowMs(), 200);
  });
});
