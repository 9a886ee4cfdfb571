import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_PROMPT_TOKEN_OPTIONS, promptTokenIds } from "./prompt-tokens.js";

const opts = { ...DEFAULT_PROMPT_TOKEN_OPTIONS, traceBlockTokens: 8 };

describe("promptTokenIds", () => {
  it("has the prompt's length, with token ids inside the vocabulary", () => {
    const tokens = promptTokenIds({ index: 0, promptTokens: 21, hashIds: [4, 5, 6] }, opts);
    assert.equal(tokens.length, 21);
    assert.ok(tokens.every((t) => Number.isInteger(t) && t >= 0 && t < opts.vocabSize));
  });

  it("gives equal hash ids equal token blocks, so shared trace prefixes stay shared", () => {
    const a = promptTokenIds({ index: 0, promptTokens: 24, hashIds: [1, 2, 3] }, opts);
    const b = promptTokenIds({ index: 9, promptTokens: 20, hashIds: [1, 2, 7] }, opts);
    assert.deepEqual(a.slice(0, 16), b.slice(0, 16));
    assert.notDeepEqual(a.slice(16, 20), b.slice(16, 20));
    // A partial last block is the prefix of the full block with the same id.
    const c = promptTokenIds({ index: 3, promptTokens: 19, hashIds: [1, 2, 3] }, opts);
    assert.deepEqual(c, a.slice(0, 19));
  });

  it("makes prompts without hash ids (or past them) unique per request, and repeatable", () => {
    const a = promptTokenIds({ index: 1, promptTokens: 16, hashIds: undefined }, opts);
    const b = promptTokenIds({ index: 2, promptTokens: 16, hashIds: undefined }, opts);
    assert.notDeepEqual(a.slice(0, 8), b.slice(0, 8));
    assert.deepEqual(a, promptTokenIds({ index: 1, promptTokens: 16, hashIds: undefined }, opts));
    const past = promptTokenIds({ index: 1, promptTokens: 16, hashIds: [1] }, opts);
    const past2 = promptTokenIds({ index: 2, promptTokens: 16, hashIds: [1] }, opts);
    assert.deepEqual(past.slice(0, 8), past2.slice(0, 8));
    assert.notDeepEqual(past.slice(8), past2.slice(8));
  });

  it("changes every prompt with the seed", () => {
    const a = promptTokenIds({ index: 0, promptTokens: 8, hashIds: [1] }, opts);
    const b = promptTokenIds({ index: 0, promptTokens: 8, hashIds: [1] }, { ...opts, seed: 5 });
    assert.notDeepEqual(a, b);
  });
});
