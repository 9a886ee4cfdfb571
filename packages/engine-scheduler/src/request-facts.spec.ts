import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { requestFacts } from "./request-facts.js";

const body = (o: object) => Buffer.from(JSON.stringify(o));

describe("requestFacts", () => {
  it("reads the output limit the ITL guard spreads a newcomer's prefill over", () => {
    assert.equal(
      requestFacts({}, body({ prompt: [1, 2, 3], max_tokens: 64 }), false, "standard").maxTokens,
      64,
    );
    const chat = { messages: [{ role: "user", content: "hi" }], max_tokens: 10, max_completion_tokens: 20 };
    assert.equal(requestFacts({}, body(chat), true, "standard").maxTokens, 20);
    assert.equal(requestFacts({}, body({ prompt: "x" }), false, "standard").maxTokens, undefined);
    // Left for the engine to refuse; the guard then assumes a length.
    assert.equal(
      requestFacts({}, body({ prompt: "x", max_tokens: -1 }), false, "standard").maxTokens,
      undefined,
    );
  });

  it("takes class, prompt size, prefix overlap and upstream time from the headers", () => {
    const facts = requestFacts(
      {
        "x-sluice-class": "critical",
        "x-sluice-prompt-tokens": "100",
        "x-sluice-cached-tokens": "64",
        "x-sluice-elapsed-ms": "12.5",
      },
      body({ prompt: "ignored for size", stream: true, model: "m" }),
      false,
      "standard",
    );
    assert.deepEqual(
      [
        facts.className,
        facts.promptTokens,
        facts.cachedTokens,
        facts.upstreamElapsedMs,
        facts.stream,
        facts.model,
      ],
      ["critical", 100, 64, 12.5, true, "m"],
    );
  });
});
