import * as assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DescEnum, DescField, DescMessage, JsonObject, JsonValue } from "@bufbuild/protobuf";
import {
  create,
  createRegistry,
  equals,
  fromBinary,
  fromJson,
  fromJsonString,
  isFieldSet,
  ScalarType,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import {
  EngineLoadSchema,
  FailMode,
  file_sluice_v1_admission,
  file_sluice_v1_common,
  file_sluice_v1_engine,
  file_sluice_v1_events,
  file_sluice_v1_policy,
  file_sluice_v1_router,
  file_sluice_v1_state,
  HttpRejectStatus,
  Level,
  PolicySchema,
  Reason,
  RouteResponseSchema,
  RouterSyncSchema,
} from "./index.js";

const files = [
  file_sluice_v1_admission,
  file_sluice_v1_common,
  file_sluice_v1_engine,
  file_sluice_v1_events,
  file_sluice_v1_policy,
  file_sluice_v1_router,
  file_sluice_v1_state,
];
const registry = createRegistry(...files);

// Non-default values at the edges of each type, so a field that does not survive the trip
// (wrong wire type, 64-bit truncation, jstype mix-up) shows up.
function scalarJson(type: ScalarType, seed: number): JsonValue {
  switch (type) {
    case ScalarType.STRING:
      return `v${seed}-ü`;
    case ScalarType.BOOL:
      return true;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return 0.5 + seed;
    case ScalarType.BYTES:
      return "AAEC/w==";
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return 4_294_967_295 - seed;
    case ScalarType.INT32:
    case ScalarType.SFIXED32:
    case ScalarType.SINT32:
      return -2_147_483_648 + seed;
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return "18446744073709551615";
    case ScalarType.INT64:
    case ScalarType.SFIXED64:
    case ScalarType.SINT64:
      return "-9223372036854775808";
  }
}

function enumJson(desc: DescEnum): JsonValue {
  const last = desc.values[desc.values.length - 1];
  assert.ok(last && last.number !== 0, `enum ${desc.typeName} needs a non-zero value`);
  return last.name;
}

function fieldJson(field: DescField, seed: number, depth: number): JsonValue {
  switch (field.fieldKind) {
    case "scalar":
      return scalarJson(field.scalar, seed);
    case "enum":
      return enumJson(field.enum);
    case "message":
      return messageJson(field.message, 0, depth + 1);
    case "list": {
      const one = (s: number): JsonValue =>
        field.listKind === "scalar"
          ? scalarJson(field.scalar, s)
          : field.listKind === "enum"
            ? enumJson(field.enum)
            : messageJson(field.message, 0, depth + 1);
      return [one(seed), one(seed + 1)];
    }
    case "map": {
      const value =
        field.mapKind === "scalar"
          ? scalarJson(field.scalar, seed)
          : field.mapKind === "enum"
            ? enumJson(field.enum)
            : messageJson(field.message, 0, depth + 1);
      return { critical: value, sheddable: value };
    }
  }
}

/** Proto3 JSON with every field set; `oneofPick` selects which member of each oneof. */
function messageJson(desc: DescMessage, oneofPick: number, depth = 0): JsonObject {
  assert.ok(depth < 6, `unexpected recursion in ${desc.typeName}`);
  const json: JsonObject = {};
  desc.fields.forEach((field, i) => {
    if (field.oneof && field.oneof.fields[oneofPick % field.oneof.fields.length] !== field) return;
    json[field.jsonName] = fieldJson(field, i + 1, depth);
  });
  return json;
}

describe("wire types: every message survives binary and JSON round trips", () => {
  const messages = files.flatMap((f) => f.messages);

  it("covers all messages of proto/sluice/v1", () => {
    const names = messages.map((m) => m.name);
    for (const expected of [
      "Policy",
      "EngineRegistration",
      "EngineLoad",
      "IngressState",
      "RouterSync",
      "ClusterLoad",
      "DecisionEvent",
      "RouteRequest",
      "RouteResponse",
      "AdmissionCheckRequest",
    ]) {
      assert.ok(names.includes(expected), `missing message ${expected}`);
    }
  });

  for (const desc of messages) {
    const variants = Math.max(1, ...desc.oneofs.map((o) => o.fields.length));
    for (let pick = 0; pick < variants; pick++) {
      it(`${desc.typeName}${variants > 1 ? ` (oneof member ${pick})` : ""}`, () => {
        const original = fromJson(desc, messageJson(desc, pick), { registry });
        for (const field of desc.fields) {
          if (field.oneof && field.oneof.fields[pick % field.oneof.fields.length] !== field) continue;
          assert.ok(isFieldSet(original, field), `${desc.typeName}.${field.name} not set by the fixture`);
        }
        const bytes = toBinary(desc, original);
        assert.ok(bytes.byteLength > 0);
        const decoded = fromBinary(desc, bytes);
        assert.ok(equals(desc, decoded, original), `${desc.typeName} differs after binary round trip`);
        assert.deepEqual(toBinary(desc, decoded), bytes);
        const viaJson = fromJson(desc, toJson(desc, original, { registry }), { registry });
        assert.ok(equals(desc, viaJson, original), `${desc.typeName} differs after JSON round trip`);
      });
    }
  }
});

describe("wire types: representation choices", () => {
  it("timestamps are plain numbers; sequence numbers and block hashes full 64-bit bigints", () => {
    const load = create(EngineLoadSchema, {
      workerId: "w1",
      seq: 2n ** 63n,
      timestampMs: 1_732_534_800_123.5,
    });
    const decoded = fromBinary(EngineLoadSchema, toBinary(EngineLoadSchema, load));
    assert.equal(typeof decoded.timestampMs, "number");
    assert.equal(decoded.timestampMs, 1_732_534_800_123.5);
    assert.equal(decoded.seq, 2n ** 63n);

    const sync = create(RouterSyncSchema, {
      replicaId: "r1",
      seq: 1n,
      event: { case: "add", value: { requestId: "q", workerId: "w1", blockHashes: [2n ** 64n - 1n, 1n] } },
    });
    const back = fromBinary(RouterSyncSchema, toBinary(RouterSyncSchema, sync));
    assert.equal(back.event.case, "add");
    assert.deepEqual(back.event.case === "add" ? back.event.value.blockHashes : [], [2n ** 64n - 1n, 1n]);
  });

  it("a policy document as an operator writes it parses with enums, maps and optional fields", () => {
    const policy = fromJsonString(
      PolicySchema,
      JSON.stringify({
        model: "llama-3-8b",
        classes: [
          { name: "critical", priority: 300, ttftObjectiveMs: 800, itlObjectiveMs: 40, limitShare: 1 },
        ],
        defaultClass: "standard",
        tenants: [
          { tenant: "acme", apiKeySha256: ["ab".repeat(32)], requestClass: "critical", trusted: true },
        ],
        ingress: { maxInflight: 512, kvOvercommit: 1.5, classLimitShare: { sheddable: 0.5 } },
        router: { busyDecodeBlockFraction: 0.9, classMaxHeld: { sheddable: 0 }, maxHoldMs: 250 },
        engine: { maxQueue: 0, ttftMarginMs: 20 },
        rejection: {
          httpStatus: "HTTP_REJECT_STATUS_OVERLOADED",
          retryAfterMinMs: 50,
          retryAfterMaxMs: 10_000,
        },
        failMode: "FAIL_MODE_OPEN",
      }),
    );
    assert.equal(policy.failMode, FailMode.OPEN);
    assert.equal(policy.rejection?.httpStatus, HttpRejectStatus.OVERLOADED);
    assert.equal(policy.ingress?.kvOvercommit, 1.5);
    assert.deepEqual(policy.ingress?.classLimitShare, { sheddable: 0.5 });
    // Present-but-zero must stay distinguishable from unset where zero means something.
    assert.equal(policy.engine?.maxQueue, 0);
    assert.equal(create(PolicySchema, { engine: {} }).engine?.maxQueue, undefined);
    assert.deepEqual(policy.router?.classMaxHeld, { sheddable: 0 });
    assert.equal(policy.tenants[0]?.trusted, true);
  });

  it("rejects a policy document with an unknown field or enum name", () => {
    assert.throws(() => fromJsonString(PolicySchema, '{"ingress":{"maxInflght":3}}'), /maxInflght/);
    assert.throws(() => fromJsonString(PolicySchema, '{"failMode":"FAIL_STATIC"}'), /FAIL_STATIC/);
  });

  it("decoding truncated bytes throws instead of returning a partial message", () => {
    const bytes = toBinary(
      RouteResponseSchema,
      create(RouteResponseSchema, {
        result: {
          case: "rejected",
          value: { level: Level.ROUTER, reason: Reason.ALL_ENGINES_BUSY, retryAfterMs: 1200 },
        },
      }),
    );
    assert.throws(() => fromBinary(RouteResponseSchema, bytes.subarray(0, bytes.byteLength - 1)));
  });
});
