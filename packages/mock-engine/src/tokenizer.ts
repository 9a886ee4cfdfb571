import { Tiktoken } from "js-tiktoken/lite";
import cl100kBase from "js-tiktoken/ranks/cl100k_base";

/**
 * Text ↔ token ids for the mock engine. A real BPE tokenizer (OpenAI's `cl100k_base`, bundled
 * with js-tiktoken, so no network) makes shared text prefixes produce shared token prefixes,
 * and therefore shared KV blocks, as they would on a real engine.
 */
export interface Tokenizer {
  /** Token ids of `text`; special-token markers in user text are treated as plain text. */
  encode(text: string): number[];
  /** Text of one generated token. */
  decodeToken(tokenId: number): string;
  /** Vocabulary bound: valid token ids are `0 .. vocabSize - 1`. */
  readonly vocabSize: number;
}

/** cl100k_base has 100 256 mergeable ranks plus special tokens up to id 100 276. */
export const CL100K_VOCAB_SIZE = 100_277;

let shared: Tiktoken | undefined;

/** The process-wide cl100k_base tokenizer (building its rank table takes ~100 ms, so once). */
export function cl100kTokenizer(): Tokenizer {
  shared ??= new Tiktoken(cl100kBase);
  const bpe = shared;
  const decoded = new Map<number, string>();
  return {
    // No special tokens allowed and none disallowed: a prompt containing "<|endoftext|>" is
    // ordinary text, never an exception and never a control token.
    encode: (text) => bpe.encode(text, [], []),
    decodeToken: (tokenId) => {
      let text = decoded.get(tokenId);
      if (text === undefined) {
        text = bpe.decode([tokenId]);
        decoded.set(tokenId, text);
      }
      return text;
    },
    vocabSize: CL100K_VOCAB_SIZE,
  };
}

/**
 * Deterministic output text: the mock "model" cycles through the tokens of a fixed sentence,
 * so outputs are readable, identical across runs, and each token decodes on its own.
 */
export function fillerTokens(tokenizer: Tokenizer): readonly number[] {
  return tokenizer.encode(" The quick brown fox jumps over the lazy dog.");
}
