// `sluice mock-engine` through its command entry point against real nats-server and etcd: KV events in
// Dynamo's RouterEvent shape, load snapshots, etcd registration under the lease, graceful stop.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fromBinary } from "@bufbuild/protobuf";
import { launchMockEngine, type ParsedRouterEvent, parseRouterEvent } from "@sluice/mock-engine";
import { EngineLoadSchema } from "@sluice/proto";
import { startEtcd, startNats } from "@sluice/testkit";
import { Etcd3 } from "etcd3";
import { connect } from "nats";

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function sink() {
  let text = "";
  return { write: (s: string) => (text += s), text: () => text };
}

describe("sluice mock-engine command", () => {
  it("prints --help and exits 0; refuses bad flags with exit 2", async () => {
    const out = sink();
    assert.equal(await launchMockEngine({ argv: ["--help"], env: {}, stdout: out }), 0);
    for (const flag of [
      "--speedup",
      "--num-gpu-blocks",
      "--step-model",
      "--force-output-tokens",
      "--register-engine",
    ]) {
      assert.ok(out.text().includes(flag), `--help lists ${flag}`);
    }
    const err = sink();
    assert.equal(await launchMockEngine({ argv: ["--speedup", "fast"], env: {}, stderr: err }), 2);
    assert.match(err.text(), /speedup/);
    const err2 = sink();
    assert.equal(
      await launchMockEngine({
        argv: ["--step-model", "splitwise", "--log-level", "silent", "--admin-port", "0"],
        env: {},
        stderr: err2,
      }),
      2,
    );
    assert.match(err2.text(), /--splitwise-csv/);
  });

  it("publishes Dynamo KV events and load snapshots, registers in etcd, and deregisters on stop", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const launched = await launchMockEngine({
      argv: [
        "--port=0",
        "--admin-port=0",
        "--log-level=silent",
        `--nats-url=${nats.url}`,
        `--etcd-endpoints=${etcd.endpoints.join(",")}`,
        "--namespace=t1",
        "--id=engine-a",
        "--worker-id=7",
        "--speedup=10",
        "--block-size=16",
        "--num-gpu-blocks=512",
        "--load-heartbeat=200ms",
      ],
      env: {},
    });
    assert.ok(typeof launched !== "number", "the engine started");
    let stopped = false;
    try {
      const nc = await connect({ servers: nats.url });
      const kvEvents: ParsedRouterEvent[] = [];
      const kvSub = nc.subscribe("sluice.v1.t1.engine.7.kv", {
        callback: (_err, msg) => kvEvents.push(parseRouterEvent(new TextDecoder().decode(msg.data))),
      });
      const loads: ReturnType<typeof fromBinary<typeof EngineLoadSchema>>[] = [];
      const loadSub = nc.subscribe("sluice.v1.t1.engine.7.load", {
        callback: (_err, msg) => loads.push(fromBinary(EngineLoadSchema, msg.data)),
      });
      await nc.flush();

      // Registration under the lease.
      const client = new Etcd3({ hosts: [...etcd.endpoints] });
      try {
        await until(
          "the engine registration",
          async () => (await client.get("/sluice/v1/engines/7").string()) !== null,
        );
        const registration = JSON.parse(
          (await client.get("/sluice/v1/engines/7").string()) ?? "{}",
        ) as Record<string, unknown>;
        assert.deepEqual(registration, {
          ...registration,
          worker_id: "7",
          model: "mock-llm",
          engine_url: launched.url,
          block_size: 16,
          kv_total_blocks: 512,
          max_num_seqs: 256,
          max_num_batched_tokens: 8192,
        });
        const instance = JSON.parse(
          (await client.get("/sluice/v1/instances/mock-engine/engine-a").string()) ?? "{}",
        ) as { addresses?: { http?: string } };
        assert.equal(instance.addresses?.http, launched.url);
        const lease = await client.get("/sluice/v1/engines/7").exec();
        assert.notEqual(lease.kvs[0]?.lease, "0", "written under a lease");

        // Two prompts sharing a long text prefix: the second reuses the first one's cached blocks.
        const prefix =
          "The shared system prompt of a chat product, long enough to fill several KV blocks. ".repeat(5);
        // Each question is long enough to fill blocks of its own after the shared prefix.
        for (const question of ["What is a KV cache? ".repeat(8), "How do prefix hits work? ".repeat(8)]) {
          const res = await fetch(`${launched.url}/v1/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ prompt: prefix + question, max_tokens: 3 }),
          });
          assert.equal(res.status, 200);
          await res.json();
        }
        await until(
          "stored events for both requests",
          () => kvEvents.filter((e) => typeof e.data === "object" && "stored" in e.data).length >= 2,
        );
        kvEvents.forEach((event, i) => {
          assert.equal(event.workerId, 7n);
          assert.equal(event.eventId, BigInt(i + 1), "event ids are 1, 2, 3 … with no gap");
        });
        const stored = kvEvents.flatMap((e) =>
          typeof e.data === "object" && "stored" in e.data ? [e.data.stored] : [],
        );
        const [first, second] = stored;
        assert.ok(first && second);
        assert.equal(first.parentHash, null);
        assert.ok(first.blocks.length >= 5);
        // The second request only stores blocks after the shared prefix: its parent is a block of the first.
        assert.ok(second.parentHash !== null);
        assert.ok(
          first.blocks.some((b) => b.blockHash === second.parentHash),
          "second request chained onto cached prefix",
        );

        const metrics = await (await fetch(`${launched.adminUrl}/metrics`)).text();
        const hits = Number(
          /^vllm:prefix_cache_hits_total\{model_name="mock-llm"\} (\S+)/m.exec(metrics)?.[1],
        );
        assert.ok(hits >= 4 * 16, `prefix cache hits on the admin /metrics, got ${hits}`);

        // Load snapshots: sequence numbers increase, capacity is self-described, the engine returns to idle.
        await until("an idle load snapshot", () => loads.at(-1)?.running === 0 && loads.length >= 2);
        for (let i = 1; i < loads.length; i++) assert.ok((loads[i]?.seq ?? 0n) > (loads[i - 1]?.seq ?? 0n));
        const last = loads.at(-1);
        assert.equal(last?.workerId, "7");
        assert.equal(last?.kvTotalBlocks, 512);
        assert.equal(last?.kvUsedBlocks, 0);
        assert.ok(
          loads.some((l) => l.running > 0 || l.waiting > 0),
          "a busy snapshot was published",
        );
        const countBefore = loads.length;
        await until("a heartbeat snapshot while idle", () => loads.length > countBefore, 3_000);

        // Graceful stop: exit 0 and the registrations disappear with the revoked lease.
        assert.equal(await launched.stop("test"), 0);
        stopped = true;
        assert.equal(await client.get("/sluice/v1/engines/7").string(), null);
        assert.equal(await client.get("/sluice/v1/instances/mock-engine/engine-a").string(), null);
      } finally {
        client.close();
        kvSub.unsubscribe();
        loadSub.unsubscribe();
        await nc.close();
      }
    } finally {
      if (!stopped) await launched.stop("test cleanup");
    }
  });

  it("keeps serving through a NATS outage and resumes publishing after it", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const launched = await launchMockEngine({
      argv: [
        "--port=0",
        "--admin-port=0",
        "--log-level=silent",
        `--nats-url=${nats.url}`,
        `--etcd-endpoints=${etcd.endpoints.join(",")}`,
        "--namespace=t2",
        "--id=engine-w2",
        "--worker-id=w2",
        "--register-engine=false",
        "--publish-load=false",
        "--speedup=10",
        "--block-size=16",
        "--num-gpu-blocks=512",
      ],
      env: {},
    });
    assert.ok(typeof launched !== "number");
    try {
      const complete = async (prompt: string) => {
        const res = await fetch(`${launched.url}/v1/completions`, {
          method: "POST",
          body: JSON.stringify({ prompt, max_tokens: 2 }),
        });
        assert.equal(res.status, 200);
        return (await res.json()) as { usage: { completion_tokens: number } };
      };
      await complete("warm up the connection ".repeat(4));
      // --register-engine=false: only the instance registration (an engine-scheduler registers the engine).
      const client = new Etcd3({ hosts: [...etcd.endpoints] });
      try {
        await until(
          "the instance registration",
          async () => (await client.get("/sluice/v1/instances/mock-engine/engine-w2").string()) !== null,
        );
        assert.equal(await client.get("/sluice/v1/engines/w2").string(), null);
      } finally {
        client.close();
      }
      await nats.stop();
      const during = await complete("served while NATS is down ".repeat(4));
      assert.equal(during.usage.completion_tokens, 2);
      await nats.start();

      const nc = await connect({ servers: nats.url });
      const received: ParsedRouterEvent[] = [];
      const sub = nc.subscribe("sluice.v1.t2.engine.w2.kv", {
        callback: (_err, msg) => received.push(parseRouterEvent(new TextDecoder().decode(msg.data))),
      });
      // --publish-load=false: a sidecar owns engine.w2.load, so the engine must stay silent there.
      let loadMessages = 0;
      const loadSub = nc.subscribe("sluice.v1.t2.engine.w2.load", { callback: () => loadMessages++ });
      await nc.flush();
      try {
        // nats.js reconnects on its own; keep sending fresh prompts until one's events arrive.
        await until(
          "KV events after NATS came back",
          async () => {
            await complete(`a fresh prompt after the outage ${Date.now()} `.repeat(4));
            return received.length > 0;
          },
          20_000,
        );
        const ids = received.map((e) => e.eventId);
        for (let i = 1; i < ids.length; i++) assert.ok((ids[i] ?? 0n) > (ids[i - 1] ?? 0n));
        // Longer than the 1 s load heartbeat, during which the engine also changed load.
        await new Promise((r) => setTimeout(r, 1_500));
        assert.equal(loadMessages, 0, "no load snapshots with --publish-load=false");
      } finally {
        loadSub.unsubscribe();
        sub.unsubscribe();
        await nc.close();
      }
    } finally {
      await launched.stop("test");
    }
  });

  it("re-registers in etcd after an outage longer than its lease", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const launched = await launchMockEngine({
      argv: [
        "--port=0",
        "--admin-port=0",
        "--log-level=silent",
        `--nats-url=${nats.url}`,
        `--etcd-endpoints=${etcd.endpoints.join(",")}`,
        "--worker-id=w3",
        "--lease-ttl=1s",
      ],
      env: {},
    });
    assert.ok(typeof launched !== "number");
    const client = new Etcd3({ hosts: [...etcd.endpoints] });
    try {
      const registered = async () =>
        (await client
          .get("/sluice/v1/engines/w3")
          .string()
          .catch(() => null)) !== null;
      await until("the first registration", registered);
      await etcd.stop();
      await sleep(2_500);
      const res = await fetch(`${launched.url}/v1/completions`, {
        method: "POST",
        body: JSON.stringify({ prompt: "served while etcd is down", max_tokens: 2 }),
      });
      assert.equal(res.status, 200);
      await res.json();
      await etcd.start();
      await until("the registration after the outage", registered, 20_000);
      // Still there a few lease TTLs later: it sits on a lease that is being kept alive.
      await sleep(2_500);
      assert.ok(await registered());
    } finally {
      client.close();
      await launched.stop("test");
    }
  });

  it("on stop lets short in-flight requests finish, cuts long ones at the bound (exit 1), and refuses new ones", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const launched = await launchMockEngine({
      argv: [
        "--port=0",
        "--admin-port=0",
        "--log-level=silent",
        `--nats-url=${nats.url}`,
        `--etcd-endpoints=${etcd.endpoints.join(",")}`,
        "--shutdown-timeout=1500ms",
        "--block-size=16",
        "--num-gpu-blocks=2048",
      ],
      env: {},
    });
    assert.ok(typeof launched !== "number");
    const stream = async (maxTokens: number) => {
      const res = await fetch(`${launched.url}/v1/completions`, {
        method: "POST",
        body: JSON.stringify({ prompt: `drain test ${maxTokens}`, max_tokens: maxTokens, stream: true }),
      });
      assert.equal(res.status, 200);
      return res.text().catch(() => "<cut>");
    };
    const short = stream(20);
    const long = stream(20_000);
    await until("both requests to run", () => launched.engine.driver.load().running === 2);
    const stopping = launched.stop("test");
    const refused = await fetch(`${launched.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ prompt: "too late", max_tokens: 1 }),
    }).then(
      (res) => res.status,
      () => "connection refused",
    );
    assert.ok(refused === 503 || refused === "connection refused", `new work is refused, got ${refused}`);
    assert.match(await short, /data: \[DONE\]\n\n$/, "the short request completed during the drain");
    assert.doesNotMatch(await long, /\[DONE\]/, "the long request was cut at the bound");
    assert.equal(await stopping, 1, "work was abandoned at the bound: exit code 1");
    assert.equal(launched.engine.driver.inFlight(), 0);
  });
});
