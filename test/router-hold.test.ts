// `sluice router` hold queue over real gRPC: a call waits while every engine is busy, is placed when
// capacity frees, expires with a predicted Retry-After, is withdrawn when the caller cancels, and is
// answered with a rejection on SIGTERM. Decision events and metrics are checked on the way.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type LaunchedMockEngine, launchMockEngine } from "@sluice/mock-engine";
import { grpcServiceDefinition, Reason, Router } from "@sluice/proto";
import { type LaunchedRouter, launchRouter } from "@sluice/router";
import { createGrpcClient, GrpcCallError, type GrpcClient } from "@sluice/runtime";
import { type EtcdServer, type NatsServer, startEtcd, startNats } from "@sluice/testkit";
import { Etcd3 } from "etcd3";
import { connect, type NatsConnection } from "nats";

const PREFIX = "/rh/v1";
const NS = "rh";

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

type RouterClient = GrpcClient<ReturnType<typeof grpcServiceDefinition<(typeof Router)["method"]>>>;

const ids = (n: number, base: number) => ({
  case: "tokenIds" as const,
  value: { ids: Array.from({ length: n }, (_, i) => base + i) },
});

describe("sluice router hold queue", () => {
  let nats: NatsServer;
  let etcdServer: EtcdServer;
  let engine: LaunchedMockEngine;
  let router: LaunchedRouter;
  let client: RouterClient;
  let nc: NatsConnection;
  const events: { subject: string; body: Record<string, unknown> }[] = [];

  before(async () => {
    [nats, etcdServer] = await Promise.all([startNats(), startEtcd()]);
    const etcd = new Etcd3({ hosts: [...etcdServer.endpoints] });
    // Busy as soon as more than 50 prompt tokens wait for their first token; held up to 5 s.
    await etcd
      .put(`${PREFIX}/policies/_default`)
      .value(JSON.stringify({ router: { busy_pending_prefill_tokens: 50, max_hold_ms: 5000 } }));
    etcd.close();
    const common = [
      "--admin-port=0",
      "--log-level=silent",
      `--nats-url=${nats.url}`,
      `--etcd-endpoints=${etcdServer.endpoints.join(",")}`,
      `--etcd-prefix=${PREFIX}`,
      `--namespace=${NS}`,
    ];
    const e = await launchMockEngine({
      argv: [...common, "--port=0", "--id=solo", "--worker-id=solo", "--block-size=16"],
      env: {},
    });
    assert.ok(typeof e !== "number");
    engine = e;
    const r = await launchRouter({
      argv: [
        ...common,
        "--grpc-port=0",
        "--id=hold-router",
        "--busy-predicted-ttft=false",
        "--deadline-margin=300ms",
      ],
      env: {},
    });
    assert.ok(typeof r !== "number");
    router = r;
    client = createGrpcClient(grpcServiceDefinition(Router), router.target, { defaultDeadlineMs: 10_000 });
    nc = await connect({ servers: nats.url });
    const sub = nc.subscribe(`sluice.v1.${NS}.events.router.>`);
    void (async () => {
      for await (const m of sub)
        events.push({ subject: m.subject, body: JSON.parse(new TextDecoder().decode(m.data)) });
    })();
    await nc.flush();
    await until("engine registered", () => router.service.workerCount() === 1);
  });

  after(async () => {
    client.close();
    await nc.close();
    await Promise.allSettled([router.stop(), engine.stop()]);
    await Promise.allSettled([nats.dispose(), etcdServer.dispose()]);
  });

  it("holds a call while the engine is busy and places it when its capacity frees", async () => {
    const first = await client.unary("route", {
      requestId: "h1",
      model: "mock-llm",
      requestClass: "standard",
      prompt: ids(100, 1),
    });
    assert.equal(first.result.case, "routed");
    const held = client.unary("route", {
      requestId: "h2",
      model: "mock-llm",
      requestClass: "standard",
      prompt: ids(100, 5000),
    });
    await until("h2 held", () => router.service.heldCount("standard") === 1);
    assert.equal((await client.unary("markPrefillDone", { requestId: "h1" })).found, true);
    const answer = await held;
    assert.equal(answer.result.case, "routed");
    assert.equal(answer.result.case === "routed" && answer.result.value.workerId, "solo");
    assert.equal(router.service.heldCount(), 0);
  });

  it("rejects a held call with HOLD_TIMEOUT and a Retry-After before the caller's deadline", async () => {
    // h2 (100 tokens) is still pending: busy.
    const started = Date.now();
    const answer = await client.unary(
      "route",
      { requestId: "h3", model: "mock-llm", requestClass: "standard", prompt: ids(20, 9000) },
      { deadlineMs: 1_500 },
    );
    assert.equal(answer.result.case, "rejected");
    if (answer.result.case !== "rejected") return;
    assert.equal(answer.result.value.reason, Reason.HOLD_TIMEOUT);
    // Predicted drain of the busy engine (100 pending tokens at the default 10k tokens/s), clamped
    // to the policy's [100 ms, 30 s]: far below the maximum.
    const retryAfterMs = answer.result.value.retryAfterMs;
    assert.ok(retryAfterMs >= 100 && retryAfterMs < 30_000, `retry-after ${retryAfterMs}`);
    assert.ok(Date.now() - started >= 600, "it was held, not rejected at once");
    assert.equal(router.service.heldCount(), 0);
  });

  it("withdraws a held call when the caller cancels", async () => {
    const abort = new AbortController();
    const pending = client.unary(
      "route",
      { requestId: "h4", model: "mock-llm", requestClass: "standard", prompt: ids(20, 7000) },
      { signal: abort.signal },
    );
    await until("h4 held", () => router.service.heldCount() === 1);
    abort.abort();
    await assert.rejects(pending, (err: unknown) => err instanceof GrpcCallError);
    await until("h4 withdrawn", () => router.service.heldCount() === 0);
  });

  it("published decision events and metrics for routed, held and rejected calls", async () => {
    await until("events arrived", () =>
      events.some((e) => e.body.requestId === "h3" && e.subject.endsWith(".rejected")),
    );
    const of = (id: string) =>
      events.filter((e) => e.body.requestId === id).map((e) => e.subject.split(".").pop());
    assert.deepEqual(of("h2"), ["held", "routed"]);
    const rejected = events.find((e) => e.body.requestId === "h3" && e.subject.endsWith(".rejected"));
    assert.equal(rejected?.body.level, "LEVEL_ROUTER");
    assert.equal(rejected?.body.reason, "REASON_HOLD_TIMEOUT");
    const text = await (await fetch(`${router.adminUrl}/metrics`)).text();
    for (const series of [
      'sluice_router_rejections_total{reason="hold_timeout",class="standard"} 1',
      'sluice_router_queue_depth{class="standard"} 0',
      "sluice_router_hold_seconds_count",
      "sluice_router_route_decision_seconds_count",
      'sluice_router_decisions_total{outcome="held",class="standard"}',
    ]) {
      assert.ok(text.includes(series), `metrics include ${series}`);
    }
  });

  it("answers held calls with a rejection on shutdown and deregisters", async () => {
    const held = client.unary("route", {
      requestId: "h5",
      model: "mock-llm",
      requestClass: "critical",
      prompt: ids(20, 3000),
    });
    await until("h5 held", () => router.service.heldCount() === 1);
    const code = await router.stop("test stop");
    const answer = await held;
    assert.equal(answer.result.case, "rejected");
    assert.match(answer.result.case === "rejected" ? answer.result.value.message : "", /shutting down/);
    assert.equal(code, 0);
    const etcd = new Etcd3({ hosts: [...etcdServer.endpoints] });
    try {
      assert.equal(await etcd.get(`${PREFIX}/instances/router/hold-router`).string(), null, "lease revoked");
    } finally {
      etcd.close();
    }
  });
});
