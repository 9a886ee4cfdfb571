import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { campaign, currentLeader, type LeadershipLossReason, openEtcdSession } from "@sluice/runtime";
import { startEtcd } from "@sluice/testkit";

describe("leader election", () => {
  it("hands leadership to the next candidate when the leader's lease is revoked", async () => {
    await using etcd = await startEtcd();
    const opts = { endpoints: etcd.endpoints, prefix: "/e", leaseTtlSec: 3 };
    const a = await openEtcdSession(opts);
    const b = await openEtcdSession(opts);
    try {
      const leaderA = await campaign(a, "aggregator", "A");
      assert.equal(leaderA.isLeader, true);
      assert.equal(await currentLeader(a, "aggregator"), "A");
      const lostA = new Promise<LeadershipLossReason>((resolve) => leaderA.onLost(resolve));

      let bElected = false;
      const campaignB = campaign(b, "aggregator", "B").then((l) => {
        bElected = true;
        return l;
      });
      await sleep(500);
      assert.equal(bElected, false, "B must wait while A leads");

      // What happens to a crashed or partitioned leader: its lease is gone.
      await b.client.leaseClient.leaseRevoke({ ID: await a.leaseId() });
      const leaderB = await campaignB;
      assert.equal(leaderB.isLeader, true);
      const reason = await lostA;
      assert.ok(reason === "key-deleted" || reason === "lease-lost", reason);
      assert.equal(leaderA.isLeader, false);
      assert.equal(await currentLeader(b, "aggregator"), "B");

      // A campaigns again (on its re-granted lease) and takes over when B resigns.
      const again = campaign(a, "aggregator", "A2");
      await sleep(300);
      await leaderB.resign();
      const leaderA2 = await again;
      assert.equal(leaderA2.isLeader, true);
      assert.equal(await currentLeader(a, "aggregator"), "A2");
      await leaderA2.resign();
      assert.equal(await currentLeader(a, "aggregator"), undefined);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("stops campaigning when aborted", async () => {
    await using etcd = await startEtcd();
    const opts = { endpoints: etcd.endpoints, prefix: "/e2", leaseTtlSec: 3 };
    const a = await openEtcdSession(opts);
    const b = await openEtcdSession(opts);
    try {
      const leaderA = await campaign(a, "x", "A");
      const controller = new AbortController();
      const pending = campaign(b, "x", "B", { signal: controller.signal });
      await sleep(200);
      controller.abort(new Error("shutting down"));
      await assert.rejects(pending, /shutting down/);
      const keys = await b.client.getAll().prefix("/e2/elections/x/").keys();
      assert.equal(keys.length, 1, "the aborted candidate removed its key");
      assert.equal(leaderA.isLeader, true);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
