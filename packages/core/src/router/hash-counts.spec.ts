import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createHashCounts } from "./hash-counts.js";

describe("hash counts", () => {
  it("matches a Map reference through growth and deletions (incl. full 64-bit and colliding-halves hashes)", () => {
    const counts = createHashCounts(2);
    const reference = new Map<bigint, number>();
    // Keys whose 32-bit halves repeat across keys, small keys and the extremes.
    const keys: bigint[] = [0n, 1n, 0xffff_ffff_ffff_ffffn, 1n << 32n, (1n << 32n) | 1n];
    for (let i = 0; i < 300; i++) keys.push((BigInt(i) * 0x9e37_79b9_7f4a_7c15n) & 0xffff_ffff_ffff_ffffn);
    let s = 7;
    for (let step = 0; step < 20_000; step++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const key = keys[s % keys.length]!;
      if ((s >>> 16) % 3 !== 0) {
        counts.increment(key);
        reference.set(key, (reference.get(key) ?? 0) + 1);
      } else {
        const had = (reference.get(key) ?? 0) > 0;
        assert.equal(counts.decrement(key), had);
        if (had) {
          const left = reference.get(key)! - 1;
          if (left === 0) reference.delete(key);
          else reference.set(key, left);
        }
      }
      if (step % 500 === 0) {
        assert.equal(counts.size, reference.size);
        for (const k of keys) assert.equal(counts.count(k), reference.get(k) ?? 0);
      }
    }
    assert.equal(counts.size, reference.size);
  });

  it("batch increments and decrements agree with the single ones, across growth and collisions", () => {
    const single = createHashCounts(1);
    const batched = createHashCounts(1);
    // 40 prompts of up to 130 hashes (more than one batch, not a multiple of it) from a pool of 600
    // keys, so prompts repeat keys, chains collide, and both tables grow from 16 slots.
    let s = 11;
    const next = () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s;
    };
    const pool = Array.from({ length: 600 }, (_, i) =>
      i < 300 ? BigInt(i) : (BigInt(i) * 0x9e37_79b9_7f4a_7c15n) & 0xffff_ffff_ffff_ffffn,
    );
    const live: bigint[][] = [];
    for (let step = 0; step < 400; step++) {
      if (live.length === 0 || next() % 3 !== 0) {
        const prompt = Array.from({ length: 1 + (next() % 130) }, () => pool[next() % pool.length]!);
        for (const h of prompt) single.increment(h);
        batched.incrementAll(prompt);
        live.push(prompt);
      } else {
        const prompt = live.splice(next() % live.length, 1)[0]!;
        for (const h of prompt) assert.equal(single.decrement(h), true);
        assert.equal(batched.decrementAll(prompt), 0);
      }
      assert.equal(batched.size, single.size);
    }
    for (const h of pool) assert.equal(batched.count(h), single.count(h));
    // Hashes with no reference are counted, and change nothing.
    assert.equal(batched.decrementAll([0xdead_beefn, 0xdead_beefn]), batched.count(0xdead_beefn) > 0 ? 0 : 2);
    for (const prompt of live) batched.decrementAll(prompt);
    assert.equal(batched.size, 0);
  });
});
