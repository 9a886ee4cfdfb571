// KV block hashing identical to NVIDIA Dynamo, so KV events from real Dynamo workers and from our
// engines index the same way. Confirmed from ai-dynamo/dynamo `lib/llm/src/kv_router/indexer.rs`
// (`compute_block_hash_for_seq`, `compute_seq_hash_for_block`) and `lib/kv-router/src/protocols.rs`
// (`XXH3_SEED = 1337`, `compute_next_sequence_hash`):
//   - tokens are cut with `chunks_exact(block_size)`: only FULL blocks are hashed, the tail is not;
//   - local block hash  = xxh3_64_with_seed(little-endian u32 bytes of the block's token ids, 1337);
//   - sequence hash[0]  = local hash[0];
//     sequence hash[i]  = xxh3_64_with_seed(LE u64 bytes of [sequence hash[i−1], local hash[i]], 1337).
// (LoRA / multimodal extras that newer Dynamo mixes in are out of scope: plain text models only.)
import { xxh3 } from "@node-rs/xxhash";

/** Dynamo's `XXH3_SEED`. */
export const XXH3_SEED = 1337n;

export interface BlockHashes {
  /** Dynamo `LocalBlockHash` (`tokens_hash` in KV events): content of one block only. */
  localHashes: bigint[];
  /** Dynamo `SequenceHash` (`block_hash` in KV events): chained over every block up to this one. */
  sequenceHashes: bigint[];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function checkBlockSize(blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 1) {
    throw new RangeError(`block size must be an integer ≥ 1, got ${blockSize}`);
  }
}

function tokenError(t: unknown, index: number): RangeError {
  return new RangeError(`token id at index ${index} is not a u32: ${String(t)}`);
}

// Reused across calls (hashing is synchronous, never re-entered): the prompt's tokens as
// little-endian u32 bytes, and one Uint8Array view per block over them, made once per block size.
// Creating a typed-array view per block cost more than copying the whole prompt (memcpy) once, and
// the views were 128 short-lived objects per 8k-token prompt for the garbage collector.
let scratch = new Uint32Array(0);
let views: Uint8Array[] = [];
let viewsBlockSize = 0;

function blockViews(blockSize: number, fullBlocks: number, tokens: number): Uint8Array[] {
  if (scratch.length < tokens) {
    scratch = new Uint32Array(Math.max(tokens, scratch.length * 2, 1024));
    views = [];
  }
  if (viewsBlockSize !== blockSize) {
    views = [];
    viewsBlockSize = blockSize;
  }
  for (let b = views.length; b < fullBlocks; b++) {
    views.push(new Uint8Array(scratch.buffer, b * blockSize * 4, blockSize * 4));
  }
  return views;
}

/** Local hashes of the full blocks of `tokens` (Dynamo `compute_block_hash_for_seq`). */
export function computeLocalBlockHashes(
  tokens: Uint32Array | readonly number[],
  blockSize: number,
): bigint[] {
  checkBlockSize(blockSize);
  const fullBlocks = Math.floor(tokens.length / blockSize);
  const out = new Array<bigint>(fullBlocks);
  const hashed = fullBlocks * blockSize;
  if (LITTLE_ENDIAN) {
    const blocks = blockViews(blockSize, fullBlocks, hashed);
    if (tokens instanceof Uint32Array) {
      // A Uint32Array on a little-endian host already holds the LE bytes Dynamo hashes.
      scratch.set(hashed === tokens.length ? tokens : tokens.subarray(0, hashed));
    } else {
      for (let i = 0; i < hashed; i++) {
        const t = tokens[i]!;
        // `>>> 0` is the identity exactly for integers in [0, 2^32): the u32 check, without a call.
        if (t >>> 0 !== t) throw tokenError(t, i);
        scratch[i] = t;
      }
    }
    for (let b = 0; b < fullBlocks; b++) out[b] = xxh3.xxh64(blocks[b]!, XXH3_SEED);
    return out;
  }
  const bytes = new Uint8Array(blockSize * 4);
  const view = new DataView(bytes.buffer);
  for (let b = 0; b < fullBlocks; b++) {
    const base = b * blockSize;
    for (let i = 0; i < blockSize; i++) {
      const t = tokens[base + i]!;
      if (t >>> 0 !== t) throw tokenError(t, base + i);
      view.setUint32(i * 4, t, true);
    }
    out[b] = xxh3.xxh64(bytes, XXH3_SEED);
  }
  return out;
}

const pairBytes = new Uint8Array(16);
const pairView = new DataView(pairBytes.buffer);
// On a little-endian host a BigUint64Array store is the LE u64 write Dynamo hashes, and cheaper than
// DataView.setBigUint64. Both reduce the value modulo 2^64 (ToBigUint64), as BigInt.asUintN(64) did.
const pairWords = new BigUint64Array(pairBytes.buffer);

/** Dynamo `compute_next_sequence_hash`: chains a block's local hash onto its parent's sequence hash. */
export function nextSequenceHash(parentSequenceHash: bigint, localHash: bigint): bigint {
  if (LITTLE_ENDIAN) {
    pairWords[0] = parentSequenceHash;
    pairWords[1] = localHash;
  } else {
    pairView.setBigUint64(0, parentSequenceHash, true);
    pairView.setBigUint64(8, localHash, true);
  }
  return xxh3.xxh64(pairBytes, XXH3_SEED);
}

/**
 * Sequence hashes for a list of local hashes. Also how the simulator turns a trace's per-block ids
 * (Mooncake `hash_ids`, as `BigInt(id)`) into chained identities for the engine model.
 */
export function chainSequenceHashes(localHashes: readonly bigint[]): bigint[] {
  const out = new Array<bigint>(localHashes.length);
  let parent: bigint | undefined;
  for (let i = 0; i < localHashes.length; i++) {
    const local = localHashes[i]!;
    parent = parent === undefined ? local : nextSequenceHash(parent, local);
    out[i] = parent;
  }
  return out;
}

/** Local and sequence hashes of the full blocks of `tokens`, exactly as Dynamo computes them. */
export function computeBlockHashes(tokens: Uint32Array | readonly number[], blockSize: number): BlockHashes {
  const localHashes = computeLocalBlockHashes(tokens, blockSize);
  return { localHashes, sequenceHashes: chainSequenceHashes(localHashes) };
}
