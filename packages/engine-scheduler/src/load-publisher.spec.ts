import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { EngineLoadSchema } from "@sluice/proto";
import { createLoadPublisher, type LoadSnapshot } from "./load-publisher.js";

const IDLE: LoadSnapshot = {
  waiting: 0,
  running: 0,
  kvUsedBlocks: 0,
  kvTotalBlocks: 100,
  pendingPrefillTokens: 0,
  prefillTokensPerS: 0,
  decodeStepMs: 0,
  oldestWaitingMs: 0,
  preemptionsTotal: 0,
};

/** A publisher on a fake clock: `advance(ms)` moves the clock and fires the timers due. */
function harness(debounceMs = 5, heartbeatIntervalMs = 60_000) {
  const sent: Array<{ subject: string; load: ReturnType<typeof fromBinary<typeof EngineLoadSchema>> }> = [];
  let current: LoadSnapshot = { ...IDLE };
  let clockMs = 1000;
  const publisher = createLoadPublisher({
    publish: (subject, data) => sent.push({ subject, load: fromBinary(EngineLoadSchema, data) }),
    subject: "sluice.default.engine.w1.load",
    workerId: "w1",
    snapshot: () => current,
    debounceMs,
    heartbeatIntervalMs,
    nowMs: () => clockMs,
  });
  return {
    sent,
    publisher,
    set(patch: Partial<LoadSnapshot>) {
      current = { ...current, ...patch };
    },
    advance(ms: number) {
      clockMs += ms;
      mock.timers.tick(ms);
    },
  };
}

describe("createLoadPublisher", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "setInterval"] }));
  afterEach(() => mock.timers.reset());

  it("publishes a change at once, with the clamped fields and a sequence number", () => {
    const h = harness();
    h.set({
      running: 2,
      waiting: -3,
      kvUsedBlocks: 12.6,
      oldestWaitingMs: Number.NaN,
      prefillTokensPerS: 1500.5,
    });
    h.publisher.markChanged();
    assert.equal(h.sent.length, 1);
    const { subject, load } = h.sent[0]!;
    assert.equal(subject, "sluice.default.engine.w1.load");
    assert.equal(load.workerId, "w1");
    assert.equal(load.seq, 1n);
    assert.equal(load.running, 2);
    assert.equal(load.waiting, 0, "negative clamped to 0");
    assert.equal(load.kvUsedBlocks, 13, "rounded");
    assert.equal(load.oldestWaitingMs, 0, "NaN as 0");
    assert.equal(load.kvTotalBlocks, 100);
    assert.equal(load.prefillTokensPerS, 1500.5);
    assert.equal(load.heartbeatIntervalMs, 60_000);
    assert.equal(h.publisher.published(), 1);
    h.publisher.close();
  });

  it("skips an unchanged snapshot, and coalesces changes within the debounce into one trailing snapshot", () => {
    const h = harness(20);
    h.set({ running: 1 });
    h.publisher.markChanged();
    h.publisher.markChanged();
    assert.equal(h.sent.length, 1, "no change, no snapshot");
    h.advance(5);
    h.set({ running: 2 });
    h.publisher.markChanged();
    h.advance(5);
    h.set({ running: 3 });
    h.publisher.markChanged();
    h.advance(9);
    assert.equal(h.sent.length, 1, "within the debounce: held back");
    h.advance(1);
    assert.equal(h.sent.length, 2, "one trailing snapshot for both changes, 20 ms after the first");
    assert.equal(h.sent[1]!.load.running, 3);
    assert.equal(h.sent[1]!.load.seq, 2n);
    h.publisher.close();
  });

  it("a change undone within the debounce publishes nothing", () => {
    const h = harness(20);
    h.set({ running: 1 });
    h.publisher.markChanged();
    h.set({ running: 2 });
    h.publisher.markChanged();
    h.set({ running: 1 });
    h.advance(100);
    assert.equal(h.sent.length, 1);
    h.publisher.close();
  });

  it("a failing publish never throws into the caller and is retried on the next change", () => {
    let fail = true;
    const sent: number[] = [];
    let running = 0;
    let clockMs = 0;
    const publisher = createLoadPublisher({
      publish: (_s, data) => {
        if (fail) throw new Error("connection closed");
        sent.push(fromBinary(EngineLoadSchema, data).running);
      },
      subject: "s",
      workerId: "w",
      snapshot: () => ({ ...IDLE, running }),
      debounceMs: 1,
      heartbeatIntervalMs: 60_000,
      nowMs: () => clockMs,
    });
    running = 1;
    publisher.markChanged();
    assert.equal(publisher.published(), 0);
    fail = false;
    clockMs += 2;
    running = 2;
    publisher.markChanged();
    assert.deepEqual(sent, [2]);
    assert.equal(publisher.published(), 1);
    publisher.close();
  });

  it("sends a heartbeat when nothing changed for an interval, and none while changes flow", () => {
    const h = harness(1, 1000);
    h.advance(1000);
    assert.equal(h.sent.length, 1, "first heartbeat");
    for (let i = 0; i < 9; i++) {
      h.advance(100);
      h.set({ running: i + 1 });
      h.publisher.markChanged();
    }
    assert.equal(h.sent.length, 10, "nine changes");
    h.advance(100);
    assert.equal(h.sent.length, 10, "a change 100 ms ago: no heartbeat yet");
    h.advance(1000);
    assert.equal(h.sent.length, 11);
    assert.equal(h.sent.at(-1)!.load.running, 9, "the heartbeat carries the current load");
    h.publisher.close();
    h.advance(5000);
    assert.equal(h.sent.length, 11, "closed: silent");
  });

  it("rejects a debounce below 1 ms", () => {
    assert.throws(
      () =>
        createLoadPublisher({
          publish: () => {},
          subject: "s",
          workerId: "w",
          snapshot: () => IDLE,
          debounceMs: 0.5,
          heartbeatIntervalMs: 1000,
        }),
      RangeError,
    );
  });
});
