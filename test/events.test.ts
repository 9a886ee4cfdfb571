// `sluice events` against a real nats-server with JetStream: --since replays events published
// before it started (from the stream the aggregator leader created), filters apply, --follow
// continues live, and an unreachable NATS is exit 3.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toJsonString } from "@bufbuild/protobuf";
import { launchAggregator } from "@sluice/aggregator";
import { runEvents } from "@sluice/cli";
import { DecisionEventSchema, Level, Outcome, Reason } from "@sluice/proto";
import { freePort, startEtcd, startNats } from "@sluice/testkit";
import { connect, type NatsConnection } from "nats";
import { runSluice, sink, until } from "./aggregator-helpers.js";

const NS = "ev";

function publishEvent(
  nc: NatsConnection,
  level: string,
  outcome: string,
  fields: Parameters<typeof create<typeof DecisionEventSchema>>[1],
): void {
  const event = create(DecisionEventSchema, { timestampMs: Date.now(), ...fields });
  nc.publish(
    `sluice.v1.${NS}.events.${level}.${outcome}`,
    new TextEncoder().encode(toJsonString(DecisionEventSchema, event)),
  );
}

describe("sluice events", () => {
  it("replays history with --since, filters it, and follows live events", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const aggregator = await launchAggregator({
      argv: [
        `--nats-url=${nats.url}`,
        `--etcd-endpoints=${etcd.endpoints.join(",")}`,
        `--namespace=${NS}`,
        "--admin-port=0",
        "--log-level=silent",
        "--events-max-age=1h",
      ],
      env: {},
    });
    assert.ok(typeof aggregator !== "number");
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await nc.jetstreamManager();
      // The leader creates the stream at election.
      await until("the events stream", async () => {
        try {
          const info = await jsm.streams.info("SLUICE_EVENTS");
          return info.config.max_age === 3_600 * 1e9;
        } catch {
          return false;
        }
      });
      publishEvent(nc, "ingress", "rejected", {
        requestId: "r1",
        requestClass: "standard",
        level: Level.INGRESS,
        outcome: Outcome.REJECTED,
        reason: Reason.KV_LIMIT,
        observedValue: 1300,
        limitValue: 1250,
        retryAfterMs: 800,
      });
      publishEvent(nc, "router", "admitted", {
        requestId: "r2",
        requestClass: "critical",
        level: Level.ROUTER,
        outcome: Outcome.ADMITTED,
        workerId: "w1",
      });
      publishEvent(nc, "engine", "rejected", {
        requestId: "r3",
        requestClass: "sheddable",
        level: Level.ENGINE,
        outcome: Outcome.REJECTED,
        reason: Reason.QUEUE_TIME,
      });
      nc.publish(`sluice.v1.${NS}.events.engine.rejected`, new TextEncoder().encode("{not json"));
      await until(
        "4 messages in the stream",
        async () => (await jsm.streams.info("SLUICE_EVENTS")).state.messages === 4,
      );

      const common = [`--nats-url=${nats.url}`, `--namespace=${NS}`];
      const run = async (args: string[]) => {
        const stdout = sink();
        const stderr = sink();
        const code = await runEvents([...common, ...args], { stdout, stderr, env: {} });
        return {
          code,
          lines: stdout
            .text()
            .split("\n")
            .filter((l) => l !== ""),
          stderr: stderr.text(),
        };
      };
      const ids = (lines: string[]) => lines.map((l) => (JSON.parse(l) as { requestId: string }).requestId);

      const all = await run(["--since=5m", "--json"]);
      assert.equal(all.code, 0, all.stderr);
      assert.deepEqual(ids(all.lines), ["r1", "r2", "r3"]);
      assert.match(all.stderr, /skipped 1 malformed/);
      assert.equal((JSON.parse(all.lines[0] ?? "{}") as { reason: string }).reason, "REASON_KV_LIMIT");

      assert.deepEqual(ids((await run(["--since=5m", "--json", "--level=ingress"])).lines), ["r1"]);
      assert.deepEqual(ids((await run(["--since=5m", "--json", "--outcome=rejected"])).lines), ["r1", "r3"]);
      assert.deepEqual(ids((await run(["--since=5m", "--json", "--class=critical"])).lines), ["r2"]);

      const human = await run(["--since=5m", "--level=ingress"]);
      assert.equal(human.lines.length, 1);
      assert.match(
        human.lines[0] ?? "",
        /ingress +rejected +standard +kv_limit +req=r1 .*observed=1300 limit=1250 +retry_after=800ms/,
      );

      const bad = await run(["--level=l9"]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /level/);

      // --follow without --since: only what is published from now on.
      const stop = new AbortController();
      const out = sink();
      const following = runEvents([...common, "--follow", "--json"], {
        stdout: out,
        stderr: sink(),
        env: {},
        signal: stop.signal,
      });
      // The consumer may start a moment after runEvents is called: publish until one arrives.
      let n = 0;
      await until("a live event", () => {
        publishEvent(nc, "router", "held", {
          requestId: `live-${n++}`,
          level: Level.ROUTER,
          outcome: Outcome.HELD,
        });
        return out.text().includes("live-");
      });
      stop.abort();
      assert.equal(await following, 0);
      assert.doesNotMatch(out.text(), /"r1"/);
    } finally {
      await nc.close();
      await aggregator.stop();
    }
  });

  it("exits 3 with a clear message when NATS is unreachable", async () => {
    const port = await freePort();
    const startedMs = Date.now();
    const r = await runSluice(["events", `--nats-url=nats://127.0.0.1:${port}`, "--since=1m"]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /NATS is unreachable at nats:\/\/127\.0\.0\.1:\d+/);
    assert.ok(Date.now() - startedMs < 20_000);
  });
});
