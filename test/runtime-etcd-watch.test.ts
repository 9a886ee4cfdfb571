import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ConnectionClosedError,
  createEtcdClient,
  type PrefixWatchStatus,
  startPrefixWatch,
  type WatchEntry,
  watchPrefix,
} from "@sluice/runtime";
import { startEtcd, startFaultProxy } from "@sluice/testkit";

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** A client's channel may still be in gRPC reconnect backoff right after a restart: retry briefly. */
async function retrying<T>(write: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await write();
    } catch (err) {
      if (i >= attempts) throw err;
      await sleep(100);
    }
  }
}

/** Records every callback so tests can check exactly-once, in-order delivery. */
function recorder() {
  const log: string[] = [];
  const statuses: PrefixWatchStatus[] = [];
  let snapshot: readonly WatchEntry[] = [];
  let snapshotRevision = 0;
  return {
    log,
    statuses,
    snapshot: () => snapshot,
    snapshotRevision: () => snapshotRevision,
    handlers: {
      onSnapshot: (entries: readonly WatchEntry[], revision: number) => {
        snapshot = entries;
        snapshotRevision = revision;
      },
      onPut: (e: WatchEntry) => log.push(`put ${e.key}=${e.value}`),
      onDelete: (key: string) => log.push(`delete ${key}`),
      onStatus: (s: PrefixWatchStatus) => statuses.push(s),
    },
  };
}

