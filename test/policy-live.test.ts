// Live policies in real processes (issue 7 item 2): a new revision in etcd changes what the
// engine-scheduler and the router decide without a restart, and a document written behind the CLI's
// back is ignored by both with a `policy_rejected` event on NATS while the last good policy stays.
// Real nats-server and etcd; the mock engine, sidecar and router run in this process through their
// `launch*` entry points.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type LaunchedAggregator, launchAggregator } from "@sluice/aggregator";
import type { RouteAnswer } from "@sluice/router";
import { type LaunchedRouter, launchRouter } from "@sluice/router";
import { type EtcdServer, type NatsServer, startEtcd, startNats } from "@sluice/testkit";
import { Etcd3 } from "etcd3";
import { connect, type NatsConnection } from "nats";
import { post, type Stack, startStack, tokens, until } from "./engine-scheduler-helpers.js";

const DEFAULT_KEY = "/sluice/v1/policies/_default";
// Objectives no loaded test machine misses, so only the limits under test decide.
const CLASSES = [
  { name: "critical", ttft_objective_ms: 120_000 },
  { name: "standard", ttft_objective_ms: 240_000 },
  { name: "sheddable", ttft_objective_ms: 600_000 },
];
const policy = (engine: object, router: object) => JSON.stringify({ classes: CLASSES, engine, router });

