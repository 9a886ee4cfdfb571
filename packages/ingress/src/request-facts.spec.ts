import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { estimatePromptTokensFromBytes } from "@sluice/core";
import { HttpError } from "./errors.js";
import { CHAT_MESSAGE_OVERHEAD_TOKENS, parseRequestFacts } from "./request-facts.js";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof HttpError);
    assert.equal(error.status, 400);
    return `${error.code}:${error.param}`;
  }
  return "no error";
}

describe("parseRequestFacts", () => {
  it("estimates text prompts from the body size and counts token arrays exactly", () => {
    const body = JSON.stringify({ model: "m", prompt: "hello world", max_tokens: 7 });
    const text = parseRequestFacts("completions", body).facts;
    assert.equal(text.promptTokens, estimatePromptTokensFromBytes(Buffer.byteLength(body)));
    assert.equal(text.maxTokens, 7);
    assert.equal(text.stream, false);
    const tokens = parseRequestFacts(
      "completions",
      JSON.stringify({ model: "m", prompt: [1, 2, 3], stream: true }),
    );
    assert.equal(tokens.facts.promptTokens, 3);
    assert.equal(tokens.facts.maxTokens, undefined);
    assert.equal(tokens.facts.stream, true);
    const batch = parseRequestFacts("completions", JSON.stringify({ model: "m", prompt: [[1, 2], [3]] }));
    assert.equal(batch.facts.promptTokens, 3);
  });

  it("adds a per-message overhead for chat and prefers max_completion_tokens", () => {
    const body = JSON.stringify({
      model: "m",
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: null },
      ],
      max_tokens: 5,
      max_completion_tokens: 9,
    });
    const { facts } = parseRequestFacts("chat", body);
    assert.equal(
      facts.promptTokens,
      estimatePromptTokensFromBytes(Buffer.byteLength(body)) + 2 * CHAT_MESSAGE_OVERHEAD_TOKENS,
    );
    assert.equal(facts.maxTokens, 9);
  });

  it("refuses malformed bodies and wrong field types with the field named", () => {
    assert.equal(
      code(() => parseRequestFacts("completions", "{")),
      "invalid_json:null",
    );
    assert.equal(
      code(() => parseRequestFacts("completions", "[1]")),
      "invalid_json:null",
    );
    assert.equal(
      code(() => parseRequestFacts("completions", '{"prompt":"x"}')),
      "missing_model:model",
    );
    assert.equal(
      code(() => parseRequestFacts("completions", '{"model":"m","prompt":[1.5]}')),
      "invalid_value:prompt",
    );
    assert.equal(
      code(() => parseRequestFacts("completions", '{"model":"m","prompt":[]}')),
      "invalid_value:prompt",
    );
    assert.equal(
      code(() => parseRequestFacts("completions", '{"model":"m","prompt":"x","max_tokens":0}')),
      "invalid_value:max_tokens",
    );
    assert.equal(
      code(() => parseRequestFacts("chat", '{"model":"m","messages":[{"role":1}]}')),
      "invalid_value:messages[0].role",
    );
    assert.equal(
      code(() => parseRequestFacts("chat", '{"model":"m","messages":[{"role":"user","content":5}]}')),
      "invalid_value:messages[0].content",
    );
  });
});
