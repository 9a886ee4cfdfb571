// The router service's consumer of peer deltas (`applySync`): only replicas registered in etcd,
// only adds that fit on a worker, every delta's fate reported once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type RouterSyncDelta,
  routerDecisionOptionsWithDefaults,
  type SyncOutcome,
  withPolicyDefaults,
} from "@sluice/core";
import type { RouterSyncFate } from "@sluice/runtime";
import { createRouterService } from "./router-service.js";
import { createWorkerRegistry } from "./worker-registry.js";

function setup() {
  let now = 10_000;
  const fates: string[] = [];
  const policy = withPolicyDefaults({});
  const service = createRouterService({
    replicaId: "r1",
    registry: createWorkerRegistry(),
    policyFor: () => policy,
    options: routerDecisionOptionsWithDefaults({}),
    publishSync: () => undefined,
    nowMs: () => now,
    syncGate: { registrationWaitMs: 2_000, departedKeepMs: 1_000 },
    onSyncFate: (delta: RouterSyncDelta, fate: RouterSyncFate<SyncOutcome>) =>
      fates.push(`${delta.replicaId}#${delta.seq} ${fate.kind === "refused" ? fate.reason : fate.kind}`),
  });
  service.putWorker({
    worker: { workerId: "w1", kvTotalBlocks: 1000, maxNumBatchedTokens: 512, blockSize: 16 },
    model: "m",
    address: "http://w1",
    source: "sluice",
  });
  return { service, fates, advance: (ms: number) => (now += ms) };
}

const add = (replicaId: string, seq: bigint, requestId: string, prefillTokens: number): RouterSyncDelta => ({
  replicaId,
  seq,
  timestampMs: 0,
  event: {
    case: "add",
    value: { requestId, workerId: "w1", blockHashes: [], blocks: 2, prefillTokens, overlapBlocks: 0 },
  },
});

describe("router service: peer deltas", () => {
  it("applies a new replica's deltas once its registration shows, in order", () => {
    const { service, fates } = setup();
    assert.equal(service.applySync(add("r2", 1n, "a", 100)), "held");
    assert.equal(service.load.load("w1").predictedPendingPrefillTokens, 0);
    service.replicaRegistered("r2");
    assert.equal(service.load.load("w1").predictedPendingPrefillTokens, 100);
    assert.equal(service.applySync(add("r2", 2n, "b", 50)), "judged");
    assert.equal(service.applySync(add("r2", 2n, "b", 50)), "judged");
    assert.deepEqual(fates, ["r2#1 applied", "r2#2 applied", "r2#2 applied"]);
    assert.equal(service.load.load("w1").predictedPendingPrefillTokens, 150);
  });

  it("refuses a replica that never registers and an add beyond the worker's KV", () => {
    const { service, fates, advance } = setup();
    service.applySync(add("ghost", 1n, "g", 4_294_967_295));
    advance(2_001);
    service.expireStale();
    service.replicaRegistered("r2");
    service.applySync(add("r2", 1n, "huge", 16_001));
    assert.deepEqual(fates, ["ghost#1 unregistered_replica", "r2#1 absurd_value"]);
    assert.equal(service.load.load("w1").predictedPendingPrefillTokens, 0);
  });

  it("stops taking a replica's adds shortly after its registration went", () => {
    const { service, fates, advance } = setup();
    service.replicaRegistered("r2");
    service.forgetReplica("r2");
    service.applySync(add("r2", 1n, "late", 10)); // in flight when the lease went
    advance(1_001);
    service.expireStale();
    assert.equal(service.applySync(add("r2", 2n, "later", 10)), "held");
    assert.deepEqual(fates, ["r2#1 applied"]);
  });
});
