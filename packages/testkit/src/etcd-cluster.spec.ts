import { strict as assert } from "node:assert";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import { startEtcdCluster } from "./etcd-cluster.js";

const b64 = (s: string): string => Buffer.from(s).toString("base64");

/** etcd's JSON gRPC gateway, so the test kit stays free of client dependencies. */
async function putKey(endpoint: string, key: string, value: string): Promise<void> {
  const res = await fetch(`${endpoint}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({ key: b64(key), value: b64(value) }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** Retries while the cluster elects a new leader (etcd answers "request timed out" meanwhile). */
async function putEventually(
  endpoint: string,
  key: string,
  value: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${endpoint}/v3/kv/put`, {
      method: "POST",
      body: JSON.stringify({ key: b64(key), value: b64(value) }),
    }).catch(() => undefined);
    if (res?.status === 200) return;
    if (Date.now() > deadline) assert.fail(`put ${key} through ${endpoint} never succeeded`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function getKey(endpoint: string, key: string): Promise<string | undefined> {
  const res = await fetch(`${endpoint}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: b64(key) }),
  });
  const body = (await res.json()) as { kvs?: { value: string }[] };
  const value = body.kvs?.[0]?.value;
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
}

describe("startEtcdCluster", () => {
  it("starts a 3-member cluster that keeps serving without one member and takes it back", async () => {
    let dirs: (string | undefined)[] = [];
    {
      await using cluster = await startEtcdCluster();
      dirs = cluster.members.map((m) => m.dataDir);
      assert.equal(cluster.members.length, 3);
      assert.equal(new Set(cluster.endpoints).size, 3);
      const [a, b, c] = cluster.members;
      assert.ok(a !== undefined && b !== undefined && c !== undefined);
      // One replicated key space: written through one member, read through another.
      await putKey(a.clientUrl, "/k", "v1");
      assert.equal(await getKey(c.clientUrl, "/k"), "v1");

      const leader = await cluster.leaderIndex();
      assert.ok(leader !== undefined, "a leader is known");
      // Losing the leader is the harder case: the others elect a new one and keep a quorum.
      const lost = cluster.members[leader];
      assert.ok(lost !== undefined);
      await lost.kill();
      const survivor = cluster.members.find((m) => m.running);
      assert.ok(survivor !== undefined);
      await putEventually(survivor.clientUrl, "/k", "v2");
      const newLeader = await cluster.leaderIndex();
      assert.ok(newLeader !== undefined && newLeader !== leader, "a new leader among the survivors");

      await lost.start();
      assert.equal(await getKey(lost.clientUrl, "/k"), "v2", "the member rejoined and caught up");
    }
    for (const dir of dirs) assert.ok(dir !== undefined && !existsSync(dir), "temp dirs removed");
  });

  it("refuses a member count that is not a positive integer", async () => {
    await assert.rejects(startEtcdCluster({ members: 0 }), RangeError);
  });
});
