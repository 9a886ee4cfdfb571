import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RouterConfigError, RouterInputError } from "./errors.js";
import { createHoldQueue } from "./hold-queue.js";

const CLASSES = [
  { name: "standard", priority: 200, maxHeld: 3 },
  { name: "critical", priority: 300, maxHeld: 2 },
  { name: "sheddable", priority: 100, maxHeld: 0 },
];

describe("hold queue", () => {
  it("releases higher classes first and earliest deadline first within a class", () => {
    const q = createHoldQueue<string>({ classes: CLASSES, maxHoldMs: 1000 });
    q.offer("s-late", "standard", "s-late", 0);
    q.offer("s-soon", "standard", "s-soon", 10, 500); // own deadline before max hold
    q.offer("c-1", "critical", "c-1", 20);
    q.offer("s-tie", "standard", "s-tie", 0); // same expiry as s-late, arrived later
    q.offer("c-0", "critical", "c-0", 5);
    const order: string[] = [];
    const { placed, expired } = q.drain(30, (e) => {
      order.push(e.id);
      return e.item;
    });
    assert.deepEqual(order, ["c-0", "c-1", "s-soon", "s-late", "s-tie"]);
    assert.deepEqual(
      placed.map((p) => [p.result, p.heldMs]),
      [
        ["c-0", 25],
        ["c-1", 10],
        ["s-soon", 20],
        ["s-late", 30],
        ["s-tie", 30],
      ],
    );
    assert.equal(expired.length, 0);
    assert.equal(q.size(), 0);
  });

  it("stops at the first request that cannot be placed, so lower classes never overtake", () => {
    const q = createHoldQueue<number>({ classes: CLASSES, maxHoldMs: 1000 });
    q.offer("c", "critical", 8000, 0);
    q.offer("s", "standard", 10, 0);
    const tried: string[] = [];
    const r = q.drain(1, (e) => {
      tried.push(e.id);
      return e.item < 100 ? e.item : undefined;
    });
    assert.deepEqual(tried, ["c"]);
    assert.equal(r.placed.length, 0);
    assert.equal(q.size(), 2);
  });

  it("bounds each class and never holds a class with max 0", () => {
    const q = createHoldQueue<null>({ classes: CLASSES, maxHoldMs: 1000 });
    assert.equal(q.offer("c1", "critical", null, 0).accepted, true);
    assert.equal(q.offer("c2", "critical", null, 0).accepted, true);
    assert.deepEqual(q.offer("c3", "critical", null, 0), {
      accepted: false,
      reason: "hold_queue_full",
      held: 2,
      maxHeld: 2,
    });
    assert.equal(q.offer("s1", "standard", null, 0).accepted, true, "other classes have their own bound");
    assert.deepEqual(q.offer("x", "sheddable", null, 0), {
      accepted: false,
      reason: "hold_queue_full",
      held: 0,
      maxHeld: 0,
    });
    assert.equal(q.size("critical"), 2);
    assert.equal(q.size(), 3);
    assert.throws(() => q.offer("c1", "standard", null, 0), RouterInputError);
    assert.throws(() => q.offer("y", "gold", null, 0), RouterInputError);
  });

  it("expires requests at max hold or their own earlier deadline, before placing anything", () => {
    const q = createHoldQueue<string>({ classes: CLASSES, maxHoldMs: 1000 });
    assert.deepEqual(q.offer("a", "standard", "a", 0), { accepted: true, expiresAtMs: 1000 });
    assert.deepEqual(q.offer("b", "standard", "b", 100, 300), { accepted: true, expiresAtMs: 300 });
    q.offer("c", "critical", "c", 200);
    assert.equal(q.nextExpiryMs(), 300);
    let r = q.drain<string>(299, () => undefined);
    assert.equal(r.expired.length, 0);
    r = q.drain<string>(300, () => undefined);
    assert.deepEqual(
      r.expired.map((e) => [e.entry.id, e.heldMs]),
      [["b", 200]],
    );
    assert.equal(q.nextExpiryMs(), 1000);
    r = q.drain(1000, (e) => e.item);
    assert.deepEqual(
      r.expired.map((e) => e.entry.id),
      ["a"],
    );
    assert.deepEqual(
      r.placed.map((p) => p.entry.id),
      ["c"],
    );
    assert.equal(q.nextExpiryMs(), undefined);
  });

  it("withdraws a held request and frees its place", () => {
    const q = createHoldQueue<string>({ classes: CLASSES, maxHoldMs: 1000 });
    q.offer("c1", "critical", "one", 0);
    q.offer("c2", "critical", "two", 0);
    assert.equal(q.remove("c1")?.item, "one");
    assert.equal(q.remove("c1"), undefined);
    assert.equal(q.offer("c3", "critical", "three", 0).accepted, true);
    assert.deepEqual(
      q.drain(1, (e) => e.item).placed.map((p) => p.result),
      ["two", "three"],
    );
  });

  it("refuses invalid configuration", () => {
    assert.throws(() => createHoldQueue({ classes: CLASSES, maxHoldMs: -1 }), RouterConfigError);
    assert.throws(
      () =>
        createHoldQueue({
          classes: [...CLASSES, { name: "critical", priority: 1, maxHeld: 1 }],
          maxHoldMs: 1,
        }),
      RouterConfigError,
    );
    assert.throws(
      () => createHoldQueue({ classes: [{ name: "x", priority: 1, maxHeld: 1.5 }], maxHoldMs: 1 }),
      RouterConfigError,
    );
  });
});
