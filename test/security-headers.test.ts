// Class and tenant headers at the HTTP level (issue 9 §4): without --trust-class-header, a client's
// `x-sluice-class` can only lower its class unless its API key maps to a `trusted` tenant; an
// `x-sluice-tenant` header is never a credential (the tenant comes only from the policy's API-key
// mapping); and the class that reaches the engine-scheduler (which trusts the header for L3) is the
// one L1 resolved, not the client's copy. Real nats-server and etcd, a real ingress, which connects
// as a NATS user holding exactly the permissions of the docs/security.md recipe for an ingress.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LaunchedIngress } from "@sluice/ingress";
import { startEtcd, startNats } from "@sluice/testkit";
import { Etcd3 } from "etcd3";
import { connect, type NatsConnection } from "nats";
import {
  type FakeEngine,
  launch,
  registerEngine,
  startFakeEngine,
  type TestCluster,
  until,
} from "./ingress-helpers.js";

const N = "sluice.v1.default";
const INGRESS_PASSWORD = "ingress-pw-31b8";

/** The test cluster, with NATS requiring auth: the ingress user may use only its recipe subjects. */
async function startSecuredCluster(): Promise<TestCluster> {
  const [nats, etcdServer] = await Promise.all([
    startNats({
      jetstream: false,
      auth: {
        users: [
          {
            user: "ingress",
            password: INGRESS_PASSWORD,
            permissions: {
              publish: [`${N}.ingress.state`, `${N}.events.ingress.>`],
              subscribe: [`${N}.ingress.state`, `${N}.cluster.load`],
            },
          },
          { user: "observer", password: "observer-pw" },
        ],
      },
    }),
    startEtcd(),
  ]);
  const etcd = new Etcd3({ hosts: [...etcdServer.endpoints] });
  return {
    nats,
    etcdServer,
    etcd,
    prefix: "/sluice/v1",
    async close() {
      etcd.close();
      await Promise.allSettled([nats.dispose(), etcdServer.dispose()]);
    },
  };
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

interface AdmittedEvent {
  requestId: string;
  requestClass: string;
  tenant?: string;
}

let cluster: TestCluster;
let engine: FakeEngine;
let ingress: LaunchedIngress;
let nc: NatsConnection;
const admitted = new Map<string, AdmittedEvent>();
let counter = 0;
let dir: string;

/** Sends one request; returns the class the engine saw and the class/tenant of its admitted event. */
async function send(
  headers: Record<string, string>,
): Promise<{ upstreamClass: unknown; event: AdmittedEvent }> {
  const requestId = `sec-${++counter}`;
  const response = await fetch(`${ingress.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": requestId, ...headers },
    body: JSON.stringify({ model: "sec-llm", prompt: "p", max_tokens: 4 }),
  });
  assert.equal(response.status, 200, await response.text());
  const upstreamClass = engine.lastHeaders?.["x-sluice-class"];
  await until(`the admitted event of ${requestId}`, () => admitted.has(requestId));
  return { upstreamClass, event: admitted.get(requestId) as AdmittedEvent };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sluice-sec-headers-"));
  const passwordFile = join(dir, "nats-password");
  writeFileSync(passwordFile, `${INGRESS_PASSWORD}\n`, { mode: 0o600 });
  cluster = await startSecuredCluster();
  engine = await startFakeEngine();
  await registerEngine(cluster, { workerId: "sec-1", model: "sec-llm", url: engine.url });
  await cluster.etcd.put(`${cluster.prefix}/policies/_default`).value(
    JSON.stringify({
      defaultClass: "standard",
      tenants: [
        { tenant: "gateway", apiKeySha256: [sha256("gateway-key")], requestClass: "standard", trusted: true },
        { tenant: "acme", apiKeySha256: [sha256("acme-key")], requestClass: "standard" },
      ],
    }),
  );
  nc = await connect({ servers: cluster.nats.url, user: "observer", pass: "observer-pw" });
  const sub = nc.subscribe("sluice.v1.default.events.ingress.admitted");
  void (async () => {
    for await (const m of sub) {
      const event = JSON.parse(new TextDecoder().decode(m.data)) as AdmittedEvent;
      admitted.set(event.requestId, event);
    }
  })();
  await nc.flush();
  // No --trust-class-header. The admitted events this test reads prove the publish permissions suffice.
  ingress = await launch(cluster, ["--nats-user=ingress", `--nats-password-file=${passwordFile}`]);
  await until("the engine and policy to be visible", async () => {
    const r = await fetch(`${ingress.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer acme-key" },
      body: JSON.stringify({ model: "sec-llm", prompt: "p", max_tokens: 4 }),
    });
    await r.text();
    return r.status === 200 && admitted.size > 0 && [...admitted.values()].some((e) => e.tenant === "acme");
  });
});

after(async () => {
  await nc?.close();
  await ingress?.stop();
  await engine?.close();
  await cluster?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("class and tenant headers from clients", () => {
  it("an anonymous client asking for critical stays standard, at L1 and at the engine", async () => {
    const { upstreamClass, event } = await send({ "x-sluice-class": "critical" });
    assert.equal(event.requestClass, "standard");
    assert.equal(upstreamClass, "standard", "the client's x-sluice-class is not forwarded as given");
  });

  it("x-sluice-tenant is ignored: naming a trusted tenant neither makes you it nor lets you raise", async () => {
    const { upstreamClass, event } = await send({
      "x-sluice-tenant": "gateway",
      "x-sluice-class": "critical",
    });
    assert.equal(event.tenant ?? "", "", "no tenant without a matching API key");
    assert.equal(event.requestClass, "standard");
    assert.equal(upstreamClass, "standard");
  });

  it("an untrusted tenant's API key cannot raise its class but may lower it", async () => {
    const raised = await send({ authorization: "Bearer acme-key", "x-sluice-class": "critical" });
    assert.equal(raised.event.tenant, "acme");
    assert.equal(raised.event.requestClass, "standard");
    assert.equal(raised.upstreamClass, "standard");
    const lowered = await send({ authorization: "Bearer acme-key", "x-sluice-class": "sheddable" });
    assert.equal(lowered.event.requestClass, "sheddable");
    assert.equal(lowered.upstreamClass, "sheddable");
  });

  it("a trusted tenant's API key may choose any class", async () => {
    const { upstreamClass, event } = await send({
      authorization: "Bearer gateway-key",
      "x-sluice-class": "critical",
    });
    assert.equal(event.tenant, "gateway");
    assert.equal(event.requestClass, "critical");
    assert.equal(upstreamClass, "critical");
  });
});
