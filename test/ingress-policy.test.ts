// Live policies at L1 through the runtime's shared pieces (issues 4 and 7): a shadow candidate at
// `policies/_shadow/_default` is judged beside the enforcing policy on the same facts and view and
// reported (counter + `events.ingress.shadow`) while the request is still admitted; an invalid stored
// policy is refused with a `policy_rejected` event on `events.ingress.policy_rejected` and the last
// good limit stays enforced. Real nats-server and etcd.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { LaunchedIngress } from "@sluice/ingress";
import { connect, type NatsConnection } from "nats";
import {
  type FakeEngine,
  launch,
  metricValue,
  registerEngine,
  startCluster,
  startFakeEngine,
  type TestCluster,
  until,
} from "./ingress-helpers.js";

// The critical class has the whole limit: 3 enforced, 1 in the shadow candidate.
const ENFORCED_MAX_INFLIGHT = 3;
const SHADOW_MAX_INFLIGHT = 1;
const SHADOW_SERIES = 'sluice_shadow_decisions_total{level="ingress",enforced="admit",shadow="reject"}';

interface JsonEvent {
  type: string;
  level: string;
  instanceId: string;
  requestId?: string;
  model: string;
  key?: string;
  revision?: number;
  field?: string;
  keptRevision?: number | null;
  enforced?: { outcome: string; reason?: string; policyRevision: number };
  shadow?: { outcome: string; reason?: string; observed: number; limit: number; policyRevision: number };
}

let cluster: TestCluster;
let slow: FakeEngine;
let ingress: LaunchedIngress;
let nc: NatsConnection;
const holders: AbortController[] = [];
const shadowEvents: JsonEvent[] = [];
const rejectedEvents: JsonEvent[] = [];
let enforcedRevision = 0;

function subscribe(subject: string, into: JsonEvent[]): void {
  const sub = nc.subscribe(subject);
  void (async () => {
    for await (const m of sub) into.push(JSON.parse(new TextDecoder().decode(m.data)) as JsonEvent);
  })();
}

function request(stream: boolean, signal?: AbortSignal): Promise<Response> {
  return fetch(`${ingress.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-sluice-class": "critical" },
    body: JSON.stringify({ model: "slow-llm", prompt: "p", stream, max_tokens: 8 }),
    ...(signal ? { signal } : {}),
  });
}

/** Starts a streaming request that stays in flight until aborted; returns its status. */
async function hold(): Promise<number> {
  const controller = new AbortController();
  holders.push(controller);
  const response = await request(true, controller.signal);
  void response.text().catch(() => {});
  return response.status;
}

async function revisionInForce(kind: string): Promise<number | undefined> {
  return metricValue(ingress.adminUrl, `sluice_policy_revision{model="_default",kind="${kind}"}`);
}

before(async () => {
  cluster = await startCluster();
  slow = await startFakeEngine({ chunks: 600, chunkDelayMs: 100 });
  await registerEngine(cluster, { workerId: "slow-1", model: "slow-llm", url: slow.url });
  const put = await cluster.etcd
    .put(`${cluster.prefix}/policies/_default`)
    .value(JSON.stringify({ ingress: { maxInflight: ENFORCED_MAX_INFLIGHT } }));
  enforcedRevision = Number(put.header.revision);
  nc = await connect({ servers: cluster.nats.url });
  subscribe("sluice.v1.default.events.ingress.shadow", shadowEvents);
  subscribe("sluice.v1.default.events.ingress.policy_rejected", rejectedEvents);
  await nc.flush();
  ingress = await launch(cluster, ["--trust-class-header"]);
  await until("engine visible", async () => {
    const response = await request(false);
    await response.text();
    return response.status === 200;
  });
});

after(async () => {
  for (const h of holders) h.abort();
  await nc?.close();
  await ingress?.stop();
  await slow?.close();
  await cluster?.close();
});

describe("ingress live policies", () => {
  it("evaluates nothing in shadow while no candidate is stored", async () => {
    assert.equal(await revisionInForce("enforcing"), enforcedRevision);
    const response = await request(false);
    assert.equal(response.status, 200);
    await response.text();
    assert.equal((await metricValue(ingress.adminUrl, SHADOW_SERIES)) ?? 0, 0);
    assert.equal(shadowEvents.length, 0);
  });

  it("reports a stricter shadow candidate's rejections while still admitting", async () => {
    const put = await cluster.etcd
      .put(`${cluster.prefix}/policies/_shadow/_default`)
      .value(JSON.stringify({ ingress: { maxInflight: SHADOW_MAX_INFLIGHT } }));
    const shadowRevision = Number(put.header.revision);
    await until(
      "shadow candidate in force",
      async () => (await revisionInForce("shadow")) === shadowRevision,
    );

    assert.equal(await hold(), 200); // 1 in flight: the candidate agrees
    assert.equal(await hold(), 200); // 2 in flight: the candidate would reject
    assert.equal(ingress.ledger.total().requests, 2);
    await until("shadow event", () => shadowEvents.length > 0);
    const event = shadowEvents[0]!;
    assert.equal(event.type, "shadow");
    assert.equal(event.level, "ingress");
    assert.equal(event.instanceId, ingress.instanceId);
    assert.equal(event.model, "slow-llm");
    assert.equal(event.enforced?.outcome, "admit");
    assert.equal(event.enforced?.policyRevision, enforcedRevision);
    assert.equal(event.shadow?.outcome, "reject");
    assert.equal(event.shadow?.reason, "inflight_limit");
    assert.equal(event.shadow?.limit, SHADOW_MAX_INFLIGHT);
    assert.equal(event.shadow?.policyRevision, shadowRevision);
    assert.equal(await metricValue(ingress.adminUrl, SHADOW_SERIES), 1);
  });

  it("publishes policy_rejected for an invalid stored policy and keeps enforcing the old limit", async () => {
    assert.equal(await hold(), 200); // 3 in flight: the enforced limit is reached
    const before = await request(false);
    assert.equal(before.status, 429);
    assert.equal(
      ((await before.json()) as { sluice: { limit: number } }).sluice.limit,
      ENFORCED_MAX_INFLIGHT,
    );

    const put = await cluster.etcd
      .put(`${cluster.prefix}/policies/_default`)
      .value(JSON.stringify({ ingress: { maxInflight: 100, kvOvercommit: -2 } }));
    const badRevision = Number(put.header.revision);
    await until("policy_rejected event", () => rejectedEvents.length > 0);
    const event = rejectedEvents[0]!;
    assert.equal(event.type, "policy_rejected");
    assert.equal(event.level, "ingress");
    assert.equal(event.instanceId, ingress.instanceId);
    assert.equal(event.key, `${cluster.prefix}/policies/_default`);
    assert.equal(event.revision, badRevision);
    assert.equal(event.field, "ingress.kvOvercommit");
    assert.equal(event.keptRevision, enforcedRevision);

    // The refused revision never took effect: the old limit of 3 still rejects the 4th request.
    assert.equal(await revisionInForce("enforcing"), enforcedRevision);
    const afterRejection = await request(false);
    assert.equal(afterRejection.status, 429);
    const body = (await afterRejection.json()) as { sluice: { reason: string; limit: number } };
    assert.equal(body.sluice.reason, "inflight_limit");
    assert.equal(body.sluice.limit, ENFORCED_MAX_INFLIGHT);
    assert.equal(ingress.ledger.total().requests, 3);
  });
});
