import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BlockPool } from "./block-pool.js";

describe("BlockPool", () => {
  it("hands out plain blocks before evicting cached ones, then evicts least recently freed first", () => {
    const pool = new BlockPool(3);
    pool.evicted = [];
    const [a, b, c] = [pool.allocate(), pool.allocate(), pool.allocate()];
    assert.deepEqual([a, b, c], [0, 1, 2]);
    assert.equal(pool.allocate(), -1, "pool exhausted");
    assert.ok(pool.register(a, 10n));
    assert.ok(pool.register(b, 11n));
    assert.equal(pool.register(c, 10n), false, "duplicate hash stays uncached");
    pool.release(b);
    pool.release(a);
    pool.release(c);
    assert.deepEqual([pool.freeBlocks, pool.cachedFreeBlocks, pool.usedBlocks], [3, 2, 0]);
    assert.deepEqual(pool.lruOrder(), [11n, 10n]);
    assert.equal(pool.allocate(), c, "plain block first");
    assert.deepEqual(pool.evicted, []);
    pool.touch(pool.lookup(11n)); // hit: leaves the LRU
    assert.deepEqual(pool.lruOrder(), [10n]);
    assert.equal(pool.allocate(), a);
    assert.deepEqual(pool.evicted, [10n]);
    assert.equal(pool.lookup(10n), -1);
    assert.equal(pool.allocate(), -1);
  });

  it("shares a cached block between references and frees it on the last release", () => {
    const pool = new BlockPool(2);
    const a = pool.allocate();
    pool.register(a, 7n);
    pool.touch(a);
    pool.release(a);
    assert.equal(pool.cachedFreeBlocks, 0, "still referenced once");
    pool.release(a);
    assert.equal(pool.cachedFreeBlocks, 1);
    assert.throws(() => pool.release(a), /already free/);
  });

  it("reset drops cached blocks only when nothing is in use", () => {
    const pool = new BlockPool(2);
    const a = pool.allocate();
    pool.register(a, 1n);
    assert.equal(pool.reset(), false);
    pool.release(a);
    assert.equal(pool.reset(), true);
    assert.deepEqual([pool.cachedFreeBlocks, pool.freeBlocks, pool.lookup(1n)], [0, 2, -1]);
  });
});
