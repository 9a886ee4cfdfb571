import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { xxh3 } from "@node-rs/xxhash";
import {
  chainSequenceHashes,
  computeBlockHashes,
  computeLocalBlockHashes,
  nextSequenceHash,
  XXH3_SEED,
} from "./block-hash.js";

// Dynamo's own test vectors (ai-dynamo/dynamo `lib/llm/src/tokens.rs` tests: HASH_1_4, HASH_5_8,
// SEQ_HASH_5_8; the third rolling hash of tokens 1..12 with block size 4 from a Dynamo trace audit).
const HASH_1_4 = 14643705804678351452n;
const HASH_5_8 = 16777012769546811212n;
const SEQ_HASH_5_8 = 4945711292740353085n;
const SEQ_HASH_9_12 = 12583592247330656132n;

/** Independent construction: streaming hasher over hand-built little-endian bytes. */
function handLocalHash(tokens: number[]): bigint {
  const buf = Buffer.alloc(tokens.length * 4);
  for (const [i, t] of tokens.entries()) buf.writeUInt32LE(t, i * 4);
  return xxh3.Xxh3.withSeed(1337n).update(buf).digest();
}
function handChain(parent: bigint, local: bigint): bigint {
  const buf = Buffer.alloc(16);
  buf.writeBigUInt64LE(parent, 0);
  buf.writeBigUInt64LE(local, 8);
  return xxh3.Xxh3.withSeed(1337n).update(buf).digest();
}

describe("Dynamo block hashing", () => {
  it("matches Dynamo's published vectors, full blocks only", () => {
    const { localHashes, sequenceHashes } = computeBlockHashes(
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
      4,
    );
    assert.equal(localHashes.length, 3, "trailing partial block [13] is not hashed");
    assert.equal(localHashes[0], HASH_1_4);
    assert.equal(localHashes[1], HASH_5_8);
    assert.deepEqual(sequenceHashes, [HASH_1_4, SEQ_HASH_5_8, SEQ_HASH_9_12]);
  });

  it("agrees with an independent hand-built byte construction", () => {
    const tokens = Array.from({ length: 64 * 3 + 17 }, (_, i) => (i * 2654435761) >>> 0);
    const { localHashes, sequenceHashes } = computeBlockHashes(tokens, 64);
    const expectLocal = [0, 1, 2].map((b) => handLocalHash(tokens.slice(b * 64, b * 64 + 64)));
    assert.deepEqual(localHashes, expectLocal);
    const s0 = expectLocal[0]!;
    const s1 = handChain(s0, expectLocal[1]!);
    const s2 = handChain(s1, expectLocal[2]!);
    assert.deepEqual(sequenceHashes, [s0, s1, s2]);
  });

  it("gives the same result for Uint32Array (zero-copy path) and number[] inputs", () => {
    const tokens = Array.from({ length: 100 }, (_, i) => 0xffff_ffff - i * 7);
    const arr = new Uint32Array(200);
    arr.set(tokens, 50); // non-zero byteOffset view
    assert.deepEqual(computeBlockHashes(arr.subarray(50, 150), 16), computeBlockHashes(tokens, 16));
  });

  it("chains arbitrary local hashes (simulator path) like the token path", () => {
    assert.deepEqual(chainSequenceHashes([HASH_1_4, HASH_5_8]), [HASH_1_4, SEQ_HASH_5_8]);
    assert.equal(nextSequenceHash(HASH_1_4, HASH_5_8), SEQ_HASH_5_8);
    assert.deepEqual(chainSequenceHashes([]), []);
    assert.equal(XXH3_SEED, 1337n);
  });

  it("rejects bad block sizes and non-u32 token ids", () => {
    assert.throws(() => computeLocalBlockHashes([1, 2], 0), RangeError);
    assert.throws(() => computeLocalBlockHashes([1, -2], 2), RangeError);
    assert.throws(() => computeLocalBlockHashes([1, 2 ** 32], 2), RangeError);
    assert.throws(() => computeLocalBlockHashes([1, 1.5], 2), RangeError);
    assert.throws(() => computeLocalBlockHashes([1, Number.NaN], 2), RangeError);
    assert.throws(() => computeLocalBlockHashes([1, "7" as unknown as number], 2), RangeError);
    assert.throws(() => computeLocalBlockHashes([1, undefined as unknown as number], 2), RangeError);
    // A long prompt, then a short one: each hashes on its own (no state carried between calls).
    const long = Array.from({ length: 40_000 }, (_, i) => (i * 7919) % 100_000);
    const expectedShort = computeLocalBlockHashes(Uint32Array.from(long.slice(0, 8)), 4);
    assert.equal(computeLocalBlockHashes(long, 4).length, 10_000);
    assert.deepEqual(computeLocalBlockHashes(long.slice(0, 8), 4), expectedShort);
    assert.deepEqual(computeLocalBlockHashes([1, 2, 3], 4), [], "shorter than one block: nothing hashed");
  });
});
