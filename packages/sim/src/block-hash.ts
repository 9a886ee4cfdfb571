// Expands a Mooncake trace's `hash_ids` (one id per 512-token block) into chained block hashes at the
// ENGINE's block size, without materialising token ids. An engine block's content is fully described by
// the trace blocks it covers and its offset inside the first of them ("same id → same tokens"), and its
// hash chains its parent's exactly as the engine chains token-block hashes (DESIGN §5). So two requests
// share engine block j iff they share every trace block up to and including the ones block j touches —
// the same prefix sharing the trace encodes, preserved at any engine block size.
//
// Hashes are 53-bit integers (exact in a JS number) built from two 32-bit murmur3-style lanes: far faster
// than xxh3 over real token ids and collision-free in practice for the ~10^7 blocks of a trace.

/** Mooncake traces use 512-token blocks. */
export const MOONCAKE_TRACE_BLOCK_TOKENS = 512;

const TWO_POW_32 = 4294967296;
const ROOT_HASH = 1337;

function fmix32(input: number): number {
  let h = input;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Chains `parent` (a 53-bit hash) with a content key made of two 32-bit words. */
export function chainHash(parent: number, contentA: number, contentB: number): number {
  const parentLo = parent >>> 0;
  const parentHi = Math.floor(parent / TWO_POW_32) >>> 0;
  const lo = fmix32(Math.imul(parentLo ^ fmix32(contentA), 0xcc9e2d51) ^ (contentB + 0x1b873593));
  const hi = fmix32(Math.imul(parentHi ^ lo, 0x1b873593) ^ fmix32(contentB ^ 0xe6546b64) ^ contentA);
  return (hi & 0x1fffff) * TWO_POW_32 + lo;
}

export interface BlockExpansionOptions {
  /** Tokens per block in the trace (`hash_ids` granularity). */
  traceBlockTokens: number;
  /** Tokens per KV block in the simulated engine. */
  engineBlockTokens: number;
  /**
   * Also hash the trailing partial engine block. Engines only hash full blocks (false, the default); the
   * README's "36.6% of blocks are prefix hits" counts the partial last trace block too (true).
   */
  includePartialBlock?: boolean;
}

/**
 * Chained engine-block hashes for a prompt of `promptTokens` tokens whose trace blocks are `hashIds`.
 * Tokens past the last trace block (a malformed but seen case) are treated as unique to this request via
 * `uniqueSalt`.
 */
export function expandBlockHashes(
  hashIds: readonly number[],
  promptTokens: number,
  options: BlockExpansionOptions,
  uniqueSalt = 0,
): number[] {
  const { traceBlockTokens, engineBlockTokens } = options;
  const blockCount = options.includePartialBlock
    ? Math.ceil(promptTokens / engineBlockTokens)
    : Math.floor(promptTokens / engineBlockTokens);
  const out = new Array<number>(blockCount);
  let parent = ROOT_HASH;
  for (let j = 0; j < blockCount; j++) {
    const start = j * engineBlockTokens;
    const end = Math.min(start + engineBlockTokens, promptTokens);
    const firstTrace = Math.floor(start / traceBlockTokens);
    const lastTrace = Math.floor((end - 1) / traceBlockTokens);
    // Key: ids of every covered trace block, folded, plus the offset into the first one and the length
    // (a partial block differs from the full block with the same start).
    let key = 0;
    for (let k = firstTrace; k <= lastTrace; k++) {
      const id = k < hashIds.length ? (hashIds[k] as number) : -1 - uniqueSalt - k;
      key = fmix32((Math.imul(key, 31) + (id >>> 0) + Math.floor(id / TWO_POW_32)) >>> 0);
    }
    const shape = ((start - firstTrace * traceBlockTokens) << 12) ^ (end - start);
    parent = chainHash(parent, key, shape);
    out[j] = parent;
  }
  return out;
}

/** Hashes for a prompt with no shared prefix (Azure traces): seeded by a request-unique id. */
export function uniqueBlockHashes(
  requestSalt: number,
  promptTokens: number,
  engineBlockTokens: number,
): number[] {
  const blockCount = Math.floor(promptTokens / engineBlockTokens);
  const out = new Array<number>(blockCount);
  let parent = chainHash(ROOT_HASH, 0x5a17ce ^ requestSalt, Math.floor(requestSalt / TWO_POW_32));
  for (let j = 0; j < blockCount; j++) {
    parent = chainHash(parent, requestSalt >>> 0, j);
    out[j] = parent;
  }
  return out;
}
