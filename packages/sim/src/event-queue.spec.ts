import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { EventQueue } from "./event-queue.js";
import { createRng } from "./rng.js";

describe("EventQueue", () => {
  it("pops in time order, ties in insertion order", () => {
    const q = new EventQueue<string>();
    q.push(5, "a");
    q.push(1, "b");
    q.push(5, "c");
    q.push(0, "d");
    q.push(1, "e");
    const out: string[] = [];
    for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(`${e.timeMs}${e.event}`);
    assert.deepEqual(out, ["0d", "1b", "1e", "5a", "5c"]);
    assert.equal(q.peekTimeMs(), Number.POSITIVE_INFINITY);
  });

  it("matches a stable sort on random interleaved pushes and pops", () => {
    const rng = createRng(42);
    const q = new EventQueue<number>();
    const pending: { t: number; id: number }[] = [];
    const popped: number[] = [];
    const expected: number[] = [];
    for (let id = 0; id < 5000; id++) {
      const t = Math.floor(rng() * 100);
      q.push(t, id);
      pending.push({ t, id });
      if (rng() < 0.3) {
        pending.sort((a, b) => a.t - b.t || a.id - b.id);
        expected.push((pending.shift() as { id: number }).id);
        popped.push((q.pop() as { event: number }).event);
      }
    }
    assert.deepEqual(popped, expected);
    assert.throws(() => q.push(Number.NaN, 1), RangeError);
  });
});
