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

function checkToken(t: number, index: number): void {
  if (!Number.isInteger(t) || t < 0 || t > 0xffff_ffff) {
    throw new RangeError(`token id at index ${index} is not a u32: ${t}`);
  }
}

/** Local hashes of the full blocks of `tokens` (Dynamo `compute_block_hash_for_seq`). */
export function computeLocalBlockHashes(
  tokens: Uint32Array | readonly number[],
  blockSize: number,
): bigint[] {
  checkBlockSize(blockSize);
  const fullBlocks = Math.floor(tokens.length / blockSize);
  const out = new Array<bigint>(fullBlocks);
  if (tokens instanceof Uint32Array && LITTLE_ENDIAN) {
    // Zero-copy: a Uint32Array on a little-endian host already holds the LE bytes Dynamo hashes.
    for (let b = 0; b < fullBlocks; b++) {
      const bytes = new Uint8Array(tokens.buffer, tokens.byteOffset + b * blockSize * 4, blockSize * 4);
      out[b] = xxh3.xxh64(bytes, XXH3_SEED);
    }
    return out;
  }
  const bytes = new Uint8Array(blockSize * 4);
  const view = new DataView(bytes.buffer);
  for (let b = 0; b < fullBlocks; b++) {
    const base = b * blockSize;
    for (let i = 0; i < blockSize; i++) {
      const t = tokens[base + i]!;
      checkToken(t, base + i);
      view.setUint32(i * 4, t, true);
    }
    out[b] = xxh3.xxh64(bytes, XXH3_SEED);
  }
  return out;
}

const pairBytes = new Uint8Array(16);
const pairView = new DataView(pairBytes.buffer);

/** Dynamo `compute_next_sequence_hash`: chains a block's local hash onto its parent's sequence hash. */
export function nextSequenceHash(parentSequenceHash: bigint, localHash: bigint): bigint {
  pairView.setBigUint64(0, BigInt.asUintN(64, parentSequenceHash), true);
  pairView.setBigUint64(8, BigInt.asUintN(64, localHash), true);
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
