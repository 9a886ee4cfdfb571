import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toJsonString } from "@bufbuild/protobuf";
import { DecisionEventSchema, Level, Outcome, Reason } from "@sluice/proto";
import { type DecisionEventFields, encodeDecisionEventJson } from "./decision-event-json.js";

const CASES: DecisionEventFields[] = [
  {},
  { requestId: "r1", level: Level.INGRESS, outcome: Outcome.ADMITTED, timestampMs: 1_764_000_000_123 },
  {
    requestId: "r2",
    requestClass: "sheddable",
    tenant: "batch",
    model: "llama",
    level: Level.INGRESS,
    outcome: Outcome.REJECTED,
    reason: Reason.INFLIGHT_LIMIT,
    observedValue: 101,
    limitValue: 100,
    retryAfterMs: 1250.4,
    timestampMs: 1_764_000_000_000.5,
    instanceId: "ingress-0",
    workerId: "w-1",
    policyRevision: 42n,
  },
  { observedValue: Number.NaN, limitValue: Number.POSITIVE_INFINITY, predictedTtftMs: -Infinity },
  { retryAfterMs: -5, policyRevision: 0, reason: Reason.UNSPECIFIED, level: Level.UNSPECIFIED },
  { retryAfterMs: 2 ** 40, policyRevision: 7, tenant: 't"ü\n', requestId: "ü-\u2028" },
  { level: Level.ENGINE, outcome: Outcome.COMPLETED, predictedTtftMs: 12.75, observedValue: -3 },
];

describe("encodeDecisionEventJson", () => {
  for (const [i, fields] of CASES.entries()) {
    it(`case ${i}: byte for byte what protobuf-es's toJsonString gives`, () => {
      const reflective = toJsonString(
        DecisionEventSchema,
        create(DecisionEventSchema, {
          ...fields,
          retryAfterMs: Math.min(Math.max(0, Math.round(fields.retryAfterMs ?? 0)), 0xffff_ffff),
          policyRevision: BigInt(fields.policyRevision ?? 0),
        }),
      );
      assert.equal(encodeDecisionEventJson(fields), reflective);
    });
  }
});
