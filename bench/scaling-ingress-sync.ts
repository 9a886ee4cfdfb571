// Scaling of the L1 multi-frontend sync (issue 8 item 4) with 1 → 32 frontends:
//   - decision cost: `AdmissionController.check` of @sluice/ingress (global view from core's
//     frontend-sync + `decideIngress` + the slot), as the proxy calls it per request, with N − 1 live
//     peers holding load; its own `decisionNs`, p50/p99;
//   - `ingress.state` message: bytes on the wire (`IngressState` binary), cost to build + encode one,
//     and cost to decode + apply one peer's message; per sync round a frontend applies N − 1;
//   - propagation on a real nats-server: N frontends, each with its own NATS connection, ModelSync and
//     subscription, all in this process (one event loop, so deliveries to the N − 1 peers run one after
//     another: an upper bound for separate processes). One publisher → applied by all N − 1 peers, and
//     all N publishing at once → all N × (N − 1) applied.
// Writes the `scaling-ingress` section of bench/RESULTS.md and bench/scaling-ingress-sync*.svg.
//
// Run: node --conditions=sluice-src --import tsx bench/scaling-ingress-sync.ts [--sizes 1,2,4,8,16,32]
//      [--decisions 100000] [--rounds 200] [--quick]

import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { withPolicyDefaults } from "@sluice/core";
import {
  createAdmissionController,
  createInflightLedger,
  createModelSync,
  type ModelSync,
  type Slot,
  staticEngineDirectory,
} from "@sluice/ingress";
import { IngressStateSchema } from "@sluice/proto";
import { startNats } from "@sluice/testkit";
import { connect, type NatsConnection } from "nats";
import { cpuMicros, percentile } from "./ingress-bench-common.js";
import { describeGrowth, renderLinePlotSvg } from "./plot-lines.js";
import { machineDescription, measuredAt, writeResultsSection } from "./results-section.js";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "1,2,4,8,16,32" },
    decisions: { type: "string", default: "100000" },
    rounds: { type: "string", default: "200" },
    quick: { type: "boolean", default: false },
  },
});
const quick = values.quick === true;
const sizes = (values.sizes as string).split(",").map(Number);
const decisions = quick ? 20_000 : Number(values.decisions);
const rounds = quick ? 40 : Number(values.rounds);
if (
  !sizes.every((n) => Number.isInteger(n) && n >= 1 && n <= 256) ||
  !(decisions >= 1000) ||
  !(rounds >= 1)
) {
  console.error("--sizes: integers 1..256; --decisions ≥ 1000; --rounds ≥ 1");
  process.exit(2);
}

const MODEL = "bench-llm";
const CLASSES = ["critical", "standard", "sheddable"] as const;
const HEARTBEAT_MS = 1000;
const SUBJECT = "sluice.v1.scaling.ingress.state";
const policy = withPolicyDefaults({ ingress: { maxInflight: 1_000_000 } });
const engines = staticEngineDirectory(
  Array.from({ length: 8 }, (_, i) => ({
    workerId: `e${i}`,
    model: MODEL,
    url: `http://127.0.0.1:${9000 + i}`,
    blockSize: 16,
    kvTotalBlocks: 1_000_000,
  })),
);

let seed = 7;
function random(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}

/** N ModelSyncs that know each other (leases), each peer holding ~100 requests over 3 classes. */
function frontends(n: number, nowMs: number): ModelSync[] {
  const ids = Array.from({ length: n }, (_, i) => `ingress-${String(i).padStart(2, "0")}-${"x".repeat(8)}`);
  const syncs = ids.map((id) => createModelSync({ instanceId: id, maxSnapshotAgeMs: 3_600_000 }));
  for (const s of syncs) s.setLeasedPeers(new Set(ids), nowMs);
  for (const s of syncs.slice(1)) {
    const view = s.view(MODEL);
    for (let k = 0; k < 100; k++) view.admitted(CLASSES[k % 3] as string, 1 + Math.floor(random() * 200));
  }
  return syncs;
}

/** Every frontend publishes, every frontend applies everyone else's message (all acks settled). */
function fullRound(syncs: readonly ModelSync[], nowMs: number): void {
  const wire = syncs.map((s) => toBinary(IngressStateSchema, s.snapshot(nowMs, HEARTBEAT_MS)));
  for (const s of syncs) for (const bytes of wire) s.receive(fromBinary(IngressStateSchema, bytes), nowMs);
}

