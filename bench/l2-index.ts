// L2 prefix index: lookup latency with 1M (block, worker) entries across 128 workers and 8k-token
// requests (target: p99 < 50 µs), and KV block events applied per second on one core (target
// ≥ 1M/s). Writes the `l2-index` section of bench/RESULTS.md.
//
// What is timed: the lookup of a prompt's 128 sequence hashes, which the router shell computes from
// the tokens before it routes (their hashing is timed in bench/l2-route.ts). Dynamo's figures for this
// shape time its `find_matches` the same way: its indexes take the prompt's block hashes, computed
// beforehand by the frontend (`compute_block_hash_for_seq`).
// Run: node --conditions=sluice-src --import tsx bench/l2-index.ts
import { createPrefixIndex } from "@sluice/core";
import {
  BLOCKS_PER_REQUEST,
  buildWorkload,
  bytesPerCall,
  environment,
  gcDuring,
  noiseFloor,
  percentile,
  rng,
  timeEach,
  WORKERS,
} from "./l2-common.js";
import { machineDescription, measuredAt, writeResultsSection } from "./results-section.js";

const COMMAND = "node --conditions=sluice-src --import tsx bench/l2-index.ts";
const startedAt = new Date();

console.log("building the workload (1M entries) …");
const workload = buildWorkload();
const index = createPrefixIndex({ initialCapacityBlocks: 1 << 20, initialWorkerCapacity: WORKERS });
const eventIds = new Array<bigint>(WORKERS).fill(0n);
const workerId = (w: number) => `worker-${w}`;

