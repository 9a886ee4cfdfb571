import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createInflightLedger } from "./inflight-ledger.js";

describe("inflight ledger", () => {
  it("releases a slot exactly once whichever terminal path comes first", () => {
    let now = 0;
    let onReleaseCalls = 0;
    const ledger = createInflightLedger({ nowMs: () => now });
    const a = ledger.acquire("a", "m", "standard", 4, () => onReleaseCalls++);
    const b = ledger.acquire("b", "m", "sheddable", 2);
    assert.deepEqual(ledger.total(), { requests: 2, kvBlocks: 6 });
    assert.equal(a.release("cancelled"), true);
    assert.equal(a.release("completed"), false);
    assert.equal(a.release("failed"), false);
    assert.equal(onReleaseCalls, 1);
    now = 100;
    assert.equal(b.release("completed"), true);
    assert.deepEqual(ledger.total(), { requests: 0, kvBlocks: 0 });
    assert.equal(ledger.byModel().size, 0);
    assert.deepEqual(ledger.counters(), { admitted: 2, completed: 1, failed: 0, cancelled: 1 });
    assert.equal([...ledger.open()].length, 0);
    const rate = ledger.completionRatePerS(100);
    assert.ok(rate > 0);
    assert.ok(ledger.completionRatePerS(60_000) < rate / 100, "the rate decays when idle");
  });
});
