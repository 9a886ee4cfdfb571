// Leased deletes after an etcd outage (etcd-watch.ts): etcd expires the leases of everyone it could
// not hear from, and the resumed watch delivers those deletes before the live owners re-register.
// The watch holds such deletes back for a grace period, so a live owner never leaves the view,
// a dead one leaves once the grace ends, and outside outages deletes arrive at once.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEtcdClient, createEtcdSession, watchPrefix } from "@sluice/runtime";
import { startEtcd, startFaultProxy } from "@sluice/testkit";

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const TTL_SEC = 2;
const GRACE_MS = 2_500;

describe("watchPrefix: leased deletes after an etcd outage", () => {
  it("keeps a re-registering owner, drops a dead one after the grace, and deletes at once otherwise", async () => {
    await using etcd = await startEtcd();
    await using proxy = await startFaultProxy({ target: etcd.clientUrl });
    // Everything but the test's own writer reaches etcd through the proxy, as a partitioned process would.
    const watcherClient = createEtcdClient([proxy.url("http")], 2000);
    const writer = createEtcdClient(etcd.endpoints, 2000);
    const alive = createEtcdSession({ endpoints: [proxy.url("http")], prefix: "/o", leaseTtlSec: TTL_SEC });
    void alive.putUnderLease("/o/engines/alive", "A");
    await alive.ready(AbortSignal.timeout(20_000));
    // Leases the test lets lapse: owners that die (kept alive until then, straight to etcd).
    const dying = writer.lease(TTL_SEC);
    await dying.put("/o/engines/dead").value("B").exec();
    const killedNormally = writer.lease(TTL_SEC);
    await killedNormally.put("/o/engines/killed").value("K").exec();
    await writer.put("/o/engines/static").value("S").exec();

    const log: { at: number; what: string }[] = [];
    const watch = await watchPrefix(
      watcherClient,
      "/o/engines/",
      {
        onSnapshot: () => undefined,
        onPut: (e) => log.push({ at: Date.now(), what: `put ${e.key.slice(11)}=${e.value}` }),
        onDelete: (key) => log.push({ at: Date.now(), what: `delete ${key.slice(11)}` }),
      },
      { leasedDeleteGraceMs: GRACE_MS, reachabilityProbeIntervalMs: 200 },
    );
    const deletes = () => log.filter((e) => e.what.startsWith("delete"));
    try {
      // Normal operation: a lapsed lease's key leaves the view as soon as etcd expires it.
      const killedAt = Date.now();
      killedNormally.release();
      await until("the killed owner's delete", () => log.some((e) => e.what === "delete killed"));
      const killedGoneMs = (log.find((e) => e.what === "delete killed")?.at ?? 0) - killedAt;
      assert.ok(killedGoneMs < TTL_SEC * 1000 + 1_500, `killed owner left after ${killedGoneMs} ms`);

      // The outage: long enough for etcd to expire every lease it cannot hear about.
      proxy.suspend();
      dying.release();
      await writer.delete().key("/o/engines/static").exec();
      await until(
        "both leased keys expired in etcd",
        async () =>
          (await writer.get("/o/engines/alive").string()) === null &&
          (await writer.get("/o/engines/dead").string()) === null,
      );
      await sleep(500);
      assert.deepEqual(
        deletes().map((e) => e.what),
        ["delete killed"],
        "nothing seen while partitioned",
      );
      const resumedAt = Date.now();
      proxy.resume();

      await until("the live owner re-registered", () => log.some((e) => e.what === "put alive=A"));
      await until("the dead owner's delete", () => log.some((e) => e.what === "delete dead"), 30_000);
      const whats = log.map((e) => e.what);
      assert.ok(!whats.includes("delete alive"), `the live owner never left the view: ${whats.join(", ")}`);
      // A key without a lease is not held back.
      assert.ok(whats.includes("delete static"), whats.join(", "));
      const deadGoneMs = (log.find((e) => e.what === "delete dead")?.at ?? 0) - resumedAt;
      assert.ok(deadGoneMs >= GRACE_MS - 100, `the dead owner was held back (${deadGoneMs} ms)`);
      assert.ok(deadGoneMs < GRACE_MS + 5_000, `the dead owner left ${deadGoneMs} ms after etcd came back`);
      assert.deepEqual([...watch.entries().keys()].sort(), ["/o/engines/alive"]);
    } finally {
      await watch.close();
      await alive.close();
      watcherClient.close();
      writer.close();
    }
  });
});
