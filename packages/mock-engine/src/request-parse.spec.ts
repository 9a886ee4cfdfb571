import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiError } from "./errors.js";
import { type ParseLimits, parseGenerationRequest, parseJsonBody } from "./request-parse.js";
import { cl100kTokenizer } from "./tokenizer.js";

const tokenizer = cl100kTokenizer();
const limits: ParseLimits = {
  model: "mock-llm",
  maxModelLen: 1000,
  defaultMaxTokens: 16,
  forceOutputTokens: 0,
  kvCapacityTokens: 10_000,
  tokenizer,
};

function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ApiError, `expected ApiError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected an ApiError");
}

describe("parseJsonBody", () => {
  it("rejects malformed JSON and non-objects with 400 invalid_json", () => {
    for (const text of ["{bad", "[1,2]", "42", "null", ""]) {
      const error = apiError(() => parseJsonBody(text));
      assert.equal(error.status, 400);
      assert.equal(error.code, "invalid_json");
      assert.deepEqual(Object.keys(error.toJSON().error).sort(), ["code", "message", "param", "type"]);
    }
  });
});

describe("parseGenerationRequest", () => {
  it("tokenizes text prompts so a shared text prefix is a shared token prefix", () => {
    const a = parseGenerationRequest(
      "completions",
      { prompt: "The same long preamble. Question one?" },
      limits,
    );
    const b = parseGenerationRequest(
      "completions",
      { prompt: "The same long preamble. Another question?" },
      limits,
    );
    assert.deepEqual(a.promptTokens.slice(0, 5), b.promptTokens.slice(0, 5));
    assert.equal(a.outputTokens, 16, "vLLM's completions default");
    assert.equal(a.finishReason, "length");
    assert.equal(a.stream, false);
  });

  it("accepts token-id prompts as given and rejects ids outside the vocabulary", () => {
    const r = parseGenerationRequest("completions", { prompt: [1, 2, 3], max_tokens: 4 }, limits);
    assert.deepEqual(r.promptTokens, [1, 2, 3]);
    assert.equal(r.outputTokens, 4);
    for (const prompt of [[1, -1], [1, 2.5], [1, "a"], [tokenizer.vocabSize]]) {
      assert.equal(apiError(() => parseGenerationRequest("completions", { prompt }, limits)).param, "prompt");
    }
  });

  it("rejects batched prompts with a clear 400", () => {
    for (const prompt of [
      ["a", "b"],
      [[1], [2]],
    ]) {
      const error = apiError(() => parseGenerationRequest("completions", { prompt }, limits));
      assert.equal(error.status, 400);
      assert.equal(error.code, "unsupported_batch");
    }
  });

  it("rejects wrong types with the field named", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ prompt: "x", max_tokens: "5" }, "max_tokens"],
      [{ prompt: "x", max_tokens: 0 }, "max_tokens"],
      [{ prompt: "x", stream: "yes" }, "stream"],
      [{ prompt: "x", n: 2 }, "n"],
      [{ prompt: 5 }, "prompt"],
      [{ prompt: "" }, "prompt"],
      [{ prompt: "x", stream_options: [] }, "stream_options"],
      [{ prompt: "x", max_tokens: 2, min_tokens: 3 }, "min_tokens"],
    ];
    for (const [body, param] of cases) {
      const error = apiError(() => parseGenerationRequest("completions", body, limits));
      assert.equal(error.status, 400, JSON.stringify(body));
      assert.equal(error.param, param, JSON.stringify(body));
    }
  });

  it("404s an unknown model and accepts a missing one", () => {
    const error = apiError(() =>
      parseGenerationRequest("completions", { model: "gpt-4", prompt: "x" }, limits),
    );
    assert.equal(error.status, 404);
    assert.equal(error.code, "model_not_found");
    assert.equal(parseGenerationRequest("completions", { prompt: "x" }, limits).promptTokens.length, 1);
  });

  it("applies the chat template and prefers max_completion_tokens", () => {
    const r = parseGenerationRequest(
      "chat",
      {
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", content: [{ type: "text", text: "hi" }] },
        ],
        max_tokens: 9,
        max_completion_tokens: 3,
        stream: true,
        stream_options: { include_usage: true },
      },
      limits,
    );
    assert.equal(r.outputTokens, 3);
    assert.equal(r.stream, true);
    assert.equal(r.includeUsage, true);
    assert.ok(r.promptTokens.length > 4);
    for (const messages of [
      [],
      "hi",
      [{ content: "no role" }],
      [{ role: "user", content: [{ type: "image_url" }] }],
    ]) {
      assert.equal(apiError(() => parseGenerationRequest("chat", { messages }, limits)).status, 400);
    }
  });

  it("rejects requests longer than the context or the KV cache", () => {
    const tooLong = apiError(() =>
      parseGenerationRequest("completions", { prompt: [1, 2, 3], max_tokens: 998 }, limits),
    );
    assert.equal(tooLong.code, "context_length_exceeded");
    const kv = apiError(() =>
      parseGenerationRequest(
        "completions",
        { prompt: [1, 2, 3], max_tokens: 100 },
        { ...limits, kvCapacityTokens: 64 },
      ),
    );
    assert.equal(kv.code, "context_length_exceeded");
  });

  it("forces the output length for benchmarks, capped by an explicit max_tokens and raised by min_tokens", () => {
    const forced = { ...limits, forceOutputTokens: 50 };
    const free = parseGenerationRequest("completions", { prompt: "x" }, forced);
    assert.equal(free.outputTokens, 50);
    assert.equal(free.finishReason, "stop");
    const capped = parseGenerationRequest("completions", { prompt: "x", max_tokens: 20 }, forced);
    assert.equal(capped.outputTokens, 20);
    assert.equal(capped.finishReason, "length");
    const raised = parseGenerationRequest(
      "chat",
      { messages: [{ role: "user", content: "x" }], min_tokens: 70 },
      forced,
    );
    assert.equal(raised.outputTokens, 70);
  });
});
