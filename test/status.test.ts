// `sluice status` against real nats-server and etcd: instances per role, engines with capacity
// and observed load, headroom from cluster.load (or computed locally without an aggregator),
// recent rejection reasons, and exit 3 when etcd or NATS is unreachable.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toJsonString } from "@bufbuild/protobuf";
import { ensureEventsStream, launchAggregator } from "@sluice/aggregator";
import { runStatus, type StatusReport } from "@sluice/cli";
import { launchMockEngine } from "@sluice/mock-engine";
import { DecisionEventSchema, Level, Outcome, Reason } from "@sluice/proto";
import { freePort, startEtcd, startNats } from "@sluice/testkit";
import { connect } from "nats";
import { runSluice, sink, until } from "./aggregator-helpers.js";

const NS = "st";

describe("sluice status", () => {
  it("lists instances and engines, load, headroom and recent rejections (--json)", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const shared = [
      `--nats-url=${nats.url}`,
      `--etcd-endpoints=${etcd.endpoints.join(",")}`,
      `--namespace=${NS}`,
    ];
    const nc = await connect({ servers: nats.url });
    await ensureEventsStream(await nc.jetstreamManager());
    nc.publish(
      `sluice.v1.${NS}.events.ingress.rejected`,
      new TextEncoder().encode(
        toJsonString(
          DecisionEventSchema,
          create(DecisionEventSchema, {
            requestId: "x",
            level: Level.INGRESS,
            outcome: Outcome.REJECTED,
            reason: Reason.INFLIGHT_LIMIT,
            timestampMs: Date.now(),
          }),
        ),
      ),
    );
    await nc.flush();
    const engine = await launchMockEngine({
      argv: [
        ...shared,
        "--port=0",
        "--admin-port=0",
        "--log-level=silent",
        "--id=eng-1",
        "--worker-id=w1",
      ].concat(["--num-gpu-blocks=300", "--max-num-seqs=12", "--model=m-status", "--load-heartbeat=200ms"]),
      env: {},
    });
    assert.ok(typeof engine !== "number");
    let aggregator: Awaited<ReturnType<typeof launchAggregator>> | undefined;
    try {
      const statusJson = async (): Promise<StatusReport> => {
        const out = sink();
        const err = sink();
        const code = await runStatus([...shared, "--json", "--sample=500ms"], {
          stdout: out,
          stderr: err,
          env: {},
        });
        assert.equal(code, 0, err.text());
        return JSON.parse(out.text()) as StatusReport;
      };
      // No aggregator yet: headroom is computed locally from the registrations and engine load.
      await until("the engine registered with load", async () => {
        const r = await statusJson();
        return r.engines.length === 1 && r.engines[0]?.observed !== undefined;
      });
      const local = await statusJson();
      assert.equal(local.cluster.source, "local");
      assert.equal(local.engines[0]?.workerId, "w1");
      assert.equal(local.engines[0]?.kvTotalBlocks, 300);
      assert.equal(local.engines[0]?.maxNumSeqs, 12);
      assert.equal(local.cluster.models[0]?.capacityKvBlocks, 300);
      assert.deepEqual(local.recentRejections.counts, [
        { level: "ingress", reason: "inflight_limit", count: 1 },
      ]);

      aggregator = await launchAggregator({
        argv: [...shared, "--admin-port=0", "--log-level=silent", "--id=agg-s"],
        env: {},
      });
      assert.ok(typeof aggregator !== "number");
      // Through the real CLI entry point this time.
      let report: StatusReport | undefined;
      await until(
        "status from the aggregator",
        async () => {
          const r = await runSluice(["status", ...shared, "--json"]);
          assert.equal(r.code, 0, r.stderr);
          report = JSON.parse(r.stdout) as StatusReport;
          return report.cluster.source === "aggregator";
        },
        60_000,
      );
      assert.ok(report);
      const roles = report.instances.map((i) => `${i.role}/${i.id}`);
      assert.ok(roles.includes("aggregator/agg-s"), roles.join());
      assert.ok(roles.includes("mock-engine/eng-1"), roles.join());
      assert.equal(report.cluster.leaderId, "agg-s");
      const model = report.cluster.models.find((m) => m.model === "m-status");
      assert.equal(model?.liveEngines, 1);
      assert.deepEqual(
        model?.headroom.map((h) => h.requestClass),
        ["critical", "standard", "sheddable"],
      );

      // --watch redraws until interrupted.
      const stop = new AbortController();
      const watchOut = sink();
      const watching = runStatus([...shared, "--json", "--watch", "--interval=300ms", "--sample=100ms"], {
        stdout: watchOut,
        stderr: sink(),
        env: {},
        signal: stop.signal,
      });
      await until(
        "two refreshes",
        () =>
          watchOut
            .text()
            .split("\n")
            .filter((l) => l !== "").length >= 2,
      );
      stop.abort();
      assert.equal(await watching, 0);

      // Human output names the sections.
      const human = await runSluice(["status", ...shared]);
      assert.equal(human.code, 0, human.stderr);
      for (const section of [
        "Instances",
        "Engines (1)",
        "Cluster load from cluster.load",
        "Rejections in the last 60 s",
      ]) {
        assert.ok(human.stdout.includes(section), `${section} in:\n${human.stdout}`);
      }
    } finally {
      if (aggregator !== undefined && typeof aggregator !== "number") await aggregator.stop();
      await engine.stop();
      await nc.close();
    }
  });

  it("exits 3 when etcd or NATS is unreachable", async () => {
    await using nats = await startNats();
    const deadEtcd = `http://127.0.0.1:${await freePort()}`;
    const err = sink();
    const code = await runStatus([`--nats-url=${nats.url}`, `--etcd-endpoints=${deadEtcd}`], {
      stdout: sink(),
      stderr: err,
      env: {},
    });
    assert.equal(code, 3);
    assert.match(err.text(), /etcd is unreachable/);
    const err2 = sink();
    const code2 = await runStatus(
      [`--nats-url=nats://127.0.0.1:${await freePort()}`, `--etcd-endpoints=${deadEtcd}`],
      {
        stdout: sink(),
        stderr: err2,
        env: {},
      },
    );
    assert.equal(code2, 3);
    assert.match(err2.text(), /NATS is unreachable/);
  });
});
