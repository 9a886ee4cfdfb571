// Several frontends, one limit (DESIGN §4): two ingress instances enforce one global in-flight limit
// through `ingress.state` snapshots; a SIGKILLed instance's in-flight leaves the survivor's view
// within its lease TTL; with NATS down the survivor falls back to limit ÷ last known instance count
// (fail-static) and resyncs when NATS is back.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { LaunchedIngress } from "@sluice/ingress";
import {
  type FakeEngine,
  type IngressChild,
  launch,
  metricValue,
  registerEngine,
  spawnIngress,
  startCluster,
  startFakeEngine,
  type TestCluster,
  until,
} from "./ingress-helpers.js";

const LIMIT = 10;

let cluster: TestCluster;
let slow: FakeEngine;
let survivor: LaunchedIngress;
let doomed: IngressChild;
const holders: AbortController[] = [];

async function hold(url: string): Promise<number> {
  const controller = new AbortController();
  const response = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-sluice-class": "critical" },
    body: JSON.stringify({ model: "slow-llm", prompt: "hold", stream: true, max_tokens: 8 }),
    signal: controller.signal,
  });
  if (response.status === 200) {
    holders.push(controller);
    void response.text().catch(() => {});
  } else await response.text();
  return response.status;
}

before(async () => {
  cluster = await startCluster();
  slow = await startFakeEngine({ chunks: 600, chunkDelayMs: 100 });
  await registerEngine(cluster, { workerId: "slow-1", model: "slow-llm", url: slow.url });
  await cluster.etcd
    .put(`${cluster.prefix}/policies/_default`)
    .value(JSON.stringify({ ingress: { maxInflight: LIMIT }, rejection: { retryAfterMaxMs: 1000 } }));
  const common = ["--trust-class-header", "--lease-ttl", "2s", "--state-heartbeat", "250ms"];
  survivor = await launch(cluster, ["--id", "survivor", ...common]);
  doomed = await spawnIngress(cluster, "doomed", common);
  await until("each sees the other", () => survivor.sync.livePeers(performance.now()).length === 1, 15_000);
});

after(async () => {
  for (const h of holders) h.abort();
  doomed?.child.kill("SIGKILL");
  await survivor?.stop();
  await slow?.close();
  await cluster?.close();
});

/** Setup only: admission right after a peer's change may wait for its acknowledgement (mirror). */
async function holdEventually(url: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if ((await hold(url)) === 200) return;
    await sleep(50);
  }
  assert.fail("never admitted");
}

/** Waits until every peer has acknowledged the survivor's admissions (no mirrored load left). */
async function settled(): Promise<void> {
  await until("peers acknowledged", () =>
    survivor.sync
      .view("slow-llm")
      .peers(performance.now())
      .every((p) => p.unacknowledgedRequests === 0),
  );
}

describe("ingress multi-frontend sync", () => {
  it("enforces one global limit across two instances", async () => {
    for (let i = 0; i < 6; i++) await holdEventually(doomed.url);
    await until(
      "doomed's in-flight visible to the survivor",
      () => survivor.sync.globalTotal(performance.now()).requests === 6,
    );
    // core's L1 reserves one slot per live instance for a concurrent burst elsewhere (charge = 2):
    // with 6 in flight on the peer, the survivor may take 3 (6 + 3 + 1 reserved = 10).
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      await settled();
      statuses.push(await hold(survivor.url));
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    await until(
      "survivor's in-flight visible to doomed",
      async () =>
        (await metricValue(doomed.adminUrl, 'sluice_ingress_inflight_requests{scope="global"}')) === 9,
    );
    assert.equal(await hold(doomed.url), 429);
    assert.equal(await metricValue(survivor.adminUrl, "sluice_ingress_peers"), 1);
  });

  it("drops a killed instance's in-flight within its lease TTL", async () => {
    doomed.child.kill("SIGKILL");
    const killedAt = performance.now();
    await until(
      "doomed's in-flight gone",
      () => survivor.sync.globalTotal(performance.now()).requests === 3,
      10_000,
    );
    // Silent but still leased, doomed keeps the survivor on its fail-static share (frontend-sync.ts);
    // once its lease is gone (TTL 2 s + etcd's expiry sweep and the watch) the survivor is alone.
    await until(
      "doomed's lease gone",
      async () =>
        (await cluster.etcd.getAll().prefix(`${cluster.prefix}/instances/ingress/doomed`).keys()).length ===
        0,
      10_000,
    );
    await until(
      "survivor back on the global view",
      async () => (await metricValue(survivor.adminUrl, "sluice_ingress_synced")) === 1,
      10_000,
    );
    assert.ok(performance.now() - killedAt < 8_000, `took ${performance.now() - killedAt} ms`);
    // Alone, the survivor owns the whole limit: 3 held + 7 more.
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push(await hold(survivor.url));
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 200, 429]);
  });

  it("falls back to fail-static while NATS is down, then resyncs", async () => {
    // Release some: survivor holds 10; abort all but 3 of its holders.
    for (const h of holders.splice(0, holders.length - 3)) h.abort();
    await until("survivor down to 3 in flight", () => survivor.ledger.total().requests === 3);
    const second = await launch(cluster, [
      "--id",
      "second",
      "--trust-class-header",
      "--lease-ttl",
      "2s",
      "--state-heartbeat",
      "250ms",
    ]);
    try {
      // The gauge refresh is also what records the instance count fail-static divides by.
      await until(
        "survivor counts one peer",
        async () => (await metricValue(survivor.adminUrl, "sluice_ingress_peers")) === 1,
        15_000,
      );
      await until("survivor's view holds both instances, in sync", () => {
        const load = survivor.sync.load("slow-llm", performance.now());
        return load.globalStateAvailable && load.liveInstances === 2;
      });
      await cluster.nats.stop();
      await until(
        "survivor degraded",
        async () => (await metricValue(survivor.adminUrl, "sluice_ingress_synced")) === 0,
      );
      // Fail-static: limit ÷ last known instances (2) = 5 for the survivor's own requests.
      assert.equal(await hold(survivor.url), 200);
      assert.equal(await hold(survivor.url), 200);
      assert.equal(await hold(survivor.url), 429);
      await cluster.nats.start();
      await until(
        "survivor resynced",
        async () => (await metricValue(survivor.adminUrl, "sluice_ingress_synced")) === 1,
        15_000,
      );
      await until(
        "second sees survivor's 5",
        async () =>
          (await metricValue(second.adminUrl, 'sluice_ingress_inflight_requests{scope="global"}')) === 5,
      );
    } finally {
      await second.stop();
    }
  });
});
