import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KvEvent } from "../engine/types.js";
import { computeBlockHashes } from "../kv/block-hash.js";
import { RouterInputError } from "./errors.js";
import { createPrefixIndex } from "./prefix-index.js";

const BLOCK = 4;

function tokens(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => (seed * 1000 + i) % 50_000);
}

function stored(seq: bigint[], local: bigint[], from: number, to: number): KvEvent {
  return {
    type: "stored",
    parentHash: from === 0 ? null : seq[from - 1]!,
    blockHashes: seq.slice(from, to),
    tokenHashes: local.slice(from, to),
  };
}

// A deterministic PRNG so the randomized consistency test is reproducible.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("prefix index: matching with Dynamo block hashes", () => {
  it("reports the longest cached prefix per worker and stops at the first missing block", () => {
    const index = createPrefixIndex();
    const prompt = tokens(6 * BLOCK + 3, 1); // 6 full blocks + a tail that is never hashed
    const { sequenceHashes: seq, localHashes: local } = computeBlockHashes(prompt, BLOCK);
    assert.equal(seq.length, 6);
    index.applyEvent("a", 1n, stored(seq, local, 0, 6));
    index.applyEvent("b", 1n, stored(seq, local, 0, 2));
    index.applyEvent("c", 1n, stored(seq, local, 0, 4));
    index.applyEvent("c", 2n, { type: "removed", blockHashes: [seq[2]!] }); // hole at block 2
    assert.deepEqual(Object.fromEntries(index.findMatches(seq)), { a: 6, b: 2, c: 2 });

    // Same first block, different second: the chained hash differs from block 1 on.
    const other = [...prompt.slice(0, BLOCK), ...tokens(5 * BLOCK, 2)];
    const otherSeq = computeBlockHashes(other, BLOCK).sequenceHashes;
    assert.equal(otherSeq[0], seq[0]);
    assert.deepEqual(Object.fromEntries(index.findMatches(otherSeq)), { a: 1, b: 1, c: 1 });

    // Unknown first block: nobody matches, even when later hashes are indexed.
    const unknownFirst = [computeBlockHashes(tokens(BLOCK, 77), BLOCK).sequenceHashes[0]!, ...seq.slice(1)];
    assert.equal(index.findMatches(unknownFirst).size, 0);
    assert.equal(index.findMatches([]).size, 0);
  });

  it("flags a stored event whose parent the worker does not hold, and still indexes its blocks", () => {
    const index = createPrefixIndex();
    const { sequenceHashes: seq, localHashes: local } = computeBlockHashes(tokens(4 * BLOCK, 3), BLOCK);
    const outcome = index.applyEvent("a", 7n, stored(seq, local, 2, 4));
    assert.deepEqual(outcome, { kind: "applied", parentMissing: true, unknownRemovals: 0 });
    assert.equal(index.workerBlockCount("a"), 2);
    // The orphan blocks cannot produce a match: matching starts at block 0.
    assert.equal(index.findMatches(seq).size, 0);
    assert.equal(index.applyEvent("a", 8n, stored(seq, local, 0, 2)).kind, "applied");
    assert.deepEqual(Object.fromEntries(index.findMatches(seq)), { a: 4 });
  });
});

