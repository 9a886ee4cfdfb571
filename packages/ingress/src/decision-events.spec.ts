import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type IngressEvent, natsEventSink, type Publisher } from "./decision-events.js";

const event = (requestId: string, outcome: IngressEvent["outcome"] = "admitted"): IngressEvent => ({
  requestId,
  requestClass: "standard",
  tenant: "",
  model: "m",
  outcome,
});

function collector(): Publisher & { sent: { subject: string; body: Record<string, unknown> }[] } {
  const sent: { subject: string; body: Record<string, unknown> }[] = [];
  return {
    sent,
    publish(subject, data) {
      sent.push({ subject, body: JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown> });
    },
  };
}

describe("natsEventSink batching", () => {
  it("publishes queued events together after the flush interval, each on its outcome's subject", async () => {
    const bus = collector();
    let now = 1_000;
    const sink = natsEventSink(
      () => bus,
      "sluice.v1.default",
      "ingress-a",
      () => now,
      { flushIntervalMs: 5 },
    );
    sink.emit(event("r1"));
    now = 1_002;
    sink.emit(event("r1", "completed"));
    assert.equal(bus.sent.length, 0, "nothing is written on the request path");
    await sleep(30);
    assert.deepEqual(
      bus.sent.map((m) => [m.subject, m.body.requestId, m.body.timestampMs]),
      [
        ["sluice.v1.default.events.ingress.admitted", "r1", 1000],
        ["sluice.v1.default.events.ingress.completed", "r1", 1002],
      ],
    );
    assert.equal(bus.sent[0]?.body.instanceId, "ingress-a");
  });

  it("publishes at once when the batch is full, and on flush()", () => {
    const bus = collector();
    const sink = natsEventSink(
      () => bus,
      "p",
      "i",
      () => 0,
      { flushIntervalMs: 60_000, flushMaxEvents: 2 },
    );
    sink.emit(event("a"));
    assert.equal(bus.sent.length, 0);
    sink.emit(event("b"));
    assert.deepEqual(
      bus.sent.map((m) => m.body.requestId),
      ["a", "b"],
    );
    sink.emit(event("c"));
    sink.flush();
    assert.deepEqual(
      bus.sent.map((m) => m.body.requestId),
      ["a", "b", "c"],
    );
    sink.flush();
    assert.equal(bus.sent.length, 3, "a second flush publishes nothing twice");
  });

  it("drops events while NATS is down and never throws into the request path", () => {
    let bus: Publisher | undefined;
    const sink = natsEventSink(
      () => bus,
      "p",
      "i",
      () => 0,
      { flushMaxEvents: 1 },
    );
    sink.emit(event("lost"));
    bus = {
      publish() {
        throw new Error("connection draining");
      },
    };
    assert.doesNotThrow(() => sink.emit(event("x")));
  });
});
