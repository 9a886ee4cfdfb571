import { strict as assert } from "node:assert";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import { ServerNotInstalledError } from "./errors.js";
import { ETCD_ENDPOINTS_ENV, startEtcd } from "./etcd-server.js";

const b64 = (s: string): string => Buffer.from(s).toString("base64");

/** Uses etcd's JSON gRPC gateway so the test kit stays free of client dependencies. */
async function putKey(endpoint: string, key: string, value: string): Promise<void> {
  const res = await fetch(`${endpoint}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({ key: b64(key), value: b64(value) }),
  });
  assert.equal(res.status, 200, await res.text());
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

describe("startEtcd", () => {
  it("starts etcd on free ports and keeps its data across restart and kill", async () => {
    let dataDir: string | undefined;
    {
      await using etcd = await startEtcd({ allowExternal: false });
      dataDir = etcd.dataDir;
      assert.match(etcd.clientUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.deepEqual(etcd.endpoints, [etcd.clientUrl]);
      await putKey(etcd.clientUrl, "/k", "v1");

      await etcd.restart();
      assert.equal(await getKey(etcd.clientUrl, "/k"), "v1");

      await etcd.kill();
      await assert.rejects(fetch(`${etcd.clientUrl}/health`));
      await etcd.start();
      assert.equal(await getKey(etcd.clientUrl, "/k"), "v1");
    }
    assert.ok(dataDir !== undefined);
    assert.equal(existsSync(dataDir), false, "temp dir removed on dispose");
  });

  it("says how to install a missing binary", async () => {
    await assert.rejects(
      startEtcd({ allowExternal: false, env: { PATH: "/nonexistent-sluice-path" } }),
      (err) => {
        assert.ok(err instanceof ServerNotInstalledError);
        assert.match(err.message, /etcd was not found on PATH.*apt-get install nats-server etcd-server/s);
        return true;
      },
    );
  });

  it("splits an external endpoint list from the environment", async () => {
    await using etcd = await startEtcd({ env: { [ETCD_ENDPOINTS_ENV]: "http://a:2379, http://b:2379" } });
    assert.deepEqual(etcd.endpoints, ["http://a:2379", "http://b:2379"]);
    assert.equal(etcd.external, true);
  });
});
