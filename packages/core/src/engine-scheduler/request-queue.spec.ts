import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DuplicateRequestIdError, InvalidSchedulerInputError, QueueCapacityError } from "./errors.js";
import { createRequestQueue, type QueueEntryInput } from "./request-queue.js";

const entry = (id: string, priority: number, deadlineMs: number, uncachedTokens = 10): QueueEntryInput => ({
  id,
  className: `p${priority}`,
  priority,
  arrivalMs: 0,
  deadlineMs,
  promptTokens: uncachedTokens,
  uncachedTokens,
});

/** Small deterministic PRNG so the randomised test is reproducible. */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("request queue", () => {
  it("orders by class priority, then deadline, then arrival", () => {
    const q = createRequestQueue(16);
    q.push(entry("sheddable-early", 100, 10));
    q.push(entry("standard-late", 200, 900));
    q.push(entry("critical-late", 300, 1000));
    q.push(entry("standard-early", 200, 500));
    q.push(entry("critical-early", 300, 400));
    q.push(entry("standard-early-2", 200, 500));
    assert.deepEqual(
      q.ordered().map((e) => e.id),
      [
        "critical-early",
        "critical-late",
        "standard-early",
        "standard-early-2",
        "standard-late",
        "sheddable-early",
      ],
    );
    const popped: string[] = [];
    for (let e = q.pop(); e !== undefined; e = q.pop()) popped.push(e.id);
    assert.deepEqual(popped, [
      "critical-early",
      "critical-late",
      "standard-early",
      "standard-early-2",
      "standard-late",
      "sheddable-early",
    ]);
    assert.equal(q.size, 0);
    assert.equal(q.totalUncachedTokens, 0);
  });

  it("removes by id from anywhere and keeps the heap order", () => {
    const q = createRequestQueue(1000);
    const rnd = lcg(7);
    const live = new Map<string, QueueEntryInput>();
    for (let i = 0; i < 500; i++) {
      const e = entry(
        `r${i}`,
        100 * (1 + Math.floor(rnd() * 3)),
        Math.floor(rnd() * 1000),
        1 + Math.floor(rnd() * 50),
      );
      q.push(e);
      live.set(e.id, e);
      if (rnd() < 0.4) {
        const ids = [...live.keys()];
        const victim = ids[Math.floor(rnd() * ids.length)]!;
        assert.equal(q.remove(victim), true);
        live.delete(victim);
      }
    }
    assert.equal(q.remove("never-queued"), false);
    assert.equal(q.size, live.size);
    assert.equal(
      q.totalUncachedTokens,
      [...live.values()].reduce((s, e) => s + e.uncachedTokens, 0),
    );
    const order = q.ordered();
    let prev = q.pop();
    assert.equal(prev?.id, order[0]?.id);
    let n = 1;
    for (let e = q.pop(); e !== undefined; e = q.pop(), n++) {
      assert.ok(
        prev!.priority > e.priority ||
          (prev!.priority === e.priority &&
            (prev!.deadlineMs < e.deadlineMs || (prev!.deadlineMs === e.deadlineMs && prev!.seq < e.seq))),
        `${prev!.id} must leave before ${e.id}`,
      );
      assert.equal(e.id, order[n]?.id);
      prev = e;
    }
    assert.equal(n, live.size);
  });

  it("is bounded and rejects duplicates and malformed entries", () => {
    const q = createRequestQueue(2);
    q.push(entry("a", 1, 1));
    assert.throws(() => q.push(entry("a", 1, 2)), DuplicateRequestIdError);
    q.push(entry("b", 1, 2));
    assert.throws(() => q.push(entry("c", 1, 3)), QueueCapacityError);
    assert.equal(q.size, 2);
    q.remove("a");
    q.push(entry("c", 1, 3));
    assert.throws(
      () => createRequestQueue(2).push({ ...entry("x", 1, 1), deadlineMs: Number.NaN }),
      InvalidSchedulerInputError,
    );
    assert.throws(
      () => createRequestQueue(2).push({ ...entry("x", 1, 1), uncachedTokens: 20 }),
      InvalidSchedulerInputError,
      "uncached beyond the prompt",
    );
    assert.throws(() => createRequestQueue(2).push({ ...entry("", 1, 1) }), InvalidSchedulerInputError);
    assert.throws(() => createRequestQueue(-1), InvalidSchedulerInputError);
  });

  it("sums the work queued ahead of a newcomer", () => {
    const q = createRequestQueue(16);
    q.push(entry("c1", 300, 1000, 100));
    q.push(entry("s1", 200, 500, 10));
    q.push(entry("s2", 200, 700, 20));
    q.push(entry("d1", 100, 0, 1000));
    assert.deepEqual(q.uncachedTokensAhead({ priority: 200, deadlineMs: 600 }), { tokens: 110, count: 2 });
    assert.deepEqual(
      q.uncachedTokensAhead({ priority: 200, deadlineMs: 700 }),
      { tokens: 130, count: 3 },
      "ties are FIFO",
    );
    assert.deepEqual(q.uncachedTokensAhead({ priority: 400, deadlineMs: 0 }), { tokens: 0, count: 0 });
    assert.deepEqual(q.uncachedTokensAhead({ priority: 100, deadlineMs: 5 }), { tokens: 1130, count: 4 });
  });
});
