import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { clusterAggregateOptionsWithDefaults } from "@sluice/core";
import { EngineLoadSchema, IngressStateSchema, RouterSyncSchema } from "@sluice/proto";
import { createClusterState } from "./cluster-state.js";

const enc = (o: object) => new TextEncoder().encode(JSON.stringify(o));
const load = (workerId: string, kvUsedBlocks: number) =>
  toBinary(EngineLoadSchema, create(EngineLoadSchema, { workerId, kvUsedBlocks, running: 1 }));

describe("cluster state", () => {
  it("aggregates registered engines only, dropping malformed input", () => {
    const state = createClusterState(clusterAggregateOptionsWithDefaults(), "t");
    assert.equal(
      state.putEngine("a", enc({ worker_id: "a", model: "m", kv_total_blocks: 100, max_num_seqs: 4 })),
      "applied",
    );
    assert.equal(state.putEngine("b", enc({ worker_id: "other", model: "m" })), "malformed");
    assert.equal(state.putEngine("c", new TextEncoder().encode("{")), "malformed");
    assert.equal(state.putEngine("d", enc({ worker_id: "d" })), "malformed", "a registration needs a model");
    assert.equal(state.observeLoad("a", load("a", 10), 1_000), "applied");
    assert.equal(state.observeLoad("a", load("x", 10), 1_000), "malformed", "payload names another worker");
    assert.equal(state.observeLoad("a", new Uint8Array([0xff, 0xff]), 1_000), "malformed");
    assert.equal(state.observeLoad("z", load("z", 99), 1_000), "applied");
    const [m] = state.view(1_000);
    assert.equal(m?.liveEngines, 1);
    assert.equal(m?.observedKvUsedBlocks, 10, "unregistered z does not count");
    assert.equal(state.engineCount, 1);
    state.deleteEngine("a");
    assert.deepEqual(state.view(1_000), []);
  });

  it("keeps routers' prediction apart from the observation", () => {
    const state = createClusterState(clusterAggregateOptionsWithDefaults(), "t");
    state.putEngine("a", enc({ model: "m", kv_total_blocks: 100, max_num_seqs: 4 }));
    state.observeLoad("a", load("a", 5), 0);
    assert.equal(state.routersSeen, false);
    const sync = create(RouterSyncSchema, {
      replicaId: "r1",
      seq: 1n,
      event: {
        case: "add",
        value: {
          requestId: "q",
          workerId: "a",
          blockHashes: [1n, 2n],
          blocks: 3,
          prefillTokens: 40,
          overlapBlocks: 0,
        },
      },
    });
    state.routerRegistered("r1");
    assert.equal(state.applyRouterSync(toBinary(RouterSyncSchema, sync)), "applied");
    assert.equal(state.applyRouterSync(new Uint8Array([0xff, 0x01])), "malformed");
    const [m] = state.view(0);
    assert.equal(m?.observedKvUsedBlocks, 5);
    assert.equal(m?.predictedActiveBlocks, 3);
    assert.equal(m?.predictedPendingPrefillTokens, 40);
    assert.equal(m?.predictedRequests, 1);
  });

  it("takes router.sync only from registered replicas, and only adds that fit on an engine", () => {
    let now = 0;
    const late: string[] = [];
    const state = createClusterState(clusterAggregateOptionsWithDefaults(), "t", undefined, {
      nowMs: () => now,
      registrationWaitMs: 1_000,
      onLateOutcome: (outcome) => late.push(outcome),
    });
    state.putEngine("a", enc({ model: "m", kv_total_blocks: 100, block_size: 16, max_num_seqs: 4 }));
    const add = (replicaId: string, seq: bigint, requestId: string, prefillTokens: number) =>
      toBinary(
        RouterSyncSchema,
        create(RouterSyncSchema, {
          replicaId,
          seq,
          event: {
            case: "add",
            value: { requestId, workerId: "a", blockHashes: [], blocks: 1, prefillTokens, overlapBlocks: 0 },
          },
        }),
      );
    const predicted = () => state.view(now)[0]?.predictedPendingPrefillTokens ?? 0;
    // A replica whose registration is not seen yet: held, then applied once it shows.
    assert.equal(state.applyRouterSync(add("r2", 1n, "q1", 40)), "held");
    assert.equal(predicted(), 0);
    state.routerRegistered("r2");
    assert.deepEqual(late, ["applied"]);
    assert.equal(predicted(), 40);
    // A replica nobody runs: refused once the wait ends, never applied.
    assert.equal(state.applyRouterSync(add("ghost", 1n, "g1", 4_294_967_295)), "held");
    now = 1_001;
    state.sweepRouterSync();
    assert.deepEqual(late, ["applied", "unregistered_replica"]);
    assert.equal(predicted(), 40);
    // A registered replica's add beyond any engine's KV (100 blocks × 16 tokens).
    assert.equal(state.applyRouterSync(add("r2", 2n, "q2", 1_601)), "absurd_value");
    assert.equal(predicted(), 40);
    // Gone from etcd: its deltas are held again (after a short grace), not applied.
    state.routerDeregistered("r2");
    now += 60_000;
    state.sweepRouterSync();
    assert.equal(state.applyRouterSync(add("r2", 3n, "q3", 10)), "held");
  });

  it("sums live ingresses' in-flight load per model and forgets silent ones", () => {
    const state = createClusterState(clusterAggregateOptionsWithDefaults(), "t");
    state.putEngine("a", enc({ model: "m", kv_total_blocks: 100, max_num_seqs: 4 }));
    const ingress = (instanceId: string, requests: number) =>
      toBinary(
        IngressStateSchema,
        create(IngressStateSchema, {
          instanceId,
          heartbeatIntervalMs: 100,
          inflight: [
            { model: "m", requestClass: "standard", inflightRequests: requests, inflightKvBlocks: 10 },
            { model: "m", requestClass: "critical", inflightRequests: 1, inflightKvBlocks: 5 },
          ],
        }),
      );
    assert.equal(state.observeIngress(ingress("i1", 2), 0), "applied");
    assert.equal(state.observeIngress(ingress("i2", 4), 250), "applied");
    assert.equal(state.observeIngress(ingress("", 4), 250), "malformed");
    assert.equal(state.view(250)[0]?.ingressInflightRequests, 3 + 5);
    assert.equal(state.view(250)[0]?.ingressInflightKvBlocks, 30);
    // i1 last heard at 0 with a 100 ms heartbeat: gone after 3 heartbeats.
    assert.equal(state.view(320)[0]?.ingressInflightRequests, 5);
  });
});
