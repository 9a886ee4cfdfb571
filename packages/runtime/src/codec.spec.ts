import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create, equals } from "@bufbuild/protobuf";
import { EngineLoadSchema } from "@sluice/proto";
import { CodecError, jsonCodec, protoCodec, protoJsonCodec } from "./codec.js";

const load = create(EngineLoadSchema, { workerId: "w1", seq: 42n, waiting: 3, prefillTokensPerS: 1234.5 });

describe("codecs", () => {
  it("round-trips binary protobuf", () => {
    const codec = protoCodec(EngineLoadSchema);
    assert.equal(codec.name, "proto:sluice.v1.EngineLoad");
    const decoded = codec.decode(codec.encode(load));
    assert.ok(equals(EngineLoadSchema, decoded, load));
  });

  it("round-trips proto3 JSON that humans can read", () => {
    const codec = protoJsonCodec(EngineLoadSchema);
    const bytes = codec.encode(load);
    assert.match(new TextDecoder().decode(bytes), /"workerId":"w1"/);
    assert.ok(equals(EngineLoadSchema, codec.decode(bytes), load));
    // A newer publisher's extra field is tolerated by default.
    const extended = codec.decode(new TextEncoder().encode('{"workerId":"w2","futureField":1}'));
    assert.equal(extended.workerId, "w2");
    const strict = protoJsonCodec(EngineLoadSchema, { ignoreUnknownFields: false });
    assert.equal(strict.tryDecode(new TextEncoder().encode('{"futureField":1}')).ok, false);
  });

  it("reports malformed payloads as CodecError, never anything else", () => {
    const codec = protoCodec(EngineLoadSchema);
    const garbage = new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]); // length-delimited field longer than the buffer
    assert.throws(
      () => codec.decode(garbage),
      (err: unknown) => {
        assert.ok(err instanceof CodecError);
        assert.equal(err.codec, "proto:sluice.v1.EngineLoad");
        assert.match(err.message, /cannot decode/);
        return true;
      },
    );
    const result = codec.tryDecode(garbage);
    assert.equal(result.ok, false);
    if (!result.ok) assert.ok(result.error.cause !== undefined);
    assert.equal(protoJsonCodec(EngineLoadSchema).tryDecode(new Uint8Array([0xc3, 0x28])).ok, false); // not UTF-8
    assert.equal(protoJsonCodec(EngineLoadSchema).tryDecode(new TextEncoder().encode("{")).ok, false);
  });

  it("validates JSON with the given parser", () => {
    const parse = (v: unknown): { n: number } => {
      if (typeof v !== "object" || v === null || typeof (v as { n?: unknown }).n !== "number") {
        throw new TypeError("expected {n: number}");
      }
      return v as { n: number };
    };
    const codec = jsonCodec(parse);
    assert.deepEqual(codec.decode(codec.encode({ n: 1 })), { n: 1 });
    const bad = codec.tryDecode(new TextEncoder().encode('{"n":"x"}'));
    assert.ok(!bad.ok && bad.error instanceof CodecError && /expected \{n: number\}/.test(bad.error.message));
    assert.deepEqual(jsonCodec<number[]>().decode(new TextEncoder().encode("[1,2]")), [1, 2]);
  });
});
