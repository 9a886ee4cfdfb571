// Prompt → token ids → Dynamo sequence hashes. Text is tokenized exactly as `sluice mock-engine`
// tokenizes it (js-tiktoken cl100k_base, no special tokens), so a shared text prefix yields the same
// block hashes the engine published in its KV events. Chat requests must arrive as the templated
// text the engine sees (`chatPromptText`), or as token ids.
import { applyChatTemplate, computeBlockHashes } from "@sluice/core";
import { cl100kTokenizer, type Tokenizer } from "@sluice/mock-engine";
import { RouteRequestError } from "./errors.js";

/** The engine's chat template (one copy, in `@sluice/core`): chat prompts hash as the engine sees them. */
export const chatPromptText = applyChatTemplate;

export interface PromptInput {
  tokenIds?: readonly number[] | undefined;
  text?: string | undefined;
}

let tokenizer: Tokenizer | undefined;

/** Token ids of the prompt. Throws RouteRequestError when there is none. */
export function promptTokenIds(prompt: PromptInput): readonly number[] {
  if (prompt.tokenIds !== undefined) return prompt.tokenIds;
  if (prompt.text !== undefined) {
    tokenizer ??= cl100kTokenizer();
    return tokenizer.encode(prompt.text);
  }
  throw new RouteRequestError("the request has no prompt: set token_ids or text");
}

/** Sequence hashes of the full blocks (the tail block is not hashed, as in Dynamo). */
export function promptBlockHashes(tokens: readonly number[], blockSize: number): bigint[] {
  try {
    return computeBlockHashes(tokens, blockSize).sequenceHashes;
  } catch (error) {
    throw new RouteRequestError(`cannot hash the prompt: ${(error as Error).message}`, { cause: error });
  }
}