describe("prefix index: consistency under interleaved events", () => {
  it("matches a reference model over random stored/removed/cleared events from 70 workers", () => {
    const random = rng(42);
    // Small capacity forces several table growths; >64 workers forces bitset growth to 3 words.
    const index = createPrefixIndex({ initialCapacityBlocks: 8 });
    const workers = Array.from({ length: 70 }, (_, i) => `w${i}`);
    const reference = new Map<string, Set<bigint>>(workers.map((w) => [w, new Set()]));
    const eventIds = new Map<string, bigint>(workers.map((w) => [w, 0n]));
    // 40 prompts of 12 blocks sharing prefixes in a tree: prompt p shares its first (p % 6) blocks with prompt 0.
    const base = tokens(12 * BLOCK, 9);
    const prompts = Array.from({ length: 40 }, (_, p) => {
      const shared = p % 6;
      const t = [...base.slice(0, shared * BLOCK), ...tokens((12 - shared) * BLOCK, 100 + p)];
      return computeBlockHashes(t, BLOCK).sequenceHashes;
    });
    const next = (w: string) => {
      const id = eventIds.get(w)! + 1n;
      eventIds.set(w, id);
      return id;
    };
    for (let step = 0; step < 6000; step++) {
      const w = workers[Math.floor(random() * workers.length)]!;
      const seq = prompts[Math.floor(random() * prompts.length)]!;
      const r = random();
      if (r < 0.55) {
        const from = Math.floor(random() * 12);
        const to = from + 1 + Math.floor(random() * (12 - from));
        const blocks = seq.slice(from, to);
        index.applyEvent(w, next(w), {
          type: "stored",
          parentHash: from === 0 ? null : seq[from - 1]!,
          blockHashes: blocks,
          tokenHashes: null,
        });
        for (const h of blocks) reference.get(w)!.add(h);
      } else if (r < 0.99) {
        const blocks = seq.filter(() => random() < 0.4);
        index.applyEvent(w, next(w), { type: "removed", blockHashes: blocks });
        for (const h of blocks) reference.get(w)!.delete(h);
      } else {
        index.applyEvent(w, next(w), { type: "cleared" });
        reference.get(w)!.clear();
      }
      if (step % 50 === 0 || step === 5999) {
        for (const seqHashes of prompts.slice(0, 8)) {
          const expected = new Map<string, number>();
          for (const [worker, held] of reference) {
            let depth = 0;
            while (depth < seqHashes.length && held.has(seqHashes[depth]!)) depth++;
            if (depth > 0) expected.set(worker, depth);
          }
          assert.deepEqual(index.findMatches(seqHashes), expected, `step ${step}`);
          // The allocation-free view answers the same.
          const view = index.matchPrefix(seqHashes);
          assert.equal(view.size, expected.size, `step ${step}`);
          for (const worker of workers) assert.equal(view.get(worker), expected.get(worker), `step ${step}`);
          const visited = new Map<string, number>();
          view.forEach((depth, worker) => {
            visited.set(worker, depth);
          });
          assert.deepEqual(visited, expected, `step ${step}`);
        }
      }
    }
    let pairs = 0;
    const distinct = new Set<bigint>();
    for (const [w, held] of reference) {
      assert.equal(index.workerBlockCount(w), held.size, w);
      pairs += held.size;
      for (const h of held) distinct.add(h);
    }
    const stats = index.stats();
    assert.equal(stats.workerBlocks, pairs);
    assert.equal(stats.blocks, distinct.size);
    assert.equal(stats.gaps, 0);
  });
});

describe("prefix index: event ids", () => {
  const { sequenceHashes: seq, localHashes: local } = computeBlockHashes(tokens(8 * BLOCK, 5), BLOCK);

  it("ignores a duplicate or replayed event id", () => {
    const index = createPrefixIndex();
    index.applyEvent("a", 1n, stored(seq, local, 0, 4));
    index.applyEvent("a", 2n, stored(seq, local, 4, 5));
    assert.deepEqual(index.applyEvent("a", 2n, { type: "cleared" }), { kind: "duplicate", lastEventId: 2n });
    assert.equal(index.workerBlockCount("a"), 5);
    assert.equal(index.stats().duplicates, 1);
  });

  it("treats event id 1 after higher ids as a restarted publisher: drops the old blocks, applies the event", () => {
    const index = createPrefixIndex();
    for (let id = 1n; id <= 4n; id++)
      index.applyEvent("a", id, stored(seq, local, Number(id) - 1, Number(id)));
    assert.deepEqual(index.applyEvent("a", 1n, stored(seq, local, 0, 2)), {
      kind: "restart",
      previousEventId: 4n,
      droppedBlocks: 4,
    });
    assert.deepEqual(Object.fromEntries(index.findMatches(seq)), { a: 2 });
    assert.equal(index.applyEvent("a", 2n, stored(seq, local, 2, 3)).kind, "applied");
    assert.equal(index.stats().restarts, 1);
  });

  it("under the reset policy, a gap drops the worker's blocks, applies the event and keeps the worker usable", () => {
    const index = createPrefixIndex();
    index.applyEvent("a", 1n, stored(seq, local, 0, 4));
    index.applyEvent("b", 1n, stored(seq, local, 0, 4));
    const outcome = index.applyEvent("a", 5n, stored(seq, local, 0, 2));
    assert.deepEqual(outcome, {
      kind: "gap",
      expectedEventId: 2n,
      receivedEventId: 5n,
      droppedBlocks: 4,
      stale: false,
    });
    assert.deepEqual(Object.fromEntries(index.findMatches(seq)), { a: 2, b: 4 });
    assert.equal(index.lastEventId("a"), 5n);
    assert.equal(index.applyEvent("a", 6n, stored(seq, local, 2, 3)).kind, "applied");
    assert.deepEqual(Object.fromEntries(index.findMatches(seq)), { a: 3, b: 4 });
  });

  it("under the mark-stale policy, a stale worker's matches are withheld until it is repaired", () => {
    const index = createPrefixIndex({ gapPolicy: "mark-stale" });
    index.applyEvent("a", 1n, stored(seq, local, 0, 4));
    index.applyEvent("b", 1n, stored(seq, local, 0, 3));
    const outcome = index.applyEvent("a", 3n, stored(seq, local, 4, 6));
    assert.equal(outcome.kind, "gap");
    assert.equal(index.isStale("a"), true);
    assert.equal(index.workerBlockCount("a"), 6);
    assert.deepEqual(Object.fromEntries(index.findMatches(seq)), { b: 3 });
    assert.equal(index.stats().staleWorkers, 1);
    // A cleared event makes the worker's cache known again (empty).
    index.applyEvent("a", 4n, { type: "cleared" });
    assert.equal(index.isStale("a"), false);
    index.applyEvent("a", 5n, stored(seq, local, 0, 5));
    assert.deepEqual(Object.fromEntries(index.findMatches(seq)), { a: 5, b: 3 });
    // resetWorker is the shell's other repair.
    index.applyEvent("a", 9n, { type: "removed", blockHashes: [seq[0]!] });
    assert.equal(index.isStale("a"), true);
    assert.equal(index.resetWorker("a"), 4);
    assert.equal(index.isStale("a"), false);
    assert.equal(index.workerBlockCount("a"), 0);
  });
});

