import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  aggregateClusterLoad,
  clusterAggregateOptionsWithDefaults,
  clusterLoadChanged,
  type ObservedEngineLoad,
  type PredictedWorkerLoad,
} from "./cluster-aggregate.js";
import { ClusterAggregateConfigError } from "./errors.js";

const options = clusterAggregateOptionsWithDefaults({
  kvOvercommit: 1,
  classes: [
    { name: "critical", limitShare: 1 },
    { name: "sheddable", limitShare: 0.5 },
  ],
});

const load = (o: Partial<ObservedEngineLoad>): ObservedEngineLoad => ({
  waiting: 0,
  running: 0,
  kvUsedBlocks: 0,
  pendingPrefillTokens: 0,
  prefillTokensPerS: 0,
  receivedAtMs: 1_000,
  ...o,
});

const engines = [
  { workerId: "a", model: "m", kvTotalBlocks: 100, maxNumSeqs: 8 },
  { workerId: "b", model: "m", kvTotalBlocks: 300, maxNumSeqs: 8 },
  { workerId: "c", model: "other", kvTotalBlocks: 50, maxNumSeqs: 4 },
];

describe("aggregateClusterLoad", () => {
  it("sums capacity and observed load per model, with headroom by class share", () => {
    const observed = new Map([
      [
        "a",
        load({
          kvUsedBlocks: 40,
          running: 2,
          waiting: 1,
          pendingPrefillTokens: 1000,
          prefillTokensPerS: 10_000,
        }),
      ],
      [
        "b",
        load({
          kvUsedBlocks: 60,
          running: 3,
          pendingPrefillTokens: 200,
          prefillTokensPerS: 1000,
          receivedAtMs: 1_200,
        }),
      ],
    ]);
    const [m, other] = aggregateClusterLoad(
      { engines, observed, predicted: new Map(), nowMs: 1_500 },
      options,
    );
    assert.ok(m && other);
    assert.equal(m.model, "m");
    assert.equal(m.liveEngines, 2);
    assert.equal(m.capacityKvBlocks, 400);
    assert.equal(m.capacitySeqs, 16);
    assert.equal(m.observedKvUsedBlocks, 100);
    assert.equal(m.observedRunning, 5);
    assert.equal(m.observedWaiting, 1);
    assert.equal(m.observedPrefillTokensPerS, 11_000);
    assert.equal(m.freshnessMs, 500);
    assert.deepEqual(m.staleWorkerIds, []);
    const [critical, sheddable] = m.classHeadroom;
    assert.deepEqual(critical, {
      requestClass: "critical",
      inflightRequests: 10,
      kvBlocks: 300,
      predictedTtftMs: 100,
    });
    assert.equal(sheddable?.kvBlocks, 100);
    assert.equal(sheddable?.inflightRequests, 2);
    // "other" has an engine that never reported: flagged stale, freshness at the stale bound.
    assert.deepEqual(other.staleWorkerIds, ["c"]);
    assert.equal(other.freshnessMs, options.staleAfterMs);
  });

  it("keeps predicted load apart from observed and uses the larger for headroom", () => {
    const observed = new Map([["a", load({ kvUsedBlocks: 10, running: 1 })]]);
    const predicted = new Map<string, PredictedWorkerLoad>([
      ["a", { activeBlocks: 70, pendingPrefillTokens: 500, requests: 4 }],
    ]);
    const [m] = aggregateClusterLoad(
      { engines: engines.slice(0, 1), observed, predicted, nowMs: 1_000 },
      options,
    );
    assert.equal(m?.observedKvUsedBlocks, 10);
    assert.equal(m?.predictedActiveBlocks, 70);
    assert.equal(m?.predictedPendingPrefillTokens, 500);
    assert.equal(m?.classHeadroom[0]?.kvBlocks, 30);
    assert.equal(m?.classHeadroom[0]?.inflightRequests, 4);
  });

  it("counts live ingresses' in-flight load, skipping stale ingresses", () => {
    const observed = new Map([["a", load({ kvUsedBlocks: 10, running: 1, receivedAtMs: 1_000 })]]);
    const ingress = [
      {
        instanceId: "i1",
        receivedAtMs: 900,
        staleAfterMs: 300,
        models: [{ model: "m", requests: 3, kvBlocks: 50 }],
      },
      {
        instanceId: "i2",
        receivedAtMs: 0,
        staleAfterMs: 300,
        models: [{ model: "m", requests: 100, kvBlocks: 1 }],
      },
      {
        instanceId: "i3",
        receivedAtMs: 1_000,
        staleAfterMs: 300,
        models: [{ model: "unserved", requests: 9, kvBlocks: 9 }],
      },
    ];
    const views = aggregateClusterLoad(
      { engines: engines.slice(0, 1), observed, predicted: new Map(), ingress, nowMs: 1_000 },
      options,
    );
    assert.equal(views.length, 1);
    const [m] = views;
    assert.equal(m?.ingressInflightRequests, 3);
    assert.equal(m?.ingressInflightKvBlocks, 50);
    assert.equal(m?.freshnessMs, 100);
    assert.equal(m?.classHeadroom[0]?.kvBlocks, 100 - 50);
    assert.equal(m?.classHeadroom[0]?.inflightRequests, 8 - 3);
  });

  it("flags engines whose last snapshot is older than staleAfterMs", () => {
    const observed = new Map([
      ["a", load({ receivedAtMs: 0 })],
      ["b", load({ receivedAtMs: 9_000 })],
    ]);
    const [m] = aggregateClusterLoad({ engines, observed, predicted: new Map(), nowMs: 10_000 }, options);
    assert.deepEqual(m?.staleWorkerIds, ["a"]);
    assert.equal(m?.freshnessMs, 10_000);
  });
});

describe("clusterLoadChanged", () => {
  const view = (kv: number, nowMs: number) =>
    aggregateClusterLoad(
      {
        engines: engines.slice(0, 1),
        observed: new Map([["a", load({ kvUsedBlocks: kv })]]),
        predicted: new Map(),
        nowMs,
      },
      options,
    );
  it("ignores freshness but sees load, capacity and stale-set changes", () => {
    assert.equal(clusterLoadChanged(undefined, view(1, 1_000), options), true);
    assert.equal(clusterLoadChanged(view(1, 1_000), view(1, 1_100), options), false);
    assert.equal(clusterLoadChanged(view(1, 1_000), view(2, 1_000), options), true);
    assert.equal(clusterLoadChanged(view(1, 1_000), view(1, 5_000), options), true);
    assert.equal(clusterLoadChanged(view(1, 1_000), [], options), true);
  });
});

describe("clusterAggregateOptionsWithDefaults", () => {
  it("refuses invalid options", () => {
    assert.throws(
      () => clusterAggregateOptionsWithDefaults({ staleAfterMs: 0 }),
      ClusterAggregateConfigError,
    );
    assert.throws(
      () => clusterAggregateOptionsWithDefaults({ kvOvercommit: -1 }),
      ClusterAggregateConfigError,
    );
    assert.throws(
      () => clusterAggregateOptionsWithDefaults({ classes: [{ name: "x", limitShare: 1.5 }] }),
      ClusterAggregateConfigError,
    );
    assert.throws(() => clusterAggregateOptionsWithDefaults({ classes: [] }), ClusterAggregateConfigError);
  });
});