async function metricValue(adminUrl: string, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("live policies in the router and the engine-scheduler", () => {
  let nats: NatsServer;
  let etcdServer: EtcdServer;
  let etcd: Etcd3;
  let stack: Stack;
  let router: LaunchedRouter;
  let aggregator: LaunchedAggregator;
  let nc: NatsConnection;
  const rejectedEvents: { subject: string; body: Record<string, unknown> }[] = [];
  let seq = 0;
  const route = (n: number): Promise<RouteAnswer> =>
    router.service.route({
      requestId: `r${++seq}`,
      model: "",
      requestClass: "standard",
      tokenIds: tokens(n, seq * 13),
    }).answer;

  before(async () => {
    [nats, etcdServer] = await Promise.all([startNats(), startEtcd()]);
    etcd = new Etcd3({ hosts: [...etcdServer.endpoints] });
    nc = await connect({ servers: nats.url });
    const sub = nc.subscribe("sluice.v1.es.events.*.policy_rejected");
    void (async () => {
      for await (const m of sub)
        rejectedEvents.push({ subject: m.subject, body: JSON.parse(new TextDecoder().decode(m.data)) });
    })();
    await nc.flush();
    await etcd
      .put(DEFAULT_KEY)
      .value(policy({ max_queue: 8 }, { busy_pending_prefill_tokens: 50, class_max_held: { standard: 0 } }));
    stack = await startStack({
      natsUrl: nats.url,
      etcdEndpoints: etcdServer.endpoints,
      workerId: "live",
      // A slow engine with one slot: a long request holds it for seconds.
      engineArgs: ["--speedup=0.05"],
      sidecarArgs: ["--max-num-seqs=1"],
    });
    const r = await launchRouter({
      argv: [
        "--admin-port=0",
        "--log-level=silent",
        `--nats-url=${nats.url}`,
        `--etcd-endpoints=${etcdServer.endpoints.join(",")}`,
        "--namespace=es",
        "--grpc-port=0",
        "--id=live-router",
        "--busy-predicted-ttft=false",
      ],
      env: {},
    });
    assert.ok(typeof r !== "number", "router started");
    router = r;
    const a = await launchAggregator({
      argv: [
        "--admin-port=0",
        "--log-level=silent",
        `--nats-url=${nats.url}`,
        `--etcd-endpoints=${etcdServer.endpoints.join(",")}`,
        "--namespace=es",
        "--id=live-aggregator",
      ],
      env: {},
    });
    assert.ok(typeof a !== "number", "aggregator started");
    aggregator = a;
    await until("the sidecar's engine is routable", () => router.service.workerCount() === 1);
  });

  after(async () => {
    await aggregator?.stop();
    await router?.stop();
    await stack?.[Symbol.asyncDispose]();
    await nc?.close();
    etcd?.close();
    await etcdServer?.[Symbol.asyncDispose]();
    await nats?.[Symbol.asyncDispose]();
  });

  it("a lower engine.max_queue makes the sidecar reject the queued and the next request", async () => {
    const { sidecar } = stack;
    assert.equal(sidecar.decision.options.engine.maxQueue, 8, "the etcd policy is in force");
    const blockerAbort = new AbortController();
    const blocker = post(sidecar.url, { prompt: tokens(64), max_tokens: 400 }, {}, blockerAbort.signal).catch(
      () => undefined,
    );
    await until("the blocker is in the engine", () => sidecar.scheduler.counts().inEngine === 1);
    const queued = post(sidecar.url, { prompt: tokens(16, 2), max_tokens: 2 });
    await until("a request queued behind it", () => sidecar.scheduler.counts().queued === 1);

    const put = await etcd
      .put(DEFAULT_KEY)
      .value(policy({ max_queue: 0 }, { busy_pending_prefill_tokens: 50, class_max_held: { standard: 0 } }));
    const revision = Number(put.header.revision);
    await until("the sidecar rebuilt its decision", () => sidecar.decision.generation === 1);
    assert.equal(sidecar.decision.options.engine.maxQueue, 0);

    // The queued request is re-judged under the new limit (the running one fills the only place).
    const res = await queued;
    assert.equal(res.status, 429);
    const body = (await res.json()) as { sluice: { reason: string; level: string } };
    assert.deepEqual([body.sluice.level, body.sluice.reason], ["engine", "queue_full"]);
    const next = await post(sidecar.url, { prompt: tokens(16, 3), max_tokens: 2 });
    assert.equal(next.status, 429, "no queueing any more");
    await next.body?.cancel();
    assert.equal(sidecar.scheduler.counts().inEngine, 1, "the running request was not disturbed");

    assert.equal(
      await metricValue(sidecar.adminUrl, 'sluice_policy_revision{model="_default",kind="enforcing"}'),
      revision,
    );
    const appliedAt = await metricValue(
      sidecar.adminUrl,
      'sluice_policy_applied_timestamp_seconds{model="_default",kind="enforcing"}',
    );
    assert.ok(
      appliedAt !== undefined && appliedAt * 1000 > Date.now() - 60_000,
      "applied timestamp exported",
    );

    blockerAbort.abort();
    await blocker;
    await until("the engine is free", () => sidecar.scheduler.counts().inEngine === 0);
  });

  it("a higher router busy threshold lets the router place what it rejected", async () => {
    // 200 prompt tokens wait for their first token in the router's prediction: over 50, busy.
    // The first test's requests must have left the router's view of the engine (its load snapshots).
    await until("the router sees the engine idle", () => {
      const observed = router.service.load.load("live").observed;
      return observed === undefined || (observed.pendingPrefillTokens === 0 && observed.waiting === 0);
    });
    const first = await route(200);
    assert.equal(first.kind, "routed", JSON.stringify(first));
    const busy = await route(8);
    assert.equal(busy.kind === "rejected" && busy.reason, "all_engines_busy");

    await etcd
      .put(DEFAULT_KEY)
      .value(
        policy({ max_queue: 0 }, { busy_pending_prefill_tokens: 1_000_000, class_max_held: { standard: 0 } }),
      );
    await until("the router applies the new threshold", async () => (await route(8)).kind === "routed");
  });

  it("ignores an invalid stored policy with a policy_rejected event from every process", async () => {
    const { sidecar } = stack;
    const generation = sidecar.decision.generation;
    const put = await etcd.put(DEFAULT_KEY).value(JSON.stringify({ engine: { max_queue: "lots" } }));
    const revision = Number(put.header.revision);
    const from = (level: string) =>
      rejectedEvents.find((e) => e.subject === `sluice.v1.es.events.${level}.policy_rejected`);
    await until(
      "every process reports the refused document",
      () => !!from("router") && !!from("engine") && !!from("aggregator"),
    );
    for (const level of ["router", "engine", "aggregator"]) {
      const e = from(level)!.body;
      assert.equal(e.type, "policy_rejected");
      assert.equal(e.key, DEFAULT_KEY);
      assert.equal(e.revision, revision);
      assert.equal(e.field, "engine.maxQueue");
      assert.equal(typeof e.keptRevision, "number");
    }
    // The last good policy is still in force in both.
    assert.equal(sidecar.decision.generation, generation, "no rebuild for a refused document");
    assert.equal(sidecar.decision.options.engine.maxQueue, 0);
    assert.equal((await route(8)).kind, "routed", "the router keeps the raised threshold");
    assert.ok(
      ((await metricValue(
        router.adminUrl,
        'sluice_policy_rejected_total{model="_default",kind="enforcing"}',
      )) ?? 0) >= 1,
    );
  });
});
