import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EngineLoadSchema } from "@sluice/proto";
import { type EngineLoadFields, encodeEngineLoad } from "./engine-load-binary.js";

const utf8 = new TextEncoder();

/** The reflective encoding the direct encoder must match byte for byte. */
function reflective(workerId: string, f: Omit<EngineLoadFields, "workerIdUtf8">): Uint8Array {
  return toBinary(
    EngineLoadSchema,
    create(EngineLoadSchema, {
      ...f,
      workerId,
      seq: BigInt(f.seq),
      preemptionsTotal: BigInt(f.preemptionsTotal),
    }),
  );
}

const ZERO = {
  seq: 0,
  timestampMs: 0,
  waiting: 0,
  running: 0,
  kvUsedBlocks: 0,
  kvTotalBlocks: 0,
  pendingPrefillTokens: 0,
  prefillTokensPerS: 0,
  decodeStepMs: 0,
  oldestWaitingMs: 0,
  preemptionsTotal: 0,
  heartbeatIntervalMs: 0,
};

describe("encodeEngineLoad", () => {
  const cases: Array<[string, string, Omit<EngineLoadFields, "workerIdUtf8">]> = [
    ["all defaults (empty message)", "", ZERO],
    [
      "a typical snapshot",
      "engine-a",
      {
        seq: 42,
        timestampMs: 1_764_000_000_123,
        waiting: 3,
        running: 17,
        kvUsedBlocks: 1234,
        kvTotalBlocks: 16_384,
        pendingPrefillTokens: 8192,
        prefillTokensPerS: 12_345.678,
        decodeStepMs: 7.25,
        oldestWaitingMs: 250,
        preemptionsTotal: 2,
        heartbeatIntervalMs: 1000,
      },
    ],
    [
      "range edges: uint32 max, uint64 above 2^32 and at 2^53 − 1, varint byte boundaries",
      "w",
      {
        ...ZERO,
        seq: Number.MAX_SAFE_INTEGER,
        waiting: 0xffff_ffff,
        running: 127,
        kvUsedBlocks: 128,
        kvTotalBlocks: 16_383,
        pendingPrefillTokens: 16_384,
        oldestWaitingMs: 2 ** 31,
        preemptionsTotal: 2 ** 32 + 5,
        heartbeatIntervalMs: 1,
      },
    ],
    [
      "non-finite doubles and −0 are written (only +0 is the default)",
      "ünïcødé-wörker",
      { ...ZERO, timestampMs: -0, prefillTokensPerS: Number.NaN, decodeStepMs: Number.POSITIVE_INFINITY },
    ],
    ["negative double", "x", { ...ZERO, decodeStepMs: -1.5, timestampMs: Number.NEGATIVE_INFINITY }],
  ];
  for (const [name, workerId, fields] of cases)
    it(`matches toBinary byte for byte: ${name}`, () => {
      const direct = encodeEngineLoad({ ...fields, workerIdUtf8: utf8.encode(workerId) });
      assert.deepEqual(
        Buffer.from(direct).toString("hex"),
        Buffer.from(reflective(workerId, fields)).toString("hex"),
      );
    });

  it("handles worker ids longer than its scratch buffer, and returns an independent copy", () => {
    const long = "w".repeat(1000);
    const first = encodeEngineLoad({ ...ZERO, seq: 1, workerIdUtf8: utf8.encode(long) });
    const second = encodeEngineLoad({ ...ZERO, seq: 2, workerIdUtf8: utf8.encode("short") });
    const decoded = fromBinary(EngineLoadSchema, first);
    assert.equal(decoded.workerId, long);
    assert.equal(decoded.seq, 1n, "encoding the next message did not overwrite the first");
    assert.equal(fromBinary(EngineLoadSchema, second).workerId, "short");
  });
});
