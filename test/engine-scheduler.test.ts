// `sluice engine-scheduler` in front of a real `sluice mock-engine`, over real HTTP, NATS and etcd:
// class ordering of the queue, early rejection, exactly-once release under aborts, load snapshots,
// registration life cycle and fast failure when the engine dies.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import { DecisionEventSchema, type EngineLoad, EngineLoadSchema } from "@sluice/proto";
import { startEtcd, startNats } from "@sluice/testkit";
import { Etcd3 } from "etcd3";
import { connect } from "nats";
import { post, startStack, tokens, until } from "./engine-scheduler-helpers.js";

describe("sluice engine-scheduler", () => {
  it("releases queued requests by class with one engine slot", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    await using stack = await startStack({
      natsUrl: nats.url,
      etcdEndpoints: etcd.endpoints,
      workerId: "order",
      sidecarArgs: ["--max-num-seqs=1"],
      // Objectives far beyond anything a loaded test machine can take, so ordering alone is judged.
      policy: {
        classes: [
          { name: "critical", ttftObjectiveMs: 120_000 },
          { name: "standard", ttftObjectiveMs: 240_000 },
          { name: "sheddable", ttftObjectiveMs: 600_000 },
        ],
      },
    });
    const { sidecar } = stack;
    assert.equal(
      sidecar.decision.options.classes.find((c) => c.name === "critical")?.ttftObjectiveMs,
      120_000,
      "the etcd policy is in force",
    );
    // Occupies the one slot for a while (dynamo step times, ~6 ms a token at speedup 1).
    const blocker = post(
      sidecar.url,
      { prompt: tokens(64), max_tokens: 60 },
      { "x-sluice-class": "sheddable" },
    );
    await until("the blocker is in the engine", () => sidecar.scheduler.counts().inEngine === 1);
    const finished: string[] = [];
    const send = async (cls: string) => {
      const res = await post(
        sidecar.url,
        { prompt: tokens(32, cls.length), max_tokens: 2 },
        { "x-sluice-class": cls },
      );
      assert.equal(res.status, 200, `${cls}: ${await res.clone().text()}`);
      const body = await res.text();
      assert.equal(
        res.headers.get("content-length"),
        String(Buffer.byteLength(body)),
        "a non-streaming answer keeps the engine's Content-Length (not re-chunked)",
      );
      JSON.parse(body);
      finished.push(cls);
    };
    const all: Promise<void>[] = [];
    for (const cls of ["sheddable", "standard", "critical"]) {
      const before = sidecar.scheduler.counts().queued;
      all.push(send(cls));
      await until(`${cls} queued`, () => sidecar.scheduler.counts().queued === before + 1);
    }
    assert.equal(sidecar.scheduler.counts().inEngine, 1, "N = 1 holds while three wait");
    assert.equal((await blocker).status, 200);
    await Promise.all(all);
    assert.deepEqual(finished, ["critical", "standard", "sheddable"]);
    const c = sidecar.scheduler.counts();
    assert.equal(c.admitted, 4);
    assert.equal(c.completed, 4);
    assert.deepEqual([c.queued, c.inEngine], [0, 0]);
  });

  it("rejects a queued request early over HTTP with Retry-After and the sluice fields", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    await using stack = await startStack({
      natsUrl: nats.url,
      etcdEndpoints: etcd.endpoints,
      workerId: "early",
      // A tiny, slow engine: the one running request holds the slot for many seconds.
      engineArgs: ["--speedup=0.05"],
      sidecarArgs: ["--max-num-seqs=1"],
    });
    const { sidecar } = stack;
    const nc = await connect({ servers: nats.url });
    const rejectedEvents: string[] = [];
    nc.subscribe("sluice.v1.es.events.engine.rejected", {
      callback: (_e, m) => rejectedEvents.push(new TextDecoder().decode(m.data)),
    });
    await nc.flush();
    const abort = new AbortController();
    const blocker = post(
      sidecar.url,
      { prompt: tokens(16), max_tokens: 200, stream: true },
      {},
      abort.signal,
    );
    await until("the blocker is in the engine", () => sidecar.scheduler.counts().inEngine === 1);
    const startedMs = Date.now();
    // 600 ms already spent upstream: the critical objective (1000 ms − 50 ms margin) runs out while queued.
    const res = await post(
      sidecar.url,
      { prompt: tokens(16, 2), max_tokens: 2 },
      { "x-sluice-class": "critical", "x-sluice-elapsed-ms": "600", "x-request-id": "early-1" },
    );
    const waitedMs = Date.now() - startedMs;
    assert.equal(res.status, 429);
    const retryMs = Number(res.headers.get("retry-after-ms"));
    assert.ok(retryMs >= 100, `retry-after-ms ${retryMs}`);
    assert.equal(res.headers.get("retry-after"), String(Math.max(1, Math.ceil(retryMs / 1000))));
    const body = (await res.json()) as {
      error: { code: string; type: string };
      sluice: Record<string, unknown>;
    };
    assert.equal(body.error.type, "rate_limit_error");
    assert.equal(body.sluice.level, "engine");
    assert.equal(body.sluice.class, "critical");
    assert.ok(
      ["predicted_ttft", "queue_timeout"].includes(String(body.sluice.reason)),
      String(body.sluice.reason),
    );
    assert.ok(Number(body.sluice.observed) > Number(body.sluice.limit));
    assert.equal(body.sluice.retry_after_ms, retryMs);
    // Rejected while queued, before the deadline and long before the engine slot frees up.
    assert.ok(waitedMs < 5_000, `rejected after ${waitedMs} ms`);
    await until("the rejection event", () => rejectedEvents.length === 1);
    const event = fromJsonString(DecisionEventSchema, rejectedEvents[0]!);
    assert.equal(event.requestId, "early-1");
    assert.equal(event.workerId, "early");
    const metrics = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    assert.match(
      metrics,
      /sluice_engine_rejections_total\{class="critical",reason="(predicted_ttft|queue_timeout)"\} 1/,
    );
    abort.abort();
    await blocker.then((r) => r.body?.cancel()).catch(() => undefined);
    await until("slot freed", () => sidecar.scheduler.counts().inEngine === 0);
    await nc.close();
  });

  it("releases every slot exactly once under client aborts, queued or streaming", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    await using stack = await startStack({
      natsUrl: nats.url,
      etcdEndpoints: etcd.endpoints,
      workerId: "aborts",
      engineArgs: ["--speedup=0.5"],
      sidecarArgs: ["--max-num-seqs=2", "--max-queue=32"],
    });
    const { sidecar, engine } = stack;
    const runs: Promise<string>[] = [];
    // Requests that got an answer certainly reached the scheduler (an early abort may not have).
    let answered = 0;
    for (let i = 0; i < 12; i++) {
      const abort = new AbortController();
      const cls = ["sheddable", "standard", "critical"][i % 3]!;
      runs.push(
        (async () => {
          try {
            const res = await post(
              sidecar.url,
              { prompt: tokens(32, i), max_tokens: 20, stream: true },
              { "x-sluice-class": cls },
              abort.signal,
            );
            answered++;
            if (res.status !== 200) {
              await res.body?.cancel();
              return `status ${res.status}`;
            }
            const reader = res.body!.getReader();
            await reader.read(); // first chunk
            if (i % 3 === 1) {
              abort.abort(); // mid-stream
              return "aborted streaming";
            }
            while (!(await reader.read()).done) {}
            return "completed";
          } catch {
            return "aborted";
          }
        })(),
      );
      // Every third request is abandoned after a short while, most likely while still queued.
      if (i % 3 === 0) setTimeout(() => abort.abort(), 30 + i * 5);
    }
    await Promise.all(runs);
    await until("everything ended", () => {
      const c = sidecar.scheduler.counts();
      return c.queued === 0 && c.inEngine === 0;
    });
    const c = sidecar.scheduler.counts();
    assert.equal(c.admitted, c.completed + c.failed + c.cancelled, JSON.stringify(c));
    const seen = c.admitted + c.rejected + c.cancelledQueued + c.failedQueued;
    assert.ok(seen >= answered && seen <= 12, `${answered} answered, ${JSON.stringify(c)}`);
    // How many aborts land while queued or streaming (rather than after a rejection or completion)
    // depends on timing on a loaded machine; that some do, and that each was counted once, does not.
    const abortedStreams = (await Promise.all(runs)).filter((r) => r === "aborted streaming").length;
    assert.ok(c.cancelled + c.cancelledQueued >= 1, `aborts were seen: ${JSON.stringify(c)}`);
    assert.ok(c.cancelled <= abortedStreams + 4, `no more cancellations than aborts: ${JSON.stringify(c)}`);
    const s = sidecar.decision.snapshot();
    assert.deepEqual([s.queued, s.inEngine, s.pendingPrefillTokens], [0, 0, 0]);
    assert.equal(sidecar.decision.audit.pending, 0, "no audit entry leaks");
    await until("the engine is idle too", () => engine.engine.driver.load().running === 0);
    // The sidecar still serves.
    const after = await post(sidecar.url, { prompt: tokens(8), max_tokens: 2 });
    assert.equal(after.status, 200);
    await after.json();
  });

  it("publishes load on NATS and registers the engine under its lease; stop deregisters", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const stack = await startStack({
      natsUrl: nats.url,
      etcdEndpoints: etcd.endpoints,
      workerId: "reg",
      sidecarArgs: [
        "--load-heartbeat=100ms",
        "--block-size=16",
        "--kv-total-blocks=1024",
        "--max-num-seqs=8",
      ],
    });
    const client = new Etcd3({ hosts: [...etcd.endpoints] });
    const nc = await connect({ servers: nats.url });
    try {
      const loads: EngineLoad[] = [];
      nc.subscribe("sluice.v1.es.engine.reg.load", {
        callback: (_e, m) => loads.push(fromBinary(EngineLoadSchema, m.data)),
      });
      await nc.flush();
      await until("heartbeats", () => loads.length >= 2);
      assert.equal(loads[0]!.workerId, "reg");
      assert.equal(loads[0]!.kvTotalBlocks, 1024);
      assert.ok(loads[1]!.seq > loads[0]!.seq);
      const res = await post(stack.sidecar.url, { prompt: tokens(40), max_tokens: 30, stream: true });
      await until("a snapshot with the request running", () => loads.some((l) => l.running >= 1));
      await res.text();
      // The streamed request fed the models and the prediction audit.
      const est = stack.sidecar.decision.models.estimates();
      assert.ok(est.prefillSamples >= 1 && est.decodeSamples >= 1, JSON.stringify(est));
      const metricsText = await (await fetch(`${stack.sidecar.adminUrl}/metrics`)).text();
      assert.match(metricsText, /sluice_engine_ttft_prediction_relative_error_count\{class="standard"\} 1/);
      assert.match(metricsText, /sluice_engine_requests_total\{class="standard",outcome="completed"\} 1/);

      const reg = JSON.parse((await client.get("/sluice/v1/engines/reg").string()) ?? "{}") as Record<
        string,
        unknown
      >;
      assert.equal(reg.scheduler_url, stack.sidecar.url);
      assert.equal(reg.engine_url, stack.engine.url);
      assert.deepEqual([reg.block_size, reg.kv_total_blocks, reg.max_num_seqs], [16, 1024, 8]);
      const inst = JSON.parse(
        (await client.get("/sluice/v1/instances/engine-scheduler/reg-sidecar").string()) ?? "{}",
      ) as { addresses?: { http?: string } };
      assert.equal(inst.addresses?.http, stack.sidecar.url);
      const lease = await client.get("/sluice/v1/engines/reg").exec();
      assert.notEqual(lease.kvs[0]?.lease, "0");
    } finally {
      await stack[Symbol.asyncDispose]();
    }
    assert.equal(await client.get("/sluice/v1/engines/reg").string(), null, "gone at once on stop");
    assert.equal(await client.get("/sluice/v1/instances/engine-scheduler/reg-sidecar").string(), null);
    client.close();
    await nc.close();
  });

  it("fails queued requests fast with a clear error when the engine dies, and turns unready", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    await using stack = await startStack({
      natsUrl: nats.url,
      etcdEndpoints: etcd.endpoints,
      workerId: "dead",
      engineArgs: ["--speedup=0.1"],
      sidecarArgs: ["--max-num-seqs=1"],
    });
    const { sidecar, engine } = stack;
    const blocker = post(sidecar.url, { prompt: tokens(16), max_tokens: 100, stream: true }).then(
      async (r) => {
        try {
          await r.text();
          return "finished";
        } catch {
          return "cut";
        }
      },
      () => "cut",
    );
    await until("the blocker is in the engine", () => sidecar.scheduler.counts().inEngine === 1);
    const queued = [1, 2, 3].map((i) =>
      post(sidecar.url, { prompt: tokens(16, i), max_tokens: 2 }, { "x-sluice-class": "sheddable" }),
    );
    await until("three queued", () => sidecar.scheduler.counts().queued === 3);
    const killedAt = Date.now();
    await engine.stop("killed by the test");
    const answers = await Promise.all(queued);
    const tookMs = Date.now() - killedAt;
    for (const res of answers) {
      assert.ok([502, 503].includes(res.status), `status ${res.status}`);
      const body = (await res.json()) as {
        error: { code: string; message: string };
        sluice: { level: string };
      };
      assert.ok(["engine_unavailable", "upstream_error"].includes(body.error.code), body.error.code);
      assert.match(body.error.message, /engine/);
      assert.equal(body.sluice.level, "engine");
    }
    assert.ok(tookMs < 5_000, `queued requests failed after ${tookMs} ms`);
    await blocker;
    await until("unready", async () => (await fetch(`${sidecar.adminUrl}/readyz`)).status === 503);
    const later = await post(sidecar.url, { prompt: tokens(8), max_tokens: 2 });
    assert.equal(later.status, 503);
    assert.equal(((await later.json()) as { error: { code: string } }).error.code, "engine_unavailable");
    const c = sidecar.scheduler.counts();
    assert.deepEqual([c.queued, c.inEngine], [0, 0]);
    assert.equal(c.admitted, c.completed + c.failed + c.cancelled);
  });
});
