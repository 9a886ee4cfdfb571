import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RouterSyncDelta } from "@sluice/core";
import {
  absurdAddReason,
  createRouterSyncGate,
  type RouterSyncFate,
  type SyncWorkerCapacity,
} from "./router-sync-gate.js";

const U32_MAX = 4_294_967_295;

function add(replicaId: string, seq: number, prefillTokens = 10, workerId = "w1"): RouterSyncDelta {
  return {
    replicaId,
    seq: BigInt(seq),
    timestampMs: 0,
    event: {
      case: "add",
      value: {
        requestId: `${replicaId}-${seq}`,
        workerId,
        blockHashes: [],
        blocks: 1,
        prefillTokens,
        overlapBlocks: 0,
      },
    },
  };
}

function free(replicaId: string, seq: number, requestId: string): RouterSyncDelta {
  return {
    replicaId,
    seq: BigInt(seq),
    timestampMs: 0,
    event: { case: "free", value: { requestId, workerId: "w1" } },
  };
}

function setup(
  capacities: Record<string, SyncWorkerCapacity> = { w1: { kvTotalBlocks: 100, blockSize: 16 } },
) {
  let now = 1_000;
  const applied: string[] = [];
  const fates: string[] = [];
  const warnings: object[] = [];
  const gate = createRouterSyncGate<string>({
    nowMs: () => now,
    registrationWaitMs: 3_000,
    departedKeepMs: 2_000,
    maxHeldReplicas: 2,
    maxHeldPerReplica: 3,
    warnIntervalMs: 10_000,
    apply(delta) {
      if (delta.event.case === "add" && delta.event.value.requestId.endsWith("-bad")) throw new Error("bad");
      applied.push(`${delta.replicaId}#${delta.seq}`);
      return "ok";
    },
    onFate(delta, fate: RouterSyncFate<string>) {
      fates.push(`${delta.replicaId}#${delta.seq} ${fate.kind === "refused" ? fate.reason : fate.kind}`);
    },
    capacityOf: (workerId) => capacities[workerId],
    largestCapacity: () => Object.values(capacities)[0],
    logger: {
      debug() {},
      info() {},
      warn: (obj) => warnings.push(obj),
      error() {},
      child() {
        return this;
      },
    },
  });
  return { gate, applied, fates, warnings, advance: (ms: number) => (now += ms) };
}

describe("router sync gate", () => {
  it("applies deltas of registered replicas at once", () => {
    const { gate, applied, fates } = setup();
    gate.replicaRegistered("r1");
    assert.equal(gate.receive(add("r1", 1)), "judged");
    assert.deepEqual(applied, ["r1#1"]);
    assert.deepEqual(fates, ["r1#1 applied"]);
  });

  it("holds an unknown replica's deltas and applies them in order once it registers", () => {
    const { gate, applied, fates, advance } = setup();
    assert.equal(gate.receive(add("new", 1)), "held");
    assert.equal(gate.receive(free("new", 2, "new-1")), "held");
    assert.equal(gate.heldCount(), 2);
    advance(2_500);
    gate.sweep(); // still within the wait
    assert.deepEqual(fates, []);
    gate.replicaRegistered("new");
    assert.deepEqual(applied, ["new#1", "new#2"]);
    assert.equal(gate.heldCount(), 0);
    assert.equal(gate.receive(add("new", 3)), "judged");
  });

  it("refuses, counts and logs deltas of a replica that never registers", () => {
    const { gate, applied, fates, warnings, advance } = setup();
    gate.receive(add("ghost", 1, U32_MAX));
    gate.receive(add("ghost", 2));
    advance(3_001);
    gate.sweep();
    assert.deepEqual(applied, []);
    assert.deepEqual(fates, ["ghost#1 unregistered_replica", "ghost#2 unregistered_replica"]);
    assert.equal(gate.heldCount(), 0);
    assert.equal(warnings.length, 1, "one warning per interval, with the count");
    // A registration after the refusal applies only what comes next.
    gate.replicaRegistered("ghost");
    assert.deepEqual(applied, []);
  });

  it("bounds what is held: an empty id, too many replicas, too many deltas", () => {
    const { gate, fates } = setup();
    assert.equal(gate.receive(add("", 1)), "refused");
    gate.receive(add("a", 1));
    gate.receive(add("b", 1));
    assert.equal(gate.receive(add("c", 1)), "refused", "a third unknown replica is not held");
    for (let seq = 2; seq <= 4; seq++) gate.receive(add("a", seq));
    assert.equal(gate.heldCount(), 3 + 1);
    assert.deepEqual(fates, [
      "#1 unregistered_replica",
      "c#1 unregistered_replica",
      "a#1 unregistered_replica",
    ]);
  });

  it("refuses an add that cannot fit on any engine, and keeps applying after", () => {
    const { gate, applied, fates } = setup();
    gate.replicaRegistered("r1");
    gate.receive(add("r1", 1, U32_MAX));
    gate.receive(add("r1", 2, 1_600)); // exactly the KV capacity: fits
    gate.receive(add("r1", 3, 1_601));
    gate.receive(add("r1", 4, U32_MAX, "unknown-worker")); // bounded by the largest engine
    assert.deepEqual(applied, ["r1#2"]);
    assert.deepEqual(fates, ["r1#1 absurd_value", "r1#2 applied", "r1#3 absurd_value", "r1#4 absurd_value"]);
  });

  it("reports a delta whose application throws as malformed", () => {
    const { gate, fates } = setup();
    gate.replicaRegistered("r1");
    const bad = add("r1", 1);
    if (bad.event.case === "add") bad.event.value.requestId = "x-bad";
    assert.equal(gate.receive(bad), "judged");
    assert.deepEqual(fates, ["r1#1 malformed"]);
  });

  it("accepts a departed replica's last deltas for a short while", () => {
    const { gate, fates, advance } = setup();
    gate.replicaRegistered("r1");
    gate.replicaDeregistered("r1");
    assert.equal(gate.isLive("r1"), false);
    assert.equal(gate.receive(free("r1", 1, "q")), "judged");
    advance(2_001);
    gate.sweep();
    assert.equal(gate.receive(free("r1", 2, "q")), "held");
    assert.deepEqual(fates, ["r1#1 applied"]);
  });

  it("absurdAddReason ignores registrations without a capacity", () => {
    const a = add("r", 1, U32_MAX);
    assert.ok(a.event.case === "add");
    assert.equal(absurdAddReason(a.event.value, { kvTotalBlocks: 0, blockSize: 16 }), undefined);
    assert.match(
      absurdAddReason(a.event.value, { kvTotalBlocks: 10, blockSize: 16 }) ?? "",
      /prefill_tokens/,
    );
  });
});
