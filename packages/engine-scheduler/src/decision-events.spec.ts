import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toJsonString } from "@bufbuild/protobuf";
import { DecisionEventSchema, Level, Outcome, Reason } from "@sluice/proto";
import { protoJsonCodec } from "@sluice/runtime";
import {
  createDecisionEventPublisher,
  type EngineEventInput,
  encodeEngineDecisionEvent,
} from "./decision-events.js";

const REASONS: Record<string, Reason> = {
  predicted_ttft: Reason.PREDICTED_TTFT,
  queue_timeout: Reason.QUEUE_TIME,
  queue_full: Reason.QUEUE_FULL,
  itl_guard: Reason.PREDICTED_ITL,
};

/** The reflective encoding the direct encoder must match byte for byte. */
function reflective(deps: { workerId: string; model: string }, input: EngineEventInput, timestampMs: number) {
  return toJsonString(
    DecisionEventSchema,
    create(DecisionEventSchema, {
      requestId: input.requestId,
      requestClass: input.className,
      model: deps.model,
      level: Level.ENGINE,
      outcome: input.outcome,
      reason: input.reason === undefined ? Reason.UNSPECIFIED : (REASONS[input.reason] ?? Reason.UNSPECIFIED),
      observedValue: input.observed ?? 0,
      limitValue: input.limit ?? 0,
      predictedTtftMs: input.predictedTtftMs ?? 0,
      retryAfterMs: Math.max(0, Math.round(input.retryAfterMs ?? 0)),
      timestampMs,
      instanceId: deps.workerId,
      workerId: deps.workerId,
    }),
  );
}

describe("engine decision events", () => {
  const deps = { workerId: "w-1", model: "mock-llm" };
  const cases: EngineEventInput[] = [
    { requestId: "r1", className: "standard", outcome: Outcome.HELD, predictedTtftMs: 123.25 },
    { requestId: "r2", className: "critical", outcome: Outcome.ADMITTED, observed: 4.5 },
    { requestId: "r3", className: "standard", outcome: Outcome.ADMITTED, observed: 0, predictedTtftMs: 0 },
    {
      requestId: 'r"4\n',
      className: "sheddable",
      outcome: Outcome.REJECTED,
      reason: "predicted_ttft",
      observed: 2500.5,
      limit: 2000,
      retryAfterMs: 1234.4,
    },
    {
      requestId: "r5",
      className: "standard",
      outcome: Outcome.REJECTED,
      reason: "queue_full",
      observed: 12,
      limit: 12,
    },
    {
      requestId: "r6",
      className: "standard",
      outcome: Outcome.REJECTED,
      reason: "queue_timeout",
      retryAfterMs: 1,
    },
    { requestId: "r7", className: "standard", outcome: Outcome.REJECTED, reason: "itl_guard", observed: -3 },
    { requestId: "r8", className: "standard", outcome: Outcome.REJECTED, reason: "unknown_reason" },
    { requestId: "r9", className: "standard", outcome: Outcome.COMPLETED },
    { requestId: "r10", className: "standard", outcome: Outcome.CANCELLED },
    { requestId: "r11", className: "standard", outcome: Outcome.FAILED, observed: Number.POSITIVE_INFINITY },
    { requestId: "r12", className: "", outcome: Outcome.UNSPECIFIED, predictedTtftMs: Number.NaN },
    { requestId: "", className: "x", outcome: Outcome.ADMITTED, limit: Number.NEGATIVE_INFINITY },
  ];
  for (const [i, input] of cases.entries()) {
    it(`encodes case ${i} exactly as protobuf-es does`, () => {
      for (const d of [deps, { workerId: "", model: "" }]) {
        const fast = encodeEngineDecisionEvent(d, input, 1_764_000_000_123);
        assert.equal(fast, reflective(d, input, 1_764_000_000_123));
        // …and the shared codec reads it back.
        const back = protoJsonCodec(DecisionEventSchema).decode(new TextEncoder().encode(fast));
        assert.equal(back.requestId, input.requestId);
        assert.equal(back.level, Level.ENGINE);
      }
    });
  }

  it("publishes the events of one turn after it, on the step's subject, timestamped at emit", async () => {
    const published: { subject: string; json: Record<string, unknown> }[] = [];
    const events = createDecisionEventPublisher({
      ...deps,
      publish: (subject, data) =>
        published.push({ subject, json: JSON.parse(new TextDecoder().decode(data)) }),
      subjectOf: (level, outcome) => `ns.events.${level}.${outcome}`,
    });
    const before = Date.now();
    events.emit("queued", {
      requestId: "a",
      className: "standard",
      outcome: Outcome.HELD,
      predictedTtftMs: 5,
    });
    events.emit("admitted", { requestId: "a", className: "standard", outcome: Outcome.ADMITTED });
    assert.equal(published.length, 0, "nothing is published inside the turn");
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      published.map((p) => p.subject),
      ["ns.events.engine.queued", "ns.events.engine.admitted"],
    );
    assert.ok((published[0]?.json.timestampMs as number) >= before);
    assert.equal(published[0]?.json.predictedTtftMs, 5);
    events.emit("done", { requestId: "a", className: "standard", outcome: Outcome.COMPLETED });
    events.close();
    assert.equal(published.length, 3, "close flushes");
    events.emit("done", { requestId: "b", className: "standard", outcome: Outcome.COMPLETED });
    await new Promise((r) => setImmediate(r));
    assert.equal(published.length, 3, "nothing after close");
  });

  it("a failing publish drops the event, never throws", async () => {
    const events = createDecisionEventPublisher({
      ...deps,
      publish: () => {
        throw new Error("closed");
      },
      subjectOf: (level, outcome) => `${level}.${outcome}`,
    });
    events.emit("queued", { requestId: "a", className: "standard", outcome: Outcome.HELD });
    assert.doesNotThrow(() => events.flush());
  });
});
