import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import {
  ConnectionClosedError,
  createEtcdClient,
  createEtcdSession,
  type EtcdSessionEvent,
  type InstanceRegistration,
  openEtcdSession,
} from "@sluice/runtime";
import { startEtcd } from "@sluice/testkit";

const FIXTURE = fileURLToPath(new URL("./runtime-fixture-register.ts", import.meta.url));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("etcd session", () => {
  it("registration vanishes within TTL + 1 s after the owner is SIGKILLed", async () => {
    await using etcd = await startEtcd();
    const client = createEtcdClient(etcd.endpoints, 2000);
    const ttlSec = 2;
    const child = spawn(
      process.execPath,
      [
        "--conditions=sluice-src",
        "--import",
        "tsx",
        FIXTURE,
        etcd.endpoints.join(","),
        "/t1",
        "victim",
        String(ttlSec),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      let stdout = "";
      child.stdout.on("data", (c: Buffer) => {
        stdout += c.toString();
      });
      await waitFor(
        "child registration",
        async () => (stdout.includes("registered") ? true : undefined),
        30_000,
      );
      const key = "/t1/instances/fixture/victim";
      const raw = await client.get(key).string();
      assert.ok(raw !== null, "registered key exists");
      const registration = JSON.parse(raw) as InstanceRegistration;
      assert.equal(registration.role, "fixture");
      assert.equal(registration.id, "victim");
      assert.equal(registration.pid, child.pid);
      assert.equal(registration.version, "test");
      assert.ok(!Number.isNaN(Date.parse(registration.started_at)));

      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
      const killedAt = Date.now();
      await waitFor("key expiry", async () => ((await client.get(key).string()) === null ? true : undefined));
      const goneAfterMs = Date.now() - killedAt;
      assert.ok(
        goneAfterMs <= ttlSec * 1000 + 1000,
        `key vanished after ${goneAfterMs} ms, TTL is ${ttlSec} s`,
      );
    } finally {
      child.kill("SIGKILL");
      client.close();
    }
  });

  it("close() removes registrations at once", async () => {
    await using etcd = await startEtcd();
    const client = createEtcdClient(etcd.endpoints, 2000);
    const session = await openEtcdSession({ endpoints: etcd.endpoints, prefix: "/t2", leaseTtlSec: 30 });
    const key = await session.register("router", "r1", { addresses: { grpc: "127.0.0.1:1" }, version: "1" });
    await session.putUnderLease("/t2/engines/w1", "{}");
    assert.equal(key, "/t2/instances/router/r1");
    assert.notEqual(await client.get(key).string(), null);
    await session.close();
    // No waiting: the lease is revoked, not left to expire.
    assert.equal(await client.get(key).string(), null);
    assert.equal(await client.get("/t2/engines/w1").string(), null);
    client.close();
  });

  it("re-grants a lost lease and writes every registration again", async () => {
    await using etcd = await startEtcd();
    const client = createEtcdClient(etcd.endpoints, 2000);
    const session = await openEtcdSession({ endpoints: etcd.endpoints, prefix: "/t3", leaseTtlSec: 3 });
    try {
      const events: EtcdSessionEvent[] = [];
      session.onEvent((e) => events.push(e));
      const key = await session.register("ingress", "i1", { addresses: {}, version: "1" });
      await session.putUnderLease("/t3/extra", "x");
      const oldLease = await session.leaseId();
      // Revoke behind the session's back: what etcd does when the lease expired during a partition.
      await client.leaseClient.leaseRevoke({ ID: oldLease });
      const rereg = await waitFor("re-registration", async () =>
        events.find((e) => e.type === "reregistered"),
      );
      assert.ok(rereg.type === "reregistered");
      assert.deepEqual([...rereg.keys].sort(), [key, "/t3/extra"].sort());
      assert.ok(events.some((e) => e.type === "lease-lost" && e.leaseId === oldLease));
      const newLease = await session.leaseId();
      assert.notEqual(newLease, oldLease);
      const res = await client.getAll().prefix("/t3/").exec();
      assert.equal(res.kvs.length, 2);
      for (const kv of res.kvs) assert.equal(String(kv.lease), newLease);
    } finally {
      await session.close();
      client.close();
    }
  });

  it("a session started while etcd is down registers once etcd starts", async (t) => {
    await using etcd = await startEtcd();
    if (etcd.lifecycleUnsupportedReason !== undefined) return t.skip(etcd.lifecycleUnsupportedReason);
    await etcd.stop();
    const started = Date.now();
    const session = createEtcdSession({
      endpoints: etcd.endpoints,
      prefix: "/t4",
      leaseTtlSec: 2,
      regrantDelayMs: 100,
      maxRegrantDelayMs: 500,
    });
    assert.ok(Date.now() - started < 1_000, "returned without waiting for etcd");
    const events: EtcdSessionEvent[] = [];
    session.onEvent((e) => events.push(e));
    const registered = session.register("mock-engine", "m1", { addresses: {}, version: "1" });
    const put = session.putUnderLease("/t4/engines/w1", '{"w":1}');
    const client = createEtcdClient(etcd.endpoints, 2000);
    try {
      await waitFor("a failed grant", async () => events.find((e) => e.type === "regrant-failed"));
      assert.equal(session.hasLease, false);

      await etcd.start();
      await session.ready(AbortSignal.timeout(30_000));
      assert.equal(session.hasLease, true);
      assert.equal(await registered, "/t4/instances/mock-engine/m1");
      await put;
      const leaseId = await session.leaseId();
      const res = await client.getAll().prefix("/t4/").exec();
      assert.deepEqual(res.kvs.map((kv) => kv.key.toString()).sort(), [
        "/t4/engines/w1",
        "/t4/instances/mock-engine/m1",
      ]);
      for (const kv of res.kvs) assert.equal(String(kv.lease), leaseId);
    } finally {
      await session.close();
    }
    assert.equal((await client.getAll().prefix("/t4/").keys()).length, 0, "revoked on close");
    client.close();
  });

  it("close() while etcd is down returns within a second and fails pending writes", async (t) => {
    await using etcd = await startEtcd();
    if (etcd.lifecycleUnsupportedReason !== undefined) return t.skip(etcd.lifecycleUnsupportedReason);
    await etcd.stop();
    const session = createEtcdSession({ endpoints: etcd.endpoints, prefix: "/t5", leaseTtlSec: 2 });
    const registered = session.register("ingress", "i1", { addresses: {}, version: "1" });
    const ready = session.ready();
    await sleep(300);
    const started = Date.now();
    await session.close();
    assert.ok(Date.now() - started < 1_000, `close took ${Date.now() - started} ms`);
    await assert.rejects(registered, ConnectionClosedError);
    await assert.rejects(ready, ConnectionClosedError);
    await assert.rejects(session.leaseId(), ConnectionClosedError);

    // openEtcdSession() is bounded by its signal, and closes what it opened.
    await assert.rejects(
      openEtcdSession({ endpoints: etcd.endpoints, signal: AbortSignal.timeout(300) }),
      (err: Error) => err.name === "TimeoutError",
    );

    // A session that held a lease when etcd went away also closes promptly (the TTL cleans up).
    await etcd.start();
    const held = await openEtcdSession({ endpoints: etcd.endpoints, prefix: "/t5", leaseTtlSec: 2 });
    await held.register("ingress", "i2", { addresses: {}, version: "1" });
    await etcd.stop();
    const heldStarted = Date.now();
    await held.close();
    assert.ok(Date.now() - heldStarted < 2_000, `close took ${Date.now() - heldStarted} ms`);
  });
});
