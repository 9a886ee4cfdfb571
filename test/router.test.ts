// `sluice router` across processes: real nats-server and etcd (testkit), mock engines publishing
// Dynamo-shaped KV events, two router replicas over real gRPC sockets.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { computeBlockHashes } from "@sluice/core";
import { type LaunchedMockEngine, launchMockEngine } from "@sluice/mock-engine";
import { grpcServiceDefinition, Reason, Router } from "@sluice/proto";
import { type LaunchedRouter, launchRouter } from "@sluice/router";
import { createGrpcClient, type GrpcClient } from "@sluice/runtime";
import { type EtcdServer, type NatsServer, startEtcd, startNats } from "@sluice/testkit";
import { Etcd3 } from "etcd3";
import { connect } from "nats";

const PREFIX = "/rt/v1";
const NS = "rt";

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

type RouterClient = GrpcClient<ReturnType<typeof grpcServiceDefinition<(typeof Router)["method"]>>>;

describe("sluice router", () => {
  let nats: NatsServer;
  let etcdServer: EtcdServer;
  const engines: LaunchedMockEngine[] = [];
  const routers: LaunchedRouter[] = [];
  const clients: RouterClient[] = [];

  const common = () => [
    "--admin-port=0",
    "--log-level=silent",
    `--nats-url=${nats.url}`,
    `--etcd-endpoints=${etcdServer.endpoints.join(",")}`,
    `--etcd-prefix=${PREFIX}`,
    `--namespace=${NS}`,
  ];

  async function startEngine(workerId: string): Promise<LaunchedMockEngine> {
    const e = await launchMockEngine({
      argv: [
        ...common(),
        "--port=0",
        `--id=${workerId}`,
        `--worker-id=${workerId}`,
        "--block-size=16",
        "--num-gpu-blocks=4096",
        "--speedup=20",
      ],
      env: {},
    });
    assert.ok(typeof e !== "number", "mock engine started");
    engines.push(e);
    return e;
  }

  async function startRouter(
    id: string,
    extra: string[] = [],
  ): Promise<{ router: LaunchedRouter; client: RouterClient }> {
    const r = await launchRouter({ argv: [...common(), "--grpc-port=0", `--id=${id}`, ...extra], env: {} });
    assert.ok(typeof r !== "number", "router started");
    routers.push(r);
    const client = createGrpcClient(grpcServiceDefinition(Router), r.target, { defaultDeadlineMs: 5_000 });
    clients.push(client);
    return { router: r, client };
  }

  before(async () => {
    [nats, etcdServer] = await Promise.all([startNats(), startEtcd()]);
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.allSettled([...routers.map((r) => r.stop()), ...engines.map((e) => e.stop())]);
    await Promise.allSettled([nats.dispose(), etcdServer.dispose()]);
  });

  it("prints --help and exits 0; refuses inconsistent flags with exit 2", async () => {
    let out = "";
    assert.equal(
      await launchRouter({ argv: ["--help"], env: {}, stdout: { write: (t: string) => (out += t) } }),
      0,
    );
    for (const flag of [
      "--grpc-port",
      "--advertise-address",
      "--dynamo-namespace",
      "--gap-policy",
      "--deadline-margin",
    ]) {
      assert.ok(out.includes(flag), `--help lists ${flag}`);
    }
    let err = "";
    const code = await launchRouter({
      argv: ["--dynamo-namespace=dyn", "--log-level=silent", "--admin-port=0"],
      env: {},
      stderr: { write: (t: string) => (err += t) },
    });
    assert.equal(code, 2);
    assert.match(err, /--dynamo-component/);
  });

  it("routes a shared text prefix to the engine that cached it, and drops an engine whose lease goes", async () => {
    const [a, b] = await Promise.all([startEngine("eng-a"), startEngine("eng-b")]);
    const { router, client } = await startRouter("router-1");
    await until("both engines registered", () => engineCount(router) === 2);

    const shared = "You are a careful assistant who answers in one short sentence. ".repeat(12);
    const first = await client.unary("route", {
      requestId: "p1",
      model: "mock-llm",
      requestClass: "standard",
      prompt: { case: "text", value: `${shared}Question one: what is a KV cache?` },
    });
    assert.equal(first.result.case, "routed");
    if (first.result.case !== "routed") return;
    const chosen = first.result.value;
    const engine = [a, b].find((e) => e.workerId === chosen.workerId);
    assert.ok(engine, `routed to a registered engine: ${chosen.workerId}`);
    assert.equal(chosen.address, engine.url, "the answer carries the engine's registered URL");
    assert.equal(chosen.overlapBlocks, 0);

    // The engine serves it: its KV events (Dynamo RouterEvent JSON) reach the router's index.
    const res = await fetch(`${engine.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "mock-llm",
        prompt: `${shared}Question one: what is a KV cache?`,
        max_tokens: 2,
      }),
    });
    assert.equal(res.status, 200);
    await res.text();
    await until("KV events indexed", () => router.service.index.workerBlockCount(chosen.workerId) >= 5);
    assert.equal((await client.unary("markPrefillDone", { requestId: "p1" })).found, true);
    assert.equal((await client.unary("release", { requestId: "p1" })).released, true);
    assert.equal(
      (await client.unary("release", { requestId: "p1" })).released,
      false,
      "Release is idempotent",
    );

    const second = await client.unary("route", {
      requestId: "p2",
      model: "mock-llm",
      requestClass: "standard",
      prompt: { case: "text", value: `${shared}Question two: why route by prefix?` },
    });
    assert.equal(second.result.case, "routed");
    if (second.result.case !== "routed") return;
    assert.equal(second.result.value.workerId, chosen.workerId, "same engine as the cached prefix");
    assert.ok(second.result.value.overlapBlocks > 0, "prefix overlap found");
    assert.ok(second.result.value.predictedTtftMs > 0);
    await client.unary("release", { requestId: "p2" });

    // The engine stops: its lease is revoked, its registration goes, the router forgets it.
    await engine.stop();
    await until("engine dropped", () => engineCount(router) === 1);
    assert.equal(router.service.index.workerBlockCount(chosen.workerId), 0);
    const third = await client.unary("route", {
      requestId: "p3",
      model: "mock-llm",
      requestClass: "standard",
      prompt: { case: "text", value: `${shared}Question three.` },
    });
    assert.equal(third.result.case, "routed");
    assert.notEqual(third.result.case === "routed" && third.result.value.workerId, chosen.workerId);
    await client.unary("release", { requestId: "p3" });
  });

  it("two replicas converge on predicted load through router.sync", async () => {
    const r1 = routers[0] ?? (await startRouter("router-1")).router;
    const c1 = clients[0]!;
    const { router: r2, client: c2 } = await startRouter("router-2");
    const workers = () => [...new Set([...r1.service.load.workers(), ...r2.service.load.workers()])];
    const picture = (r: LaunchedRouter) =>
      workers()
        .sort()
        .map((w) => {
          const l = r.service.load.load(w);
          return [w, l.predictedRequests, l.predictedActiveBlocks, l.predictedPendingPrefillTokens];
        });
    for (let i = 0; i < 4; i++) {
      const r = await c1.unary("route", {
        requestId: `s${i}`,
        model: "mock-llm",
        requestClass: "standard",
        prompt: { case: "tokenIds", value: { ids: Array.from({ length: 40 + i }, (_, k) => 1000 * i + k) } },
      });
      assert.equal(r.result.case, "routed");
    }
    await until(
      "replica 2 sees replica 1's routing",
      () => JSON.stringify(picture(r1)) === JSON.stringify(picture(r2)),
    );
    const total = (r: LaunchedRouter) =>
      workers().reduce((n, w) => n + r.service.load.load(w).predictedRequests, 0);
    assert.equal(total(r2), 4);
    // Prefill done and release through the OTHER replica: both pictures follow.
    assert.equal((await c2.unary("markPrefillDone", { requestId: "s0" })).found, true);
    assert.equal((await c2.unary("release", { requestId: "s1" })).released, true);
    await until("replica 1 sees replica 2's frees", () => total(r1) === 3);
    await until("pictures equal again", () => JSON.stringify(picture(r1)) === JSON.stringify(picture(r2)));
    for (const id of ["s0", "s2", "s3"]) await c1.unary("release", { requestId: id });
    await until("both idle", () => total(r1) === 0 && total(r2) === 0);
  });

  it("indexes NVIDIA Dynamo-shaped KV events, load metrics and model entries", async () => {
    const etcd = new Etcd3({ hosts: [...etcdServer.endpoints] });
    const nc = await connect({ servers: nats.url });
    try {
      const leaseHex = "694d9a3b8c7e1f01"; // above 2^53: exact u64 handling
      const workerId = BigInt(`0x${leaseHex}`).toString();
      await etcd.put(`dynmodels/qwen/${leaseHex}`).value(
        JSON.stringify({
          name: "Qwen/Qwen3-0.6B",
          endpoint: { namespace: "dyn", component: "backend", name: "generate" },
          model_type: "Chat",
          model_input: "Tokens",
          runtime_config: { total_kv_blocks: 512, max_num_seqs: 64, max_num_batched_tokens: 2048 },
        }),
      );
      const { router, client } = await startRouter("router-dyn", [
        "--dynamo-namespace=dyn",
        "--dynamo-component=backend",
        "--dynamo-etcd-prefix=dynmodels/",
        "--dynamo-block-size=16",
      ]);
      const tokens = Array.from({ length: 64 }, (_, i) => 500 + i);
      const { localHashes, sequenceHashes } = computeBlockHashes(tokens, 16);
      const blocks = sequenceHashes
        .map((h, i) => `{"block_hash":${h},"tokens_hash":${localHashes[i]}}`)
        .join(",");
      nc.publish(
        "namespace.dyn.component.backend.kv_events",
        new TextEncoder().encode(
          `{"worker_id":${workerId},"event":{"event_id":1,"data":{"stored":{"parent_hash":null,"blocks":[${blocks}]}},"dp_rank":0}}`,
        ),
      );
      nc.publish(
        "namespace.dyn.component.backend.kv_events",
        new TextEncoder().encode("{not a router event"),
      );
      nc.publish(
        "namespace.dyn.kv_metrics",
        new TextEncoder().encode(
          `{"worker_id":${workerId},"data":{"worker_stats":{"data_parallel_rank":null,"request_active_slots":1,"request_total_slots":64,"num_requests_waiting":0},"kv_stats":{"kv_active_blocks":10,"kv_total_blocks":512,"gpu_cache_usage_perc":0.02,"gpu_prefix_cache_hit_rate":0.0},"spec_decode_stats":null}}`,
        ),
      );
      await nc.flush();
      await until("Dynamo blocks indexed", () => router.service.index.workerBlockCount(workerId) === 4);
      await until(
        "Dynamo load observed",
        () => router.service.load.load(workerId).observed?.kvUsedBlocks === 10,
      );
      const r = await client.unary("route", {
        requestId: "d1",
        model: "Qwen/Qwen3-0.6B",
        requestClass: "standard",
        prompt: { case: "tokenIds", value: { ids: [...tokens, 1, 2, 3] } },
      });
      assert.equal(r.result.case, "routed");
      if (r.result.case !== "routed") return;
      assert.equal(r.result.value.workerId, workerId);
      assert.equal(r.result.value.overlapBlocks, 4);
      assert.equal(r.result.value.address, `dyn://dyn.backend.generate/${workerId}`);
      await client.unary("release", { requestId: "d1" });
      // The model entry goes: the worker leaves the router.
      await etcd.delete().key(`dynmodels/qwen/${leaseHex}`);
      await until("Dynamo worker dropped", () => router.service.index.workerBlockCount(workerId) === 0);
      const none = await client.unary("route", {
        requestId: "d2",
        model: "Qwen/Qwen3-0.6B",
        requestClass: "standard",
        prompt: { case: "tokenIds", value: { ids: tokens } },
      });
      assert.equal(none.result.case === "rejected" && none.result.value.reason, Reason.NO_ENGINES);
    } finally {
      await nc.close();
      etcd.close();
    }
  });
});

function engineCount(router: LaunchedRouter): number {
  return router.service.workerCount();
}
