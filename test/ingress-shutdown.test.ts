// Graceful SIGTERM of `sluice ingress` (a real OS process): it stops accepting, lets the admitted
// stream finish, revokes its lease (its registration disappears at once, not after the TTL) and exits 0.

import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import {
  type FakeEngine,
  registerEngine,
  spawnIngress,
  startCluster,
  startFakeEngine,
  type TestCluster,
  until,
} from "./ingress-helpers.js";

let cluster: TestCluster;
let engine: FakeEngine;

before(async () => {
  cluster = await startCluster();
  engine = await startFakeEngine({ chunks: 20, chunkDelayMs: 50 });
  await registerEngine(cluster, { workerId: "e1", model: "m", url: engine.url });
});

after(async () => {
  await engine?.close();
  await cluster?.close();
});

describe("ingress graceful shutdown", () => {
  it("drains the admitted stream, revokes its registration and exits 0 on SIGTERM", async () => {
    const ingress = await spawnIngress(cluster, "graceful", [
      "--lease-ttl",
      "30s",
      "--shutdown-timeout",
      "10s",
    ]);
    const key = `${cluster.prefix}/instances/ingress/graceful`;
    await until("registered", async () => (await cluster.etcd.get(key).string()) !== null);
    const registration = JSON.parse((await cluster.etcd.get(key).string()) ?? "{}") as {
      addresses: { http: string; admin: string };
    };
    assert.equal(registration.addresses.http, ingress.url);
    assert.equal(registration.addresses.admin, ingress.adminUrl);
    await until("engine visible", async () => {
      const models = (await (await fetch(`${ingress.url}/v1/models`)).json()) as { data: unknown[] };
      return models.data.length === 1;
    });

    const response = await fetch(`${ingress.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", prompt: "x", stream: true }),
    });
    assert.equal(response.status, 200);
    const exited = once(ingress.child, "exit");
    ingress.child.kill("SIGTERM");
    const text = await response.text();
    assert.ok(text.endsWith("data: [DONE]\n\n"), "the admitted stream ran to its end");
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, ingress.logs.filter((l) => /shutdown|fail|error|warn/i.test(l)).join("\n"));
    // Revoked, not expired: gone long before the 30 s TTL.
    assert.equal(await cluster.etcd.get(key).string(), null);
  });
});
