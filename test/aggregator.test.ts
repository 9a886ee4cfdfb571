// `sluice aggregator` against real nats-server and etcd: the cluster.load view reflects engines'
// registrations and load, malformed snapshots are dropped, and leadership fails over.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { launchAggregator } from "@sluice/aggregator";
import { launchMockEngine } from "@sluice/mock-engine";
import { type ClusterLoad, ClusterLoadSchema, EngineLoadSchema } from "@sluice/proto";
import { startEtcd, startNats } from "@sluice/testkit";
import { Etcd3 } from "etcd3";
import { connect } from "nats";
import { sink, spawnAggregator, until } from "./aggregator-helpers.js";

const NS = "agg";
const LOAD_SUBJECT = `sluice.v1.${NS}.cluster.load`;

describe("sluice aggregator", () => {
  it("prints --help and refuses bad flags with exit 2", async () => {
    const out = sink();
    assert.equal(await launchAggregator({ argv: ["--help"], env: {}, stdout: out }), 0);
    for (const flag of ["--debounce", "--heartbeat", "--events-stream", "--events-max-age"]) {
      assert.ok(out.text().includes(flag), `--help lists ${flag}`);
    }
    const err = sink();
    assert.equal(await launchAggregator({ argv: ["--debounce", "soon"], env: {}, stderr: err }), 2);
    assert.match(err.text(), /debounce/);
  });

  it("publishes cluster.load with two engines' capacity and observed load", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const common = [
      `--nats-url=${nats.url}`,
      `--etcd-endpoints=${etcd.endpoints.join(",")}`,
      `--namespace=${NS}`,
    ];
    const nc = await connect({ servers: nats.url });
    const etcdClient = new Etcd3({ hosts: [...etcd.endpoints] });
    const views: ClusterLoad[] = [];
    const sub = nc.subscribe(LOAD_SUBJECT, {
      callback: (_err, msg) => views.push(fromBinary(ClusterLoadSchema, msg.data)),
    });
    const engine = await launchMockEngine({
      argv: [
        ...common,
        "--port=0",
        "--admin-port=0",
        "--log-level=silent",
        "--id=eng-a",
        "--worker-id=a",
      ].concat(["--num-gpu-blocks=512", "--max-num-seqs=16", "--model=m1", "--load-heartbeat=200ms"]),
      env: {},
    });
    assert.ok(typeof engine !== "number");
    const aggregator = await launchAggregator({
      argv: [
        ...common,
        "--admin-port=0",
        "--log-level=silent",
        "--id=agg-1",
        "--debounce=20ms",
        "--heartbeat=300ms",
      ],
      env: {},
    });
    assert.ok(typeof aggregator !== "number");
    try {
      // A second engine registered and reporting by hand, so its numbers are exact.
      await etcdClient
        .put("/sluice/v1/engines/b")
        .value(JSON.stringify({ worker_id: "b", model: "m1", kv_total_blocks: 256, max_num_seqs: 8 }))
        .exec();
      const publishB = (kvUsedBlocks: number, running: number) =>
        nc.publish(
          `sluice.v1.${NS}.engine.b.load`,
          toBinary(
            EngineLoadSchema,
            create(EngineLoadSchema, { workerId: "b", kvUsedBlocks, running, kvTotalBlocks: 256 }),
          ),
        );
      publishB(37, 2);
      const m1 = (v: ClusterLoad | undefined) => v?.models.find((m) => m.model === "m1");
      await until("a view with both engines and b's load", () => {
        const m = m1(views.at(-1));
        return m !== undefined && m.liveEngines === 2 && m.observedKvUsedBlocks === 37;
      });
      const m = m1(views.at(-1));
      assert.equal(m?.capacityKvBlocks, 512 + 256);
      assert.equal(m?.capacitySeqs, 16 + 8);
      assert.equal(m?.observedRunning, 2);
      assert.equal(views.at(-1)?.leaderId, "agg-1");
      assert.deepEqual(
        m?.classHeadroom.map((h) => h.requestClass),
        ["critical", "standard", "sheddable"],
      );
      // critical share 1.0, kv_overcommit 1.25: floor(768 × 1.25) − 37
      assert.equal(m?.classHeadroom[0]?.kvBlocks, 960 - 37);
      assert.ok(aggregator.isLeader());

      // A change is published (debounced), a malformed snapshot is dropped without effect.
      nc.publish(`sluice.v1.${NS}.engine.b.load`, new Uint8Array([0xff, 0xff, 0xff]));
      publishB(50, 3);
      await until("the change", () => m1(views.at(-1))?.observedKvUsedBlocks === 50);
      const metrics = await (await fetch(`${aggregator.adminUrl}/metrics`)).text();
      assert.match(metrics, /sluice_aggregator_snapshots_dropped_total\{[^}]*kind="engine_load"[^}]*\} 1/);
      assert.match(metrics, /sluice_aggregator_leader 1/);
      assert.match(metrics, /sluice_aggregator_engines_tracked 2/);
      // Seqs of one leader increase by one per view.
      const seqs = views.filter((v) => v.leaderId === "agg-1").map((v) => Number(v.seq));
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => seqs[0]! + i),
      );

      // The engine's lease going away drops it from the view.
      await etcdClient.delete().key("/sluice/v1/engines/b").exec();
      await until("b gone", () => m1(views.at(-1))?.liveEngines === 1);
      assert.equal(m1(views.at(-1))?.capacityKvBlocks, 512);
    } finally {
      sub.unsubscribe();
      assert.equal(await aggregator.stop(), 0);
      await engine.stop();
      await nc.close();
      etcdClient.close();
    }
  });

  it("fails over: a standby publishes within the lease TTL after the leader is killed, at once after a resign", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const common = [
      `--nats-url=${nats.url}`,
      `--etcd-endpoints=${etcd.endpoints.join(",")}`,
      `--namespace=${NS}`,
      "--admin-port=0",
      "--log-level=silent",
      "--lease-ttl=2s",
      "--heartbeat=200ms",
    ];
    const nc = await connect({ servers: nats.url });
    const leaders: { id: string; atMs: number }[] = [];
    const sub = nc.subscribe(LOAD_SUBJECT, {
      callback: (_err, msg) =>
        leaders.push({ id: fromBinary(ClusterLoadSchema, msg.data).leaderId, atMs: Date.now() }),
    });
    const doomed = spawnAggregator([...common, "--id=doomed"]);
    let standby: Awaited<ReturnType<typeof launchAggregator>> | undefined;
    let third: Awaited<ReturnType<typeof launchAggregator>> | undefined;
    try {
      await until("the first leader publishing", () => leaders.some((l) => l.id === "doomed"), 30_000);
      standby = await launchAggregator({ argv: [...common, "--id=standby"], env: {} });
      assert.ok(typeof standby !== "number");
      assert.equal(standby.isLeader(), false);
      doomed.kill("SIGKILL");
      await doomed.stopped;
      const killedAtMs = Date.now();
      await until("the standby publishing", () => leaders.some((l) => l.id === "standby"), 15_000);
      const tookMs = leaders.find((l) => l.id === "standby")!.atMs - killedAtMs;
      // TTL 2 s; etcd expires leases on its own clock, so allow generous slack on a loaded machine.
      assert.ok(tookMs < 2_000 + 6_000, `standby took over after ${tookMs} ms`);
      assert.ok(standby.isLeader());
      const s = standby;

      // Graceful stop resigns: a third instance takes over without waiting for the TTL.
      third = await launchAggregator({ argv: [...common, "--id=third"], env: {} });
      assert.ok(typeof third !== "number");
      assert.equal(await s.stop(), 0);
      const stoppedAtMs = Date.now();
      await until("the third publishing", () => leaders.some((l) => l.id === "third"), 15_000);
      const afterResignMs = leaders.find((l) => l.id === "third")!.atMs - stoppedAtMs;
      assert.ok(afterResignMs < 2_000, `took over ${afterResignMs} ms after a resign`);
      // Once "third" leads, nobody else publishes.
      const since = Date.now();
      await new Promise((r) => setTimeout(r, 600));
      assert.deepEqual([...new Set(leaders.filter((l) => l.atMs > since).map((l) => l.id))], ["third"]);
    } finally {
      sub.unsubscribe();
      if (doomed.exitCode === null && doomed.signalCode === null) doomed.kill("SIGKILL");
      if (standby !== undefined && typeof standby !== "number") await standby.stop();
      if (third !== undefined && typeof third !== "number") await third.stop();
      await nc.close();
    }
  });
});
