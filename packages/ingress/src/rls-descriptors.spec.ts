import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { RateLimitRequestSchema } from "@sluice/proto";
import { RlsRequestError } from "./errors.js";
import { MAX_RLS_HITS, parseRlsRequest } from "./rls-descriptors.js";

const request = (descriptors: [string, string][][], hitsAddend = 0) =>
  create(RateLimitRequestSchema, {
    domain: "sluice",
    hitsAddend,
    descriptors: descriptors.map((entries) => ({ entries: entries.map(([key, value]) => ({ key, value })) })),
  });

describe("parseRlsRequest", () => {
  it("merges the known keys of all descriptors and ignores the rest", () => {
    const facts = parseRlsRequest(
      request([
        [
          ["model", "m"],
          ["class", "critical"],
        ],
        [
          ["tenant", "acme"],
          ["generic_key", "x"],
          ["remote_address", "10.0.0.1"],
          ["prompt_bytes", "4000"],
          ["max_tokens", "64"],
        ],
        [["model", "m"]],
      ]),
    );
    assert.deepEqual(facts, {
      domain: "sluice",
      model: "m",
      requestClass: "critical",
      tenant: "acme",
      promptTokens: undefined,
      promptBytes: 4000,
      maxTokens: 64,
      hits: 1,
    });
  });

  it("honours hits_addend within its bound", () => {
    assert.equal(parseRlsRequest(request([[["model", "m"]]], 3)).hits, 3);
    assert.throws(() => parseRlsRequest(request([[["model", "m"]]], MAX_RLS_HITS + 1)), /hits_addend/);
  });

  it("refuses what it cannot judge with a message that says why", () => {
    const cases: [[string, string][][], RegExp][] = [
      [[], /no descriptors/],
      [[[]], /has no entries/],
      [[[["class", "critical"]]], /no descriptor entry `model`/],
      [[[["generic_key", "m"]]], /no descriptor entry `model`/],
      [[[["model", ""]]], /non-empty key and value/],
      [[[["model", "a"]], [["model", "b"]]], /model given twice/],
      [
        [
          [
            ["model", "m"],
            ["max_tokens", "-1"],
          ],
        ],
        /max_tokens="-1" must be an integer/,
      ],
      [
        [
          [
            ["model", "m"],
            ["prompt_tokens", "1e3"],
          ],
        ],
        /prompt_tokens/,
      ],
    ];
    for (const [descriptors, message] of cases) {
      assert.throws(
        () => parseRlsRequest(request(descriptors)),
        (e: unknown) => e instanceof RlsRequestError && message.test(e.message),
        String(message),
      );
    }
  });
});