describe("prefix index: workers and bad input", () => {
  const { sequenceHashes: seq, localHashes: local } = computeBlockHashes(tokens(4 * BLOCK, 6), BLOCK);

  it("removeWorker drops its blocks and a new worker reusing the slot starts empty", () => {
    const index = createPrefixIndex();
    index.applyEvent("a", 1n, stored(seq, local, 0, 4));
    index.applyEvent("b", 1n, stored(seq, local, 0, 2));
    assert.equal(index.removeWorker("a"), true);
    assert.equal(index.removeWorker("a"), false);
    assert.deepEqual(Object.fromEntries(index.findMatches(seq)), { b: 2 });
    assert.deepEqual(index.workers(), ["b"]);
    index.applyEvent("c", 1n, stored(seq, local, 0, 1));
    assert.deepEqual(Object.fromEntries(index.findMatches(seq)), { b: 2, c: 1 });
    assert.equal(index.stats().blocks, 2);
    index.removeWorker("b");
    index.removeWorker("c");
    assert.deepEqual(index.stats().blocks, 0);
    assert.equal(index.findMatches(seq).size, 0);
  });

  it("rejects malformed events without changing the index", () => {
    const index = createPrefixIndex();
    index.applyEvent("a", 1n, stored(seq, local, 0, 2));
    const bad: unknown[] = [
      { type: "stored", parentHash: null, blockHashes: [1n, 5], tokenHashes: null },
      { type: "stored", parentHash: -1n, blockHashes: [1n], tokenHashes: null },
      { type: "removed", blockHashes: "x" },
      { type: "evicted" },
      null,
    ];
    for (const event of bad) {
      assert.throws(() => index.applyEvent("a", 2n, event as KvEvent), RouterInputError);
    }
    assert.throws(() => index.applyEvent("a", 2 as unknown as bigint, { type: "cleared" }), RouterInputError);
    assert.throws(() => index.applyEvent("", 2n, { type: "cleared" }), RouterInputError);
    assert.equal(index.lastEventId("a"), 1n);
    assert.equal(index.workerBlockCount("a"), 2);
  });
});

