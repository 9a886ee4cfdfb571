// Per-tenant in-flight limits over HTTP, across two frontends: a tenant (matched by the SHA-256 of its
// API key) capped at `max_inflight` gets 429 with reason `tenant_inflight` once its requests in flight
// on EITHER instance reach the cap (the count rides on `ingress.state`), while another tenant is still
// admitted; releasing one of its requests lets it in again. Real nats-server and etcd.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { LaunchedIngress } from "@sluice/ingress";
import {
  type FakeEngine,
  launch,
  registerEngine,
  startCluster,
  startFakeEngine,
  type TestCluster,
  until,
} from "./ingress-helpers.js";

const sha256 = (key: string) => createHash("sha256").update(key).digest("hex");

let cluster: TestCluster;
let slow: FakeEngine;
let a: LaunchedIngress;
let b: LaunchedIngress;
const holders: AbortController[] = [];

interface Answer {
  status: number;
  reason?: string;
  retryAfterMs?: string | null;
  controller: AbortController;
}

async function send(ingress: LaunchedIngress, apiKey: string): Promise<Answer> {
  const controller = new AbortController();
  const response = await fetch(`${ingress.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ model: "slow-llm", prompt: "hold", stream: true, max_tokens: 8 }),
    signal: controller.signal,
  });
  if (response.status === 200) {
    holders.push(controller);
    void response.text().catch(() => {});
    return { status: 200, controller };
  }
  const body = (await response.json()) as { sluice?: { reason?: string } };
  return {
    status: response.status,
    reason: body.sluice?.reason,
    retryAfterMs: response.headers.get("retry-after-ms"),
    controller,
  };
}

const tenantSeenBy = (ingress: LaunchedIngress, n: number) => () =>
  ingress.sync.tenantView("slow-llm", "capped").load(performance.now()).inflightRequests === n;

before(async () => {
  cluster = await startCluster();
  slow = await startFakeEngine({ chunks: 600, chunkDelayMs: 100 });
  await registerEngine(cluster, { workerId: "slow-1", model: "slow-llm", url: slow.url });
  await cluster.etcd.put(`${cluster.prefix}/policies/_default`).value(
    JSON.stringify({
      ingress: { maxInflight: 100 },
      tenants: [
        { tenant: "capped", apiKeySha256: [sha256("capped-key")], maxInflight: 2 },
        { tenant: "other", apiKeySha256: [sha256("other-key")] },
      ],
    }),
  );
  const common = ["--state-heartbeat", "250ms"];
  a = await launch(cluster, ["--id", "tenant-a", ...common]);
  b = await launch(cluster, ["--id", "tenant-b", ...common]);
  await until("each sees the other", () => a.sync.livePeers(performance.now()).length === 1, 15_000);
  await until("b sees a", () => b.sync.livePeers(performance.now()).length === 1, 15_000);
});

after(async () => {
  for (const h of holders) h.abort();
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await slow?.close();
  await cluster?.close();
});

describe("per-tenant in-flight limit", () => {
  it("caps the tenant across frontends with 429 tenant_inflight while another tenant is admitted", async () => {
    const first = await send(a, "capped-key");
    assert.equal(first.status, 200);
    // b learns a's tenant count from ingress.state (and a has b's acknowledgement, so no mirror left).
    await until("b sees the tenant's request on a", tenantSeenBy(b, 1));
    assert.equal((await send(b, "capped-key")).status, 200);
    await until("a sees both", tenantSeenBy(a, 2));
    for (const ingress of [a, b]) {
      const refused = await send(ingress, "capped-key");
      assert.equal(refused.status, 429);
      assert.equal(refused.reason, "tenant_inflight");
      assert.ok(Number(refused.retryAfterMs) >= 100);
      // The same cluster load leaves room for everyone else.
      assert.equal((await send(ingress, "other-key")).status, 200);
      assert.equal((await send(ingress, "anonymous-key")).status, 200);
    }
    // One of the tenant's requests ends: it may send again (through the other frontend).
    first.controller.abort();
    await until("b sees the release", tenantSeenBy(b, 1));
    assert.equal((await send(b, "capped-key")).status, 200);
  });

  it("releases every slot exactly once when the clients go away", async () => {
    for (const h of holders.splice(0)) h.abort();
    for (const ingress of [a, b]) {
      await until("in flight back to 0", () => ingress.ledger.total().requests === 0);
      const c = ingress.ledger.counters();
      assert.equal(c.admitted, c.completed + c.failed + c.cancelled);
    }
    await until("tenant count back to 0 everywhere", () => tenantSeenBy(a, 0)() && tenantSeenBy(b, 0)());
  });
});
