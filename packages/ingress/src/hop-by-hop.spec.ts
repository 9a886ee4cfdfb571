import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { endToEndHeaders } from "./hop-by-hop.js";

describe("endToEndHeaders", () => {
  it("drops hop-by-hop headers, headers named by Connection, and skipped ones", () => {
    const out = endToEndHeaders(
      {
        connection: "keep-alive, X-Private",
        "keep-alive": "timeout=5",
        "x-private": "1",
        "transfer-encoding": "chunked",
        te: "trailers",
        upgrade: "h2c",
        host: "a",
        authorization: "Bearer k",
        "x-request-id": "r",
      },
      new Set(["host"]),
    );
    assert.deepEqual(out, { authorization: "Bearer k", "x-request-id": "r" });
  });
});