// 1. Build: every cached prompt arrives as one `stored` event of ≤ 128 blocks (vLLM batches a
//    request's newly cached blocks into one event). Built twice: the first build warms the JIT and
//    is reported separately from the second (a fresh index, timed).
function build(target: ReturnType<typeof createPrefixIndex>): {
  blocks: number;
  events: number;
  seconds: number;
} {
  let blocks = 0;
  let events = 0;
  const start = process.hrtime.bigint();
  for (let w = 0; w < WORKERS; w++) {
    let eventId = 0n;
    for (const seq of workload.perWorker[w]!) {
      eventId += 1n;
      target.applyEvent(workerId(w), eventId, {
        type: "stored",
        parentHash: null,
        blockHashes: seq,
        tokenHashes: null,
      });
      blocks += seq.length;
      events++;
    }
    eventIds[w] = eventId;
  }
  return { blocks, events, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}
const coldBuild = build(
  createPrefixIndex({ initialCapacityBlocks: 1 << 20, initialWorkerCapacity: WORKERS }),
);
const warmBuild = build(index);
const stats = index.stats();

// 2. Lookups: half worst case (the whole prompt is cached somewhere: 128 lookups), half shared
//    system prefix only. `matchPrefix` is what the router calls (no allocation: the answer is the
//    index's reusable view); `findMatches` answers the same as a new Map.
console.log(`indexed in ${warmBuild.seconds.toFixed(2)} s; timing lookups …`);
const queries = [...workload.hitQueries, ...workload.prefixQueries];
const random = rng(7);
const order = Array.from({ length: 20_000 }, () => Math.floor(random() * queries.length));
let sink = 0;
let matchRuns: number[][] = [];
const matchGc = await gcDuring(() => {
  matchRuns = [1, 2, 3].map(() =>
    timeEach(order.length, 2000, (i) => {
      sink += index.matchPrefix(queries[order[i % order.length]!]!).size;
    }),
  );
});
const matchBytes = await bytesPerCall((i) => {
  sink += index.matchPrefix(queries[order[i % order.length]!]!).size;
});
const mapRuns = [1, 2, 3].map(() =>
  timeEach(order.length, 2000, (i) => {
    sink += index.findMatches(queries[order[i % order.length]!]!).size;
  }),
);
const hitOnly = timeEach(5000, 500, (i) => {
  sink += index.matchPrefix(workload.hitQueries[i % workload.hitQueries.length]!).size;
});
const floor = noiseFloor();

// 3. Steady-state churn: remove a worker's cached prompt and store it again (evict + recompute), in
//    events of 16 blocks as an engine evicting LRU blocks emits them.
const churnEvents: { w: number; removed: bigint[]; stored: bigint[]; parent: bigint | null }[] = [];
for (let i = 0; i < 4096; i++) {
  const w = Math.floor(random() * WORKERS);
  const prompts = workload.perWorker[w]!;
  const seq = prompts[Math.floor(random() * (prompts.length - 1))]!; // the last one may be trimmed
  const from = 16 * Math.floor(random() * (BLOCKS_PER_REQUEST / 16));
  const blocks = seq.slice(from, from + 16);
  churnEvents.push({ w, removed: blocks, stored: blocks, parent: from === 0 ? null : seq[from - 1]! });
}
let churnBlocks = 0;
let churnEventsApplied = 0;
const t0 = process.hrtime.bigint();
for (let round = 0; round < 16; round++) {
  for (const e of churnEvents) {
    const id = workerId(e.w);
    eventIds[e.w]! += 1n;
    index.applyEvent(id, eventIds[e.w]!, { type: "removed", blockHashes: e.removed });
    eventIds[e.w]! += 1n;
    index.applyEvent(id, eventIds[e.w]!, {
      type: "stored",
      parentHash: e.parent,
      blockHashes: e.stored,
      tokenHashes: null,
    });
    churnBlocks += e.removed.length + e.stored.length;
    churnEventsApplied += 2;
  }
}
const churnS = Number(process.hrtime.bigint() - t0) / 1e9;
if (index.stats().workerBlocks !== stats.workerBlocks) throw new Error("churn changed the index size");

const fmt = (us: number) => us.toFixed(1);
const matchCalls = 3 * (order.length + 2000);
// The run with the median p99 of three, so one disturbed run neither hides nor inflates the tail.
const medianRun = (runs: number[][]) =>
  runs.map((r) => [percentile(r, 0.5), percentile(r, 0.99)] as const).sort((a, b) => a[1] - b[1])[1]!;
const match = medianRun(matchRuns);
const map = medianRun(mapRuns);
const mem = process.memoryUsage();
const verdict =
  `Target (\`matchPrefix\` p99 < 50 µs on the mixed workload): ${match[1] < 50 ? "met" : "NOT met"} in this run ` +
  `(p99 ${fmt(match[1])} µs; noise floor p99 ${fmt(floor.p99)} µs).`;
const gcLine =
  `Allocation: ${matchBytes.toFixed(1)} heap bytes per \`matchPrefix\` (V8 sampling heap profiler over 5000 calls, garbage included); ` +
  `${((matchGc.minor / matchCalls) * 10_000).toFixed(2)} young-generation and ${matchGc.major} full/incremental collections ` +
  `per 10 000 calls during its timed runs (the timer's own \`hrtime.bigint()\` included), ${matchGc.pauseMs.toFixed(1)} ms of pauses in all.`;
const rows: string[] = [];
rows.push(
  `Index: ${stats.workerBlocks} (block, worker) entries, ${stats.blocks} distinct blocks, ${stats.workers} workers; ` +
    `table ${(index.memoryBytes() / 2 ** 20).toFixed(0)} MiB of typed arrays; process heap ${(mem.heapUsed / 2 ** 20).toFixed(0)} MiB ` +
    `(mostly the benchmark's own workload), array buffers ${(mem.arrayBuffers / 2 ** 20).toFixed(0)} MiB.`,
  "",
  "| benchmark | shape | p50 | p99 | target |",
  "|---|---|---|---|---|",
  `| \`matchPrefix\` (router's lookup; median-p99 run of 3 × 20 000) | 128 blocks/request, 50 % fully cached somewhere, 50 % system prefix only | ${fmt(match[0])} µs | ${fmt(match[1])} µs | p99 < 50 µs |`,
  `| \`findMatches\` (same lookup, answer as a new Map; median-p99 run of 3 × 20 000) | same | ${fmt(map[0])} µs | ${fmt(map[1])} µs | p99 < 50 µs |`,
  `| \`matchPrefix\` worst case (5000) | whole 128-block prompt cached on ≥ 1 worker | ${fmt(percentile(hitOnly, 0.5))} µs | ${fmt(percentile(hitOnly, 0.99))} µs | p99 < 50 µs |`,
  `| noise floor (fixed ~${fmt(floor.p50)} µs loop, 20 000, timed the same way) | no memory traffic, no allocation | ${fmt(floor.p50)} µs | ${fmt(floor.p99)} µs | — |`,
  "",
  "| benchmark | shape | events/s | block events/s | target |",
  "|---|---|---|---|---|",
);
for (const [label, b] of [
  ["build (stored), cold", coldBuild],
  ["build (stored), warm", warmBuild],
] as const) {
  rows.push(
    `| ${label} | ${b.events} stored events of ≤ 128 blocks into an empty index | ${(b.events / b.seconds).toFixed(0)} | ${(b.blocks / b.seconds / 1e6).toFixed(2)} M | ≥ 1 M/s |`,
  );
}
rows.push(
  `| churn (removed + stored) | ${churnEventsApplied} events × 16 blocks at 1M entries | ${(churnEventsApplied / churnS).toFixed(0)} | ${(churnBlocks / churnS / 1e6).toFixed(2)} M | ≥ 1 M/s |`,
);
console.log(`<!-- ${environment()}; sink ${sink} -->`);
console.log(rows.join("\n"));
console.log(verdict);
console.log(gcLine);

writeResultsSection(
  "l2-index",
  [
    "## L2 prefix index (`bench/l2-index.ts`)",
    "",
    `Measured ${measuredAt(startedAt)} on ${machineDescription()}. Command: \`${COMMAND}\`.`,
    "Timed: the lookup of a prompt's 128 precomputed sequence hashes (Dynamo's `find_matches` figures also",
    "take precomputed block hashes); hashing the tokens is timed in the `l2-route` section. The noise-floor",
    "row is the same machine's tail on a fixed loop in the same run: judge the p99 against it.",
    "",
    ...rows,
    "",
    verdict,
    "",
    gcLine,
  ].join("\n"),
);
console.log("wrote the l2-index section of bench/RESULTS.md");