describe("prefix index: the reusable match view", () => {
  const { sequenceHashes: seq, localHashes: local } = computeBlockHashes(tokens(6 * BLOCK, 8), BLOCK);
  const { sequenceHashes: other } = computeBlockHashes(tokens(6 * BLOCK, 9), BLOCK);

  it("describes only the last lookup and clears the workers it no longer matches", () => {
    const index = createPrefixIndex();
    index.applyEvent("a", 1n, stored(seq, local, 0, 6));
    index.applyEvent("b", 1n, stored(seq, local, 0, 3));
    const view = index.matchPrefix(seq);
    assert.equal(view.get("a"), 6);
    assert.equal(view.get("b"), 3);
    assert.equal(view.size, 2);
    assert.equal(view.get("nobody"), undefined);
    // Same object, new answer: nothing of `seq` is left over.
    assert.equal(index.matchPrefix(other), view);
    assert.equal(view.size, 0);
    assert.equal(view.get("a"), undefined);
    assert.equal(index.matchPrefix([]).size, 0);
  });

  it("does not hand a removed worker's depth to a new worker that takes over its slot", () => {
    const index = createPrefixIndex();
    index.applyEvent("a", 1n, stored(seq, local, 0, 5));
    const view = index.matchPrefix(seq);
    assert.equal(view.get("a"), 5);
    index.removeWorker("a");
    index.applyEvent("c", 1n, stored(seq, local, 0, 1)); // reuses a's slot
    assert.equal(view.get("a"), undefined);
    assert.equal(view.get("c"), undefined);
    assert.equal(view.size, 0);
    assert.equal(index.matchPrefix(seq).get("c"), 1);
  });

  it("keeps working when the worker bitsets and the table grow between lookups", () => {
    const index = createPrefixIndex({ initialCapacityBlocks: 1, initialWorkerCapacity: 1 });
    index.applyEvent("w0", 1n, stored(seq, local, 0, 6));
    assert.equal(index.matchPrefix(seq).get("w0"), 6);
    // 100 more workers: the bitsets grow from 1 to 4 words and the view's arrays with them.
    for (let w = 1; w <= 100; w++) index.applyEvent(`w${w}`, 1n, stored(seq, local, 0, 1 + (w % 6)));
    const view = index.matchPrefix(seq);
    assert.equal(view.size, 101);
    for (let w = 1; w <= 100; w++) assert.equal(view.get(`w${w}`), 1 + (w % 6));
    assert.equal(view.get("w0"), 6);
  });

  it("answers by dense slot as by id, and bumps the slot epoch when a slot is assigned or freed", () => {
    const index = createPrefixIndex();
    assert.equal(index.slotOf("a"), -1);
    const e0 = index.slotEpoch;
    index.applyEvent("a", 1n, stored(seq, local, 0, 6));
    index.applyEvent("b", 1n, stored(seq, local, 0, 3));
    index.applyEvent("c", 1n, stored(other, local, 0, 2));
    const e1 = index.slotEpoch;
    assert.notEqual(e1, e0);
    const view = index.matchPrefix(seq);
    for (const w of ["a", "b", "c", "unknown"]) {
      assert.equal(view.depthAt(index.slotOf(w)), view.get(w) ?? 0, w);
    }
    assert.equal(view.depthAt(-1), 0);
    assert.equal(view.depthAt(10_000), 0);
    index.applyEvent("a", 2n, stored(seq, local, 0, 1)); // no slot change
    assert.equal(index.slotEpoch, e1);
    const slotB = index.slotOf("b");
    index.removeWorker("b");
    assert.notEqual(index.slotEpoch, e1);
    assert.equal(index.slotOf("b"), -1);
    index.applyEvent("d", 1n, stored(seq, local, 0, 4)); // takes b's slot
    assert.equal(index.slotOf("d"), slotB);
    assert.equal(index.matchPrefix(seq).depthAt(slotB), 4);
  });

  it("leaves stale workers out", () => {
    const index = createPrefixIndex({ gapPolicy: "mark-stale" });
    index.applyEvent("a", 1n, stored(seq, local, 0, 4));
    index.applyEvent("b", 1n, stored(seq, local, 0, 2));
    index.applyEvent("a", 5n, stored(seq, local, 4, 5)); // gap: a is stale
    const view = index.matchPrefix(seq);
    assert.equal(view.get("a"), undefined);
    assert.equal(view.get("b"), 2);
    assert.equal(view.size, 1);
  });
});

describe("prefix index: hash table collisions", () => {
  it("finds, deletes and re-finds keys that share one home slot", () => {
    // With 16 slots, keys 1..n collide often; take 6 keys with the same home, computed the way the
    // index mixes them (lo = value, hi = 0 for values < 2^32 on a little-endian host), so deletions in
    // the middle of a probe chain exercise the backward shift.
    const home = (l: number) => {
      let x = Math.imul(l ^ Math.imul(0, 0x85ebca6b), 0x9e3779b1);
      x ^= x >>> 15;
      return x & 15;
    };
    const colliding: bigint[] = [];
    for (let v = 1; colliding.length < 6; v++) if (home(v) === 3) colliding.push(BigInt(v));
    const index = createPrefixIndex({ initialCapacityBlocks: 8 });
    // One prompt per key so each is a first block; plus two more unrelated keys.
    for (const [i, h] of colliding.entries()) {
      index.applyEvent("a", BigInt(i + 1), {
        type: "stored",
        parentHash: null,
        blockHashes: [h],
        tokenHashes: null,
      });
    }
    for (const h of colliding) assert.equal(index.matchPrefix([h]).get("a"), 1);
    // Delete from the middle and the head of the chain; the others must stay reachable.
    index.applyEvent("a", 7n, { type: "removed", blockHashes: [colliding[2]!, colliding[0]!] });
    for (const [i, h] of colliding.entries()) {
      assert.equal(index.matchPrefix([h]).get("a"), i === 0 || i === 2 ? undefined : 1, `key ${i}`);
    }
    assert.equal(index.stats().blocks, 4);
    // Growth (more than 8 keys into 16 slots) rehashes the chain; all survivors stay reachable.
    const more = Array.from({ length: 20 }, (_, i) => BigInt(1_000_000 + i));
    index.applyEvent("a", 8n, { type: "stored", parentHash: null, blockHashes: more, tokenHashes: null });
    for (const [i, h] of colliding.entries()) {
      assert.equal(index.matchPrefix([h]).get("a"), i === 0 || i === 2 ? undefined : 1, `key ${i}`);
    }
    assert.equal(index.findMatches(more).get("a"), 20);
    assert.equal(index.stats().blocks, 24);
  });
});
