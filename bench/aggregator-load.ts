// Aggregator under load (issue 7): 128 simulated engines each publish 100 EngineLoad updates/s
// (12 800 msg/s) to a real nats-server for ~10 s. The aggregator runs in this process, the
// publishers in a child process, so process.cpuUsage() here is the aggregator's CPU (plus this
// script's idle bookkeeping). Publish lag = first unpublished input change → cluster.load published
// (includes the debounce window, default 50 ms). Prints one markdown row.
// Run: node --conditions=sluice-src --import tsx bench/aggregator-load.ts [--engines 128] [--rate 100] [--seconds 10] [--debounce 50ms]
import { spawn } from "node:child_process";
import { once } from "node:events";
import { cpus, loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { launchAggregator } from "@sluice/aggregator";
import { startEtcd, startNats } from "@sluice/testkit";
import { Etcd3 } from "etcd3";

const { values } = parseArgs({
  options: {
    engines: { type: "string", default: "128" },
    rate: { type: "string", default: "100" },
    seconds: { type: "string", default: "10" },
    debounce: { type: "string", default: "50ms" },
  },
});
const engines = Number(values.engines);
const ratePerEngine = Number(values.rate);
const seconds = Number(values.seconds);
if (![engines, ratePerEngine, seconds].every((n) => Number.isInteger(n) && n > 0)) {
  console.error("--engines, --rate and --seconds must be positive integers");
  process.exit(2);
}

await using nats = await startNats({ jetstream: false });
await using etcd = await startEtcd();
const etcdClient = new Etcd3({ hosts: [...etcd.endpoints] });
for (let i = 0; i < engines; i++) {
  await etcdClient
    .put(`/sluice/v1/engines/e${i}`)
    .value(
      JSON.stringify({ worker_id: `e${i}`, model: `m${i % 4}`, kv_total_blocks: 4096, max_num_seqs: 256 }),
    )
    .exec();
}

const lags: number[] = [];
let publishes = 0;
const aggregator = await launchAggregator({
  argv: [
    `--nats-url=${nats.url}`,
    `--etcd-endpoints=${etcd.endpoints.join(",")}`,
    "--namespace=bench",
    "--admin-port=0",
    "--log-level=error",
    `--debounce=${values.debounce}`,
  ],
  env: {},
  onPublish: (p) => {
    publishes += 1;
    if (p.lagMs !== undefined) lags.push(p.lagMs);
  },
});
if (typeof aggregator === "number") throw new Error(`aggregator exited with ${aggregator}`);
while (!aggregator.isLeader()) await sleep(50);

// Publishers: every 10 ms each engine sends rate/100 snapshots with changing numbers.
const publisherScript = `
import { create, toBinary } from "@bufbuild/protobuf";
import { EngineLoadSchema } from "@sluice/proto";
import { connect } from "nats";
const nc = await connect({ servers: ${JSON.stringify(nats.url)} });
const engines = ${engines}, perTick = ${ratePerEngine} / 100, endAt = Date.now() + ${seconds * 1000};
let seq = 0n, sent = 0;
const timer = setInterval(() => {
  if (Date.now() >= endAt) { clearInterval(timer); void nc.drain().then(() => process.stdout.write(String(sent))); return; }
  for (let t = 0; t < perTick; t++) for (let i = 0; i < engines; i++) {
    seq += 1n;
    nc.publish("sluice.v1.bench.engine.e" + i + ".load", toBinary(EngineLoadSchema, create(EngineLoadSchema, {
      workerId: "e" + i, seq, timestampMs: Date.now(), running: Number(seq % 64n), waiting: Number(seq % 7n),
      kvUsedBlocks: Number(seq % 4096n), kvTotalBlocks: 4096, pendingPrefillTokens: Number(seq % 10000n),
      prefillTokensPerS: 20000 })));
    sent++;
  }
}, 10);`;
const child = spawn(
  process.execPath,
  ["--conditions=sluice-src", "--import", "tsx", "--input-type=module", "-e", publisherScript],
  { stdio: ["ignore", "pipe", "inherit"] },
);
let sentText = "";
child.stdout.on("data", (d: Buffer) => (sentText += d.toString()));

const cpuBefore = process.cpuUsage();
const wallBefore = performance.now();
lags.length = 0;
publishes = 0;
await once(child, "exit");
const wallMs = performance.now() - wallBefore;
const cpu = process.cpuUsage(cpuBefore);
const metricsText = await (await fetch(`${aggregator.adminUrl}/metrics`)).text();
const received = /sluice_aggregator_snapshots_received_total\{[^}]*kind="engine_load"[^}]*\} (\d+)/.exec(
  metricsText,
)?.[1];
await aggregator.stop();
etcdClient.close();

const sorted = [...lags].sort((a, b) => a - b);
const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
const cpuPct = ((cpu.user + cpu.system) / 1000 / wallMs) * 100;
console.log(
  "| engines | updates/s | sent | received | wall s | aggregator CPU % of one core | cluster.load published | publish lag p50 ms | p99 ms | machine |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
console.log(
  `| ${engines} | ${engines * ratePerEngine} | ${sentText || "?"} | ${received ?? "?"} | ${(wallMs / 1000).toFixed(1)} | ${cpuPct.toFixed(1)} | ${publishes} | ${q(0.5)} | ${q(0.99)} | ${cpus().length} cores, load ${loadavg()[0]?.toFixed(1)} |`,
);