/**
 * One sync round as frontend 0 sees it (wire format included): it publishes and every peer applies its
 * message (acks), every peer publishes and it applies theirs. Peers' exchanges among themselves do not
 * change frontend 0's view, so they are skipped (keeps the set-up O(N), not O(N²)).
 */
function syncRound(syncs: readonly ModelSync[], nowMs: number): void {
  const [self, ...peers] = syncs as [ModelSync, ...ModelSync[]];
  const own = toBinary(IngressStateSchema, self.snapshot(nowMs, HEARTBEAT_MS));
  for (const peer of peers) peer.receive(fromBinary(IngressStateSchema, own), nowMs);
  for (const peer of peers) {
    const bytes = toBinary(IngressStateSchema, peer.snapshot(nowMs, HEARTBEAT_MS));
    self.receive(fromBinary(IngressStateSchema, bytes), nowMs);
  }
}

interface PureResult {
  n: number;
  decisionP50Ns: number;
  decisionP99Ns: number;
  messageBytes: number;
  encodeUs: number;
  applyUs: number;
}

function measurePure(n: number): PureResult {
  let now = 1;
  const syncs = frontends(n, now);
  fullRound(syncs, now);
  fullRound(syncs, now);
  const self = syncs[0] as ModelSync;
  const ledger = createInflightLedger({ nowMs: () => now });
  const admission = createAdmissionController({
    ledger,
    sync: self,
    engines,
    policyFor: () => ({ policy, revision: 1 }),
    nowMs: () => now,
  });
  const held: Slot[] = [];
  const samples = new Float64Array(decisions);
  const warmup = Math.min(20_000, decisions);
  for (let i = -warmup; i < decisions; i++) {
    const result = admission.check({
      requestId: `r${i}`,
      model: MODEL,
      requestClass: CLASSES[i % 3] as string,
      promptTokens: 50 + Math.floor(random() * 4000),
      maxTokens: 16 + Math.floor(random() * 1024),
    });
    if (i >= 0) samples[i] = result.decisionNs;
    if (result.admitted) held.push(result.slot);
    // ~300 in flight here; peers' snapshots and acks arrive every 64 decisions (~1 ms at 64k/s).
    if (held.length > 300) held.shift()?.release("completed");
    if ((i & 63) === 63) {
      now += 1;
      syncRound(syncs, now);
    }
  }
  samples.sort();

  // Message size and costs, in steady state (every peer acknowledged, loads in 3 classes).
  fullRound(syncs, now);
  // Timed after as many untimed runs (JIT warm-up dominates the first few thousand).
  const reps = quick ? 5000 : 20_000;
  let bytes = new Uint8Array();
  for (let i = 0; i < reps; i++) bytes = toBinary(IngressStateSchema, self.snapshot(now, HEARTBEAT_MS));
  let t0 = cpuMicros();
  for (let i = 0; i < reps; i++) bytes = toBinary(IngressStateSchema, self.snapshot(now, HEARTBEAT_MS));
  const encodeUs = (cpuMicros() - t0) / reps;
  // Apply: a peer's messages with increasing seqs (a repeated seq would be ignored as stale).
  const peer = syncs[n - 1] as ModelSync;
  const peerMessages = Array.from({ length: 2 * reps }, () =>
    toBinary(IngressStateSchema, peer.snapshot(now, HEARTBEAT_MS)),
  );
  for (const m of peerMessages.slice(0, reps)) self.receive(fromBinary(IngressStateSchema, m), now);
  t0 = cpuMicros();
  for (const m of peerMessages.slice(reps)) self.receive(fromBinary(IngressStateSchema, m), now);
  const applyUs = n === 1 ? 0 : (cpuMicros() - t0) / reps;
  for (const slot of held) slot.release("completed");
  return {
    n,
    decisionP50Ns: percentile(samples, 0.5),
    decisionP99Ns: percentile(samples, 0.99),
    messageBytes: bytes.length,
    encodeUs,
    applyUs,
  };
}

interface NatsResult {
  n: number;
  oneToAllP50Ms: number;
  oneToAllP99Ms: number;
  allToAllP50Ms: number;
  allToAllP99Ms: number;
}

