import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fromBinary } from "@bufbuild/protobuf";
import type { EngineLoadSnapshot } from "@sluice/core";
import { EngineLoadSchema } from "@sluice/proto";
import { createLoadPublisher } from "./load-publisher.js";
import { createStepStats } from "./step-stats.js";

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function snapshot(over: Partial<EngineLoadSnapshot> = {}): EngineLoadSnapshot {
  return {
    waiting: 0,
    running: 0,
    kvUsedBlocks: 0,
    kvTotalBlocks: 100,
    kvCachedFreeBlocks: 0,
    pendingPrefillTokens: 0,
    oldestWaitingArrivalMs: null,
    prefixCacheQueryTokens: 0,
    prefixCacheHitTokens: 0,
    preemptions: 0,
    finishedRequests: 0,
    ...over,
  };
}

function harness(debounceMs: number, heartbeatIntervalMs: number) {
  let load = snapshot();
  let connected = true;
  const sent: ReturnType<typeof fromBinary<typeof EngineLoadSchema>>[] = [];
  const publisher = createLoadPublisher(
    {
      publisher: () =>
        connected
          ? {
              publish: (subject: string, data: Uint8Array) =>
                subject === "load" && sent.push(fromBinary(EngineLoadSchema, data)),
            }
          : undefined,
      subject: "load",
      workerId: "w",
      load: () => load,
      stats: createStepStats(),
      engineNowMs: () => 1_000,
    },
    { debounceMs, heartbeatIntervalMs },
  );
  return {
    publisher,
    sent,
    setLoad: (next: Partial<EngineLoadSnapshot>) => {
      load = snapshot(next);
    },
    setConnected: (value: boolean) => {
      connected = value;
    },
  };
}

describe("createLoadPublisher", () => {
  it("publishes a change at once, coalesces changes inside the debounce window, and skips no-ops", async () => {
    const h = harness(50, 10_000);
    h.setLoad({ running: 1, kvUsedBlocks: 3 });
    h.publisher.markChanged();
    assert.equal(h.sent.length, 1);
    h.setLoad({ running: 2, kvUsedBlocks: 5 });
    h.publisher.markChanged();
    h.setLoad({ running: 3, kvUsedBlocks: 7, waiting: 1, oldestWaitingArrivalMs: 400 });
    h.publisher.markChanged();
    assert.equal(h.sent.length, 1, "inside the debounce window");
    await until("the trailing snapshot", () => h.sent.length === 2);
    await sleep(60);
    assert.equal(h.sent.length, 2, "exactly one trailing snapshot, with the latest state");
    const last = h.sent[1];
    assert.equal(last?.running, 3);
    assert.equal(last?.waiting, 1);
    assert.equal(last?.oldestWaitingMs, 600);
    assert.equal(last?.seq, 2n);
    assert.equal(last?.workerId, "w");
    assert.equal(last?.kvTotalBlocks, 100);
    h.publisher.markChanged();
    assert.equal(h.sent.length, 2, "unchanged load is not republished");
    h.publisher.close();
  });

  it("sends heartbeats while idle and carries on after a NATS gap", async () => {
    const h = harness(1, 40);
    await until("two heartbeats", () => h.sent.length >= 2);
    const beats = h.sent.length;
    h.setConnected(false);
    await sleep(100);
    assert.equal(h.sent.length, beats, "nothing handed over without a connection");
    h.setConnected(true);
    await until("heartbeats after the gap", () => h.sent.length > beats);
    assert.deepEqual(
      h.sent.map((m) => m.seq),
      h.sent.map((_m, i) => BigInt(i + 1)),
      "seq counts published snapshots without gaps",
    );
    assert.equal(h.sent[0]?.heartbeatIntervalMs, 40);
    h.publisher.close();
  });
});
