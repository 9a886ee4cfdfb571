// Wire compatibility of the Envoy rate limit subset in proto/envoy: the gRPC path Envoy calls, and
// field numbers / wire types checked against bytes written by hand from the public rls.proto, so a
// renumbered or retyped field fails here rather than in front of a real Envoy.
import * as assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  grpcServiceDefinition,
  RateLimitRequestSchema,
  RateLimitResponse_Code,
  RateLimitResponseSchema,
  RateLimitService,
} from "./index.js";

describe("Envoy RLS subset", () => {
  it("serves the path Envoy's ratelimit filter calls", () => {
    const def = grpcServiceDefinition(RateLimitService);
    assert.equal(def.shouldRateLimit.path, "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit");
  });

  it("decodes a RateLimitRequest encoded by hand from the public field numbers", () => {
    // domain=1 "d"; descriptors=2 { entries=1 { key=1 "k", value=2 "v" } }; hits_addend=3 varint 5
    const entry = [0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76];
    const descriptor = [0x0a, entry.length, ...entry];
    const bytes = new Uint8Array([0x0a, 0x01, 0x64, 0x12, descriptor.length, ...descriptor, 0x18, 0x05]);
    const req = fromBinary(RateLimitRequestSchema, bytes);
    assert.equal(req.domain, "d");
    assert.equal(req.hitsAddend, 5);
    assert.deepEqual(
      req.descriptors.map((d) => d.entries.map((e) => [e.key, e.value])),
      [[["k", "v"]]],
    );
  });

  it("encodes a RateLimitResponse with the public field numbers", () => {
    const res = create(RateLimitResponseSchema, {
      overallCode: RateLimitResponse_Code.OVER_LIMIT,
      statuses: [{ code: RateLimitResponse_Code.OVER_LIMIT, limitRemaining: 0 }],
      responseHeadersToAdd: [{ key: "a", value: "b" }],
      rawBody: new Uint8Array([0x7a]),
    });
    // overall_code=1 varint 2; statuses=2 { code=1 varint 2 }; response_headers_to_add=3 { key=1, value=2 };
    // raw_body=5 bytes
    const expected = [
      0x08, 0x02, 0x12, 0x02, 0x08, 0x02, 0x1a, 0x06, 0x0a, 0x01, 0x61, 0x12, 0x01, 0x62, 0x2a, 0x01, 0x7a,
    ];
    assert.deepEqual([...toBinary(RateLimitResponseSchema, res)], expected);
  });
});