async function measureNats(natsUrl: string, n: number): Promise<NatsResult> {
  const now = () => performance.now();
  const syncs = frontends(n, now());
  const connections: NatsConnection[] = [];
  let expected = 0;
  let applied = 0;
  let onAllApplied: (() => void) | undefined;
  try {
    for (const s of syncs) {
      const nc = await connect({ servers: natsUrl, noEcho: true });
      connections.push(nc);
      nc.subscribe(SUBJECT, {
        callback: (_err, msg) => {
          const outcome = s.receive(fromBinary(IngressStateSchema, msg.data), now());
          if (outcome.applied && ++applied === expected) onAllApplied?.();
        },
      });
      await nc.flush();
    }
    const publish = (i: number) => {
      const s = syncs[i] as ModelSync;
      // A changed load, as after an admission.
      s.view(MODEL).admitted("standard", 1);
      connections[i]?.publish(SUBJECT, toBinary(IngressStateSchema, s.snapshot(now(), HEARTBEAT_MS)));
    };
    const timeRound = async (publishers: number[]): Promise<number> => {
      applied = 0;
      expected = publishers.length * (n - 1);
      const done = new Promise<void>((resolve) => {
        onAllApplied = resolve;
      });
      const t0 = performance.now();
      for (const i of publishers) publish(i);
      await done;
      return performance.now() - t0;
    };
    const oneToAll: number[] = [];
    const allToAll: number[] = [];
    for (let r = 0; r < 10; r++) await timeRound([r % n]); // warm-up
    for (let r = 0; r < rounds; r++) oneToAll.push(await timeRound([r % n]));
    const everyone = syncs.map((_, i) => i);
    for (let r = 0; r < Math.max(10, Math.floor(rounds / 4)); r++) allToAll.push(await timeRound(everyone));
    oneToAll.sort((a, b) => a - b);
    allToAll.sort((a, b) => a - b);
    return {
      n,
      oneToAllP50Ms: percentile(oneToAll, 0.5),
      oneToAllP99Ms: percentile(oneToAll, 0.99),
      allToAllP50Ms: percentile(allToAll, 0.5),
      allToAllP99Ms: percentile(allToAll, 0.99),
    };
  } finally {
    await Promise.allSettled(connections.map((c) => c.close()));
  }
}

console.log(`machine: ${machineDescription()}`);
const pure: PureResult[] = [];
for (const n of sizes) {
  const r = measurePure(n);
  pure.push(r);
  console.log(
    `N=${n}: decision p50 ${(r.decisionP50Ns / 1000).toFixed(2)} µs p99 ${(r.decisionP99Ns / 1000).toFixed(2)} µs; message ${r.messageBytes} B, encode ${r.encodeUs.toFixed(2)} µs, apply ${r.applyUs.toFixed(2)} µs`,
  );
}
const networked: NatsResult[] = [];
{
  await using nats = await startNats({ jetstream: false });
  for (const n of sizes.filter((s) => s > 1)) {
    const r = await measureNats(nats.url, n);
    networked.push(r);
    console.log(
      `N=${n}: one → all applied p50 ${r.oneToAllP50Ms.toFixed(3)} ms p99 ${r.oneToAllP99Ms.toFixed(3)} ms; all → all p50 ${r.allToAllP50Ms.toFixed(3)} ms p99 ${r.allToAllP99Ms.toFixed(3)} ms`,
    );
  }
}

const us = (ns: number) => (ns / 1000).toFixed(2);
const rows = pure.map((p) => {
  const net = networked.find((r) => r.n === p.n);
  const roundUs = p.applyUs * (p.n - 1);
  return `| ${p.n} | ${us(p.decisionP50Ns)} | ${us(p.decisionP99Ns)} | ${p.messageBytes} | ${p.encodeUs.toFixed(2)} | ${p.applyUs.toFixed(2)} | ${roundUs.toFixed(1)} | ${net ? `${net.oneToAllP50Ms.toFixed(2)} / ${net.oneToAllP99Ms.toFixed(2)}` : "—"} | ${net ? `${net.allToAllP50Ms.toFixed(2)} / ${net.allToAllP99Ms.toFixed(2)}` : "—"} |`;
});
const growth = {
  decision: describeGrowth(pure.map((p) => [p.n, p.decisionP50Ns])),
  bytes: describeGrowth(pure.map((p) => [p.n, p.messageBytes])),
  apply: describeGrowth(pure.filter((p) => p.n > 1).map((p) => [p.n, p.applyUs])),
  round: describeGrowth(pure.filter((p) => p.n > 1).map((p) => [p.n - 1, p.applyUs * (p.n - 1)])),
  oneToAll: describeGrowth(networked.map((r) => [r.n - 1, r.oneToAllP50Ms])),
  allToAll: describeGrowth(networked.map((r) => [r.n * (r.n - 1), r.allToAllP50Ms])),
};

