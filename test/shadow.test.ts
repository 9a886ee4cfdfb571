// Shadow mode in real processes (DESIGN §3, issue 7 item 2): a stricter candidate stored at
// `policies/_shadow/_default` is evaluated beside the enforcing policy by the engine-scheduler and
// the router, which report its would-be rejections (counter and `events.{level}.shadow`) while the
// requests are still admitted; without a candidate nothing is evaluated. Real nats-server and etcd.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type LaunchedRouter, launchRouter } from "@sluice/router";
import { type EtcdServer, type NatsServer, startEtcd, startNats } from "@sluice/testkit";
import { Etcd3 } from "etcd3";
import { connect, type NatsConnection } from "nats";
import { post, type Stack, startStack, tokens, until } from "./engine-scheduler-helpers.js";

const SHADOW_KEY = "/sluice/v1/policies/_shadow/_default";
// Objectives of 1 ms: every request misses them, so the candidate rejects everything; never held.
const STRICT = JSON.stringify({
  classes: ["critical", "standard", "sheddable"].map((name) => ({ name, ttft_objective_ms: 1 })),
  router: { class_max_held: { critical: 0, standard: 0, sheddable: 0 } },
});

interface ShadowEvent {
  type: string;
  level: string;
  requestId: string;
  enforced: { outcome: string; reason?: string; policyRevision: number };
  shadow: { outcome: string; reason?: string; observed: number; limit: number; policyRevision: number };
}

async function metricValue(adminUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

const ENGINE_SERIES = 'sluice_shadow_decisions_total{level="engine",enforced="admit",shadow="reject"}';
const ROUTER_SERIES = 'sluice_shadow_decisions_total{level="router",enforced="admit",shadow="reject"}';

describe("shadow policies", () => {
  let nats: NatsServer;
  let etcdServer: EtcdServer;
  let etcd: Etcd3;
  let stack: Stack;
  let router: LaunchedRouter;
  let nc: NatsConnection;
  let shadowRevision = 0;
  const events: ShadowEvent[] = [];

  before(async () => {
    [nats, etcdServer] = await Promise.all([startNats(), startEtcd()]);
    etcd = new Etcd3({ hosts: [...etcdServer.endpoints] });
    nc = await connect({ servers: nats.url });
    const sub = nc.subscribe("sluice.v1.es.events.*.shadow");
    void (async () => {
      for await (const m of sub) events.push(JSON.parse(new TextDecoder().decode(m.data)) as ShadowEvent);
    })();
    await nc.flush();
    shadowRevision = Number((await etcd.put(SHADOW_KEY).value(STRICT)).header.revision);
    stack = await startStack({ natsUrl: nats.url, etcdEndpoints: etcdServer.endpoints, workerId: "shadow" });
    const r = await launchRouter({
      argv: [
        "--admin-port=0",
        "--log-level=silent",
        `--nats-url=${nats.url}`,
        `--etcd-endpoints=${etcdServer.endpoints.join(",")}`,
        "--namespace=es",
        "--grpc-port=0",
        "--id=shadow-router",
      ],
      env: {},
    });
    assert.ok(typeof r !== "number", "router started");
    router = r;
    await until("the sidecar's engine is routable", () => router.service.workerCount() === 1);
  });

  after(async () => {
    await router?.stop();
    await stack?.[Symbol.asyncDispose]();
    await nc?.close();
    etcd?.close();
    await etcdServer?.[Symbol.asyncDispose]();
    await nats?.[Symbol.asyncDispose]();
  });

  it("the engine-scheduler reports the candidate's rejection and still serves the request", async () => {
    const { sidecar } = stack;
    const res = await post(
      sidecar.url,
      { prompt: tokens(32), max_tokens: 2 },
      { "x-request-id": "shadow-e1" },
    );
    assert.equal(res.status, 200, await res.clone().text());
    await res.json();
    await until("the engine's shadow event", () => events.some((e) => e.level === "engine"));
    const e = events.find((x) => x.level === "engine")!;
    assert.equal(e.type, "shadow");
    assert.equal(e.enforced.outcome, "admit");
    assert.equal(e.shadow.outcome, "reject");
    assert.equal(e.shadow.reason, "predicted_ttft");
    assert.ok(e.shadow.observed > e.shadow.limit, "the numbers behind the would-be rejection");
    assert.equal(e.shadow.policyRevision, shadowRevision);
    assert.equal(await metricValue(sidecar.adminUrl, ENGINE_SERIES), 1);
    assert.equal(sidecar.scheduler.counts().rejected, 0, "nothing was rejected for real");
  });

  it("the router reports the candidate's rejection and still routes", async () => {
    const answer = await router.service.route({
      requestId: "shadow-r1",
      model: "",
      requestClass: "standard",
      tokenIds: tokens(256, 5),
    }).answer;
    assert.equal(answer.kind, "routed");
    await until("the router's shadow event", () => events.some((e) => e.level === "router"));
    const e = events.find((x) => x.level === "router")!;
    assert.equal(e.requestId, "shadow-r1");
    assert.equal(e.enforced.outcome, "admit");
    assert.deepEqual([e.shadow.outcome, e.shadow.reason], ["reject", "predicted_ttft"]);
    assert.equal(await metricValue(router.adminUrl, ROUTER_SERIES), 1);
    router.service.release("shadow-r1");
  });

  it("evaluates nothing once the candidate is deleted", async () => {
    const { sidecar } = stack;
    await etcd.delete().key(SHADOW_KEY);
    const revisionGone = async (url: string) =>
      (await metricValue(url, 'sluice_policy_revision{model="_default",kind="shadow"}')) === 0;
    await until(
      "both processes dropped the candidate",
      async () => (await revisionGone(sidecar.adminUrl)) && (await revisionGone(router.adminUrl)),
    );
    const before = events.length;
    const res = await post(sidecar.url, { prompt: tokens(32, 9), max_tokens: 2 });
    assert.equal(res.status, 200);
    await res.json();
    const answer = await router.service.route({
      requestId: "shadow-r2",
      model: "",
      requestClass: "standard",
      tokenIds: tokens(256, 11),
    }).answer;
    assert.equal(answer.kind, "routed");
    await nc.flush();
    assert.equal(await metricValue(sidecar.adminUrl, ENGINE_SERIES), 1, "no new engine shadow decisions");
    assert.equal(await metricValue(router.adminUrl, ROUTER_SERIES), 1, "no new router shadow decisions");
    assert.equal(events.length, before);
  });
});