describe("watchPrefix", () => {
  it("delivers a consistent snapshot, then each change once", async () => {
    await using etcd = await startEtcd();
    const client = createEtcdClient(etcd.endpoints, 2000);
    await client.put("/w/a").value("1").exec();
    await client.put("/w/b").value("2").exec();
    await client.put("/other").value("x").exec();
    const rec = recorder();
    const watch = await watchPrefix(client, "/w/", rec.handlers);
    try {
      assert.deepEqual(
        rec.snapshot().map((e) => `${e.key}=${e.value}`),
        ["/w/a=1", "/w/b=2"],
      );
      assert.equal(watch.revision, rec.snapshotRevision());
      await client.put("/w/c").value("3").exec();
      await client.put("/other").value("y").exec();
      await client.delete().key("/w/a").exec();
      await until("two events", () => rec.log.length >= 2);
      assert.deepEqual(rec.log, ["put /w/c=3", "delete /w/a"]);
      assert.deepEqual([...watch.entries().keys()].sort(), ["/w/b", "/w/c"]);
    } finally {
      await watch.close();
      client.close();
    }
  });

  it("resumes after an etcd restart and delivers what was written meanwhile", async (t) => {
    await using etcd = await startEtcd();
    if (etcd.lifecycleUnsupportedReason !== undefined) return t.skip(etcd.lifecycleUnsupportedReason);
    const watcherClient = createEtcdClient(etcd.endpoints, 2000);
    const writer = createEtcdClient(etcd.endpoints, 2000);
    await writer.put("/r/keep").value("0").exec();
    await writer.put("/r/gone").value("0").exec();
    const rec = recorder();
    // A long retry delay makes the writes below land before the watch is re-created.
    const watch = await watchPrefix(watcherClient, "/r/", rec.handlers, { retryDelayMs: 1500 });
    try {
      await writer.put("/r/before").value("1").exec();
      await until("first event", () => rec.log.length === 1);

      await etcd.restart();
      await until("disconnect noticed", () => rec.statuses.some((s) => s.type === "disconnected"));
      await retrying(() => writer.put("/r/during").value("2").exec());
      await retrying(() => writer.delete().key("/r/gone").exec());
      await retrying(() => writer.put("/r/during").value("3").exec());

      await until("missed events", () => rec.log.length >= 4);
      await sleep(300); // any duplicate would show up now
      assert.deepEqual(rec.log, ["put /r/before=1", "put /r/during=2", "delete /r/gone", "put /r/during=3"]);
      assert.ok(rec.statuses.some((s) => s.type === "resumed"));
      assert.equal(watch.entries().get("/r/during")?.value, "3");
    } finally {
      await watch.close();
      watcherClient.close();
      writer.close();
    }
  });

  it("re-reads and delivers the difference when missed history was compacted", async () => {
    await using etcd = await startEtcd();
    await using proxy = await startFaultProxy({ target: etcd.clientUrl });
    const watcherClient = createEtcdClient([proxy.url("http")], 2000);
    const writer = createEtcdClient(etcd.endpoints, 2000);
    await writer.put("/c/a").value("1").exec();
    await writer.put("/c/b").value("1").exec();
    const rec = recorder();
    const watch = await watchPrefix(watcherClient, "/c/", rec.handlers, { retryDelayMs: 100 });
    try {
      // Partition the watcher, change things, and compact the history it would need to resume.
      proxy.suspend();
      proxy.resetConnections();
      await until("disconnect noticed", () => rec.statuses.some((s) => s.type === "disconnected"));
      await writer.delete().key("/c/a").exec();
      await writer.put("/c/b").value("2").exec();
      await writer.put("/c/b").value("3").exec();
      const last = await writer.put("/c/new").value("1").exec();
      await writer.kv.compact({ revision: last.header.revision, physical: true });
      proxy.resume();

      await until("resync", () => rec.statuses.some((s) => s.type === "resynced"));
      await until("diff delivered", () => rec.log.length >= 3);
      assert.deepEqual([...rec.log].sort(), ["delete /c/a", "put /c/b=3", "put /c/new=1"]);
      assert.deepEqual([...watch.entries().keys()].sort(), ["/c/b", "/c/new"]);

      await writer.put("/c/after").value("1").exec();
      await until("live again", () => rec.log.includes("put /c/after=1"));
    } finally {
      await watch.close();
      watcherClient.close();
      writer.close();
    }
  });

  it("startPrefixWatch started while etcd is down delivers the snapshot once it starts, then changes", async (t) => {
    await using etcd = await startEtcd();
    if (etcd.lifecycleUnsupportedReason !== undefined) return t.skip(etcd.lifecycleUnsupportedReason);
    const writer = createEtcdClient(etcd.endpoints, 2000);
    await writer.put("/bg/a").value("1").exec();
    await etcd.stop();
    const watcherClient = createEtcdClient(etcd.endpoints, 2000);
    const rec = recorder();
    const watch = startPrefixWatch(watcherClient, "/bg/", rec.handlers, { retryDelayMs: 100 });
    try {
      assert.equal(watch.hasSnapshot, false);
      await until("a failed first read", () => rec.statuses.some((s) => s.type === "disconnected"));
      assert.equal(watch.entries().size, 0);

      await etcd.start();
      await watch.ready(AbortSignal.timeout(30_000));
      assert.deepEqual(
        rec.snapshot().map((e) => `${e.key}=${e.value}`),
        ["/bg/a=1"],
      );
      await retrying(() => writer.put("/bg/b").value("2").exec());
      await until("the change after the snapshot", () => rec.log.length >= 1);
      assert.deepEqual(rec.log, ["put /bg/b=2"]);
    } finally {
      await watch.close();
      watcherClient.close();
      writer.close();
    }
  });

  it("startPrefixWatch closes promptly during an outage and fails pending waits", async (t) => {
    await using etcd = await startEtcd();
    if (etcd.lifecycleUnsupportedReason !== undefined) return t.skip(etcd.lifecycleUnsupportedReason);
    await etcd.stop();
    const client = createEtcdClient(etcd.endpoints, 2000);
    const rec = recorder();
    const watch = startPrefixWatch(client, "/down/", rec.handlers, { retryDelayMs: 100 });
    const waiting = watch.ready();
    await sleep(300);
    const started = Date.now();
    await watch.close();
    assert.ok(Date.now() - started < 1_000, `close took ${Date.now() - started} ms`);
    await assert.rejects(waiting, ConnectionClosedError);
    assert.equal(watch.hasSnapshot, false);
    client.close();
  });
});