writeFileSync(
  new URL("./scaling-ingress-sync.svg", import.meta.url),
  renderLinePlotSvg({
    title: "L1 sync: per-frontend cost vs frontends",
    xLabel: "frontends N",
    yLabel: "µs",
    logX: true,
    logY: true,
    series: [
      { name: "decision p50", points: pure.map((p) => [p.n, p.decisionP50Ns / 1000]) },
      { name: "decision p99", points: pure.map((p) => [p.n, p.decisionP99Ns / 1000]) },
      { name: "encode own snapshot", points: pure.map((p) => [p.n, p.encodeUs]) },
      {
        name: "apply one sync round (N − 1 messages)",
        points: pure.filter((p) => p.n > 1).map((p) => [p.n, p.applyUs * (p.n - 1)]),
      },
    ],
  }),
);
if (networked.length > 0) {
  writeFileSync(
    new URL("./scaling-ingress-sync-propagation.svg", import.meta.url),
    renderLinePlotSvg({
      title: "ingress.state propagation on nats-server (one process)",
      xLabel: "frontends N",
      yLabel: "ms until applied everywhere",
      logX: true,
      logY: true,
      series: [
        { name: "one publisher → N − 1 peers, p50", points: networked.map((r) => [r.n, r.oneToAllP50Ms]) },
        { name: "one publisher → N − 1 peers, p99", points: networked.map((r) => [r.n, r.oneToAllP99Ms]) },
        { name: "all N publish → all applied, p50", points: networked.map((r) => [r.n, r.allToAllP50Ms]) },
      ],
    }),
  );
}

const markdown = `## Scaling: L1 ingress sync with 1 → ${Math.max(...sizes)} frontends (issue 8)

Decision = \`AdmissionController.check\` of @sluice/ingress (core's frontend-sync global view + \`decideIngress\` +
the slot), its own \`decisionNs\` over ${decisions} decisions per N, every peer holding ~100 requests in 3 classes
and a sync round every 64 decisions. Message = the binary \`sluice.v1.IngressState\` one frontend publishes
(ids of 20 characters, 3 classes in flight). Apply = decode + \`ModelSync.receive\` of one peer's message (encode and apply: mean CPU time, not wall time);
one sync round applies N − 1 of them. Propagation: real nats-server, N connections in this one process
(their deliveries share one event loop, so these are upper bounds for separate processes), ${rounds} rounds.

| frontends N | decision p50 µs | decision p99 µs | message bytes | encode µs | apply one µs | apply round (N − 1) µs | one → all applied p50 / p99 ms | all N → all applied p50 / p99 ms |
|---|---|---|---|---|---|---|---|---|
${rows.join("\n")}

Growth:
- L1 decision: ${growth.decision} in frontends (each decision sums the N − 1 peers' last snapshots into the global view).
- Message size: ${growth.bytes} in frontends — \`acked_seqs\` carries one entry per peer; the load part is per class, flat in N.
- Applying one peer message: ${growth.apply} in N (the message carries one \`acked_seqs\` entry per peer); a whole sync round per frontend: ${growth.round} in peers.
- Propagation one → all: ${growth.oneToAll} in peers (here one event loop applies all N − 1 in turn; separate processes would apply them in parallel).
- Propagation all → all: ${growth.allToAll} in N × (N − 1) deliveries — the bus carries O(N²) messages per round, O(N) per frontend.

![L1 sync cost](scaling-ingress-sync.svg) ![propagation](scaling-ingress-sync-propagation.svg)

Machine: ${machineDescription()}. Command: \`node --conditions=sluice-src --import tsx bench/scaling-ingress-sync.ts${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(" ")}` : ""}\` — measured ${measuredAt()}.`;
console.log(`\n${markdown}`);
writeResultsSection("scaling-ingress", markdown);
