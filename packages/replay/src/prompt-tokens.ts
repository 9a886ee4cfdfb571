// Rebuilds a trace request's prompt as token ids so that the prefix sharing the trace records survives on a
// real engine. Mooncake: every `hash_ids` entry (a 512-token trace block) expands to a fixed block of token
// ids that depends only on the id, so "same id at the same position → same tokens" — and therefore the same
// KV blocks at any engine block size, exactly as the trace README asks. Traces without prefix information
// (Azure) get prompts unique to the request. Tokens are drawn from [0, vocabSize) with a 32-bit mixer:
// cheap enough to build per request at send time, so no prompt is kept in memory between requests.

import { MOONCAKE_TRACE_BLOCK_TOKENS, type SimRequest } from "@sluice/sim";

/** Token ids below this are valid in every tokenizer a replay is likely to meet (Llama 2 has 32 000). */
export const DEFAULT_PROMPT_VOCAB_SIZE = 32_000;

function mix32(input: number): number {
  let h = input >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Token `position` of the block identified by (`blockKey`, `salt`): same inputs → same token. */
function blockToken(blockKey: number, salt: number, position: number, vocabSize: number): number {
  return (
    mix32(mix32(blockKey ^ Math.imul(salt, 0x9e3779b1)) + Math.imul(position + 1, 0x85ebca6b)) % vocabSize
  );
}

export interface PromptTokenOptions {
  vocabSize: number;
  /** Tokens per trace block (`hash_ids` granularity). */
  traceBlockTokens: number;
  /** Distinguishes replays that must not share a cache (different seeds); same seed → same prompts. */
  seed: number;
}

export const DEFAULT_PROMPT_TOKEN_OPTIONS: Readonly<PromptTokenOptions> = Object.freeze({
  vocabSize: DEFAULT_PROMPT_VOCAB_SIZE,
  traceBlockTokens: MOONCAKE_TRACE_BLOCK_TOKENS,
  seed: 0,
});

/**
 * The request's prompt as token ids, `promptTokens` long. Trace blocks beyond `hashIds` (a malformed but
 * seen case) and prompts without hash ids are unique to the request (keyed by its index).
 */
export function promptTokenIds(
  request: Pick<SimRequest, "index" | "promptTokens" | "hashIds">,
  options: PromptTokenOptions = DEFAULT_PROMPT_TOKEN_OPTIONS,
): number[] {
  const { vocabSize, traceBlockTokens, seed } = options;
  const out = new Array<number>(request.promptTokens);
  const hashIds = request.hashIds;
  for (let start = 0, block = 0; start < request.promptTokens; start += traceBlockTokens, block++) {
    const shared = hashIds !== undefined && block < hashIds.length;
    // Shared blocks are keyed by their id alone; unique ones by (request, block), salted apart from ids.
    const key = shared ? (hashIds[block] as number) : mix32(request.index + 0x5bd1e995) ^ block;
    const salt = shared ? seed : seed + 0x68e31da4;
    const end = Math.min(start + traceBlockTokens, request.promptTokens);
    for (let t = start; t < end; t++) out[t] = blockToken(key, salt, t - start, vocabSize);
  }
  return out;
}
