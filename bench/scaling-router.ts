// How the L2 router's costs grow (issue 8): prefix lookup (`matchPrefix`) and a full route + release,
// and the index's memory, against the number of workers (8 → 1024, at 1M indexed entries) and the
// number of indexed (block, worker) entries (10k → 10M, at 128 workers); plus the 1024-worker × 10M
// corner for memory. Requests are 8k tokens (128 blocks of 64). Writes the `scaling-router` section of
// bench/RESULTS.md and two SVG plots beside it.
//
// Run: node --expose-gc --max-old-space-size=8192 --conditions=sluice-src --import tsx bench/scaling-router.ts
//   --quick   stops at 1M entries (no 10M runs: they need ~3 GiB and most of the run time)
// `--expose-gc` lets the heap figures be taken after a full collection; without it they are noisier.
import { writeFileSync } from "node:fs";
import {
  createL2Router,
  createPrefixIndex,
  createWorkerLoad,
  type PrefixIndex,
  type RouterPolicy,
  type RouterWorker,
  routerDecisionOptionsWithDefaults,
} from "@sluice/core";
import { noiseFloor, percentile, rng, timeEach } from "./l2-common.js";
import { machineDescription, measuredAt, writeResultsSection } from "./results-section.js";

const QUICK = process.argv.includes("--quick");
const COMMAND = `node --expose-gc --max-old-space-size=8192 --conditions=sluice-src --import tsx bench/scaling-router.ts${QUICK ? " --quick" : ""}`;
const BLOCK_SIZE = 64;
const BLOCKS_PER_REQUEST = 128;
const SYSTEM_PROMPTS = 32;
const CALLS = 5000;
const startedAt = new Date();

const POLICY: RouterPolicy = {
  classes: [
    { name: "critical", priority: 300, ttftObjectiveMs: 1000, itlObjectiveMs: 50, limitShare: 1.0 },
    { name: "standard", priority: 200, ttftObjectiveMs: 2000, itlObjectiveMs: 100, limitShare: 0.9 },
    { name: "sheddable", priority: 100, ttftObjectiveMs: 10000, itlObjectiveMs: 200, limitShare: 0.7 },
  ],
  defaultClass: "standard",
  router: {
    busyDecodeBlockFraction: 0.95,
    busyPendingPrefillTokens: 0,
    busyPrefillBatchRatio: 4.0,
    busyTtftObjectiveFraction: 1.0,
    classMaxHeld: { critical: 256, standard: 128, sheddable: 0 },
    maxHoldMs: 1000,
    overlapScoreWeight: 1.0,
  },
  rejection: { httpStatus: 429, retryAfterMinMs: 100, retryAfterMaxMs: 30000 },
};

interface Config {
  workers: number;
  entries: number;
}

interface Row extends Config {
  distinctBlocks: number;
  buildBlocksPerS: number;
  indexBytes: number;
  heapBytes: number;
  matchP50: number;
  matchP99: number;
  routeP50: number;
  routeP99: number;
  routed: number;
}

const gc = (globalThis as { gc?: () => void }).gc;
function heapUsed(): number {
  gc?.();
  return process.memoryUsage().heapUsed;
}

/**
 * Indexes `entries` (block, worker) pairs over `workers` workers: each worker stores 128-block prompts
 * (one of 32 shared system prefixes of 16–64 blocks + its own tail) until it holds its share. Hashes
 * are opaque to the index, so random u64s stand in for chained xxh3 ones; prompts are generated while
 * indexing and dropped, except samples kept as queries, so 10M entries fit in a modest heap.
 */
function build(
  index: PrefixIndex,
  { workers, entries }: Config,
): { hitQueries: bigint[][]; prefixQueries: bigint[][]; seconds: number } {
  const random = rng(workers * 7 + entries);
  const u64 = new BigUint64Array(1);
  const u32 = new Uint32Array(u64.buffer);
  const randomHash = (): bigint => {
    u32[0] = Math.floor(random() * 2 ** 32);
    u32[1] = Math.floor(random() * 2 ** 32);
    return u64[0]!;
  };
  const systems = Array.from({ length: SYSTEM_PROMPTS }, () =>
    Array.from({ length: 16 + Math.floor(random() * 49) }, randomHash),
  );
  const promptWith = (system: bigint[]): bigint[] => {
    const out = system.slice();
    while (out.length < BLOCKS_PER_REQUEST) out.push(randomHash());
    return out;
  };
  const randomSystem = () => systems[Math.floor(random() * systems.length)]!;
  const perWorker = Math.floor(entries / workers);
  const hitQueries: bigint[][] = [];
  let seconds = 0;
  for (let w = 0; w < workers; w++) {
    const workerId = `worker-${w}`;
    let held = 0;
    let eventId = 0n;
    // The system prefixes a worker holds are counted once (the index keeps one bit per block).
    const heldSystems = new Set<bigint[]>();
    while (held < perWorker) {
      const system = randomSystem();
      const p = promptWith(system);
      const fresh = heldSystems.has(system) ? p.length - system.length : p.length;
      const room = perWorker - held;
      const kept = fresh <= room ? p : p.slice(0, p.length - (fresh - room));
      heldSystems.add(system);
      held += Math.min(fresh, room);
      eventId += 1n;
      const t0 = process.hrtime.bigint();
      index.applyEvent(workerId, eventId, {
        type: "stored",
        parentHash: null,
        blockHashes: kept,
        tokenHashes: null,
      });
      seconds += Number(process.hrtime.bigint() - t0) / 1e9;
      // Reservoir of 512 fully indexed prompts: full-length walks (the costly case).
      if (kept.length === BLOCKS_PER_REQUEST) {
        if (hitQueries.length < 512) hitQueries.push(kept);
        else {
          const slot = Math.floor(random() * 4 * hitQueries.length);
          if (slot < hitQueries.length) hitQueries[slot] = kept;
        }
      }
    }
  }
  const prefixQueries = Array.from({ length: 512 }, () => promptWith(randomSystem()));
  return { hitQueries, prefixQueries, seconds };
}

function measure(config: Config): Row {
  const heapBefore = heapUsed();
  const index = createPrefixIndex({
    // Sized for the distinct blocks to come (≤ entries), so the build does not time table doublings.
    initialCapacityBlocks: Math.max(1024, config.entries),
    initialWorkerCapacity: config.workers,
  });
  const { hitQueries, prefixQueries, seconds } = build(index, config);
  const stats = index.stats();
  const queries = [...hitQueries, ...prefixQueries];
  // Heap held by the index (per-worker bookkeeping) and the kept query samples; the table itself is
  // off-heap, in `indexBytes`.
  const heapBytes = heapUsed() - heapBefore;

  let sink = 0;
  const matchRuns = [0, 1, 2].map(() =>
    timeEach(CALLS, 500, (i) => {
      sink += index.matchPrefix(queries[(i * 7919) % queries.length]!).size;
    }),
  );

  const workers: RouterWorker[] = Array.from({ length: config.workers }, (_, w) => ({
    workerId: `worker-${w}`,
    kvTotalBlocks: 16_384,
    maxNumBatchedTokens: 8192,
    blockSize: BLOCK_SIZE,
  }));
  const load = createWorkerLoad({ replicaId: "bench" });
  const random = rng(3);
  // As in bench/l2-route.ts: 16 requests in flight per worker and a fresh observation of each.
  for (const { workerId } of workers) {
    for (let r = 0; r < 16; r++) {
      load.route(
        {
          requestId: `bg-${workerId}-${r}`,
          workerId,
          blockHashes: prefixQueries[Math.floor(random() * prefixQueries.length)]!,
          blocks: BLOCKS_PER_REQUEST,
          prefillTokens: r < 2 ? 4096 : 0,
          overlapBlocks: 0,
        },
        0,
      );
    }
    load.observe(workerId, {
      kvUsedBlocks: 4000 + Math.floor(random() * 4000),
      kvTotalBlocks: 16_384,
      pendingPrefillTokens: Math.floor(random() * 8192),
      waiting: 2,
      running: 16,
      prefillTokensPerS: 20_000,
      kvBlocksReleasedPerS: 400,
      observedAtMs: 0,
    });
  }
  const l2 = createL2Router({
    index,
    load,
    policy: POLICY,
    options: routerDecisionOptionsWithDefaults(),
    random: rng(5),
  });
  let nowMs = 1;
  let routed = 0;
  let calls = 0;
  const routeRuns = [0, 1, 2].map((run) =>
    timeEach(CALLS, 500, (i) => {
      const requestId = `r${run}-${i}`;
      const result = l2.route(
        {
          requestId,
          requestClass: "standard",
          promptTokens: BLOCKS_PER_REQUEST * BLOCK_SIZE,
          blockHashes: queries[(i * 7919) % queries.length]!,
          arrivalMs: nowMs,
        },
        workers,
        nowMs,
      );
      calls++;
      if (result.kind === "routed") routed++;
      if (result.kind !== "rejected") l2.release(requestId, nowMs);
      nowMs += 0.001;
    }),
  );
  const medianRun = (runs: number[][]) =>
    runs.map((r) => [percentile(r, 0.5), percentile(r, 0.99)] as const).sort((a, b) => a[1] - b[1])[1]!;
  const [matchP50, matchP99] = medianRun(matchRuns);
  const [routeP50, routeP99] = medianRun(routeRuns);
  if (sink < 0) throw new Error("unreachable");
  return {
    ...config,
    entries: stats.workerBlocks,
    distinctBlocks: stats.blocks,
    buildBlocksPerS: stats.workerBlocks / seconds,
    indexBytes: index.memoryBytes(),
    heapBytes,
    matchP50,
    matchP99,
    routeP50,
    routeP99,
    routed: routed / calls,
  };
}

// ─── A small log-x SVG line plot (the simulator's plotter draws linear sweeps only) ─────────────

interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  points: [number, number][];
}

function logPlot(title: string, xLabel: string, yLabel: string, xs: number[], series: Series[]): string {
  const W = 640;
  const H = 380;
  const m = { left: 70, right: 170, top: 40, bottom: 50 };
  const w = W - m.left - m.right;
  const h = H - m.top - m.bottom;
  const lx0 = Math.log10(Math.min(...xs));
  const lx1 = Math.log10(Math.max(...xs));
  // Log y too: p50 and p99 differ by up to two orders of magnitude, and a slope reads as growth order.
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((y) => y > 0);
  const ly0 = Math.floor(Math.log10(Math.min(...ys)));
  const ly1 = Math.max(ly0 + 1, Math.ceil(Math.log10(Math.max(...ys))));
  const px = (x: number) => m.left + ((Math.log10(x) - lx0) / (lx1 - lx0)) * w;
  const py = (y: number) => m.top + h - ((Math.log10(Math.max(y, 10 ** ly0)) - ly0) / (ly1 - ly0)) * h;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${m.left + w / 2}" y="22" text-anchor="middle" font-weight="bold">${title}</text>`,
  ];
  for (const x of xs) {
    out.push(
      `<line x1="${px(x)}" y1="${m.top}" x2="${px(x)}" y2="${m.top + h}" stroke="#eee"/>`,
      `<text x="${px(x)}" y="${m.top + h + 18}" text-anchor="middle">${x >= 1e6 ? `${x / 1e6}M` : x >= 1e4 ? `${x / 1e3}k` : x}</text>`,
    );
  }
  for (let k = ly0; k <= ly1; k++) {
    const y = 10 ** k;
    out.push(
      `<line x1="${m.left}" y1="${py(y)}" x2="${m.left + w}" y2="${py(y)}" stroke="#eee"/>`,
      `<text x="${m.left - 8}" y="${py(y) + 4}" text-anchor="end">${y >= 1 ? y : y.toPrecision(1)}</text>`,
    );
  }
  out.push(
    `<line x1="${m.left}" y1="${m.top + h}" x2="${m.left + w}" y2="${m.top + h}" stroke="#000"/>`,
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + h}" stroke="#000"/>`,
    `<text x="${m.left + w / 2}" y="${H - 10}" text-anchor="middle">${xLabel} (log scale)</text>`,
    `<text x="18" y="${m.top + h / 2}" text-anchor="middle" transform="rotate(-90 18 ${m.top + h / 2})">${yLabel} (log scale)</text>`,
  );
  series.forEach((s, k) => {
    const d = s.points.map(([x, y], i) => `${i === 0 ? "M" : "L"}${px(x).toFixed(1)},${py(y).toFixed(1)}`);
    const dash = s.dashed ? ' stroke-dasharray="5 4"' : "";
    out.push(`<path d="${d.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    for (const [x, y] of s.points) {
      out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
    }
    const ly = m.top + 10 + k * 18;
    out.push(
      `<line x1="${W - m.right + 12}" y1="${ly}" x2="${W - m.right + 36}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`,
      `<text x="${W - m.right + 42}" y="${ly + 4}">${s.name}</text>`,
    );
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

function latencySeries(rows: Row[], x: (r: Row) => number): Series[] {
  return [
    { name: "route p50", color: "#d62728", points: rows.map((r) => [x(r), r.routeP50]) },
    { name: "route p99", color: "#d62728", dashed: true, points: rows.map((r) => [x(r), r.routeP99]) },
    { name: "matchPrefix p50", color: "#1f77b4", points: rows.map((r) => [x(r), r.matchP50]) },
    {
      name: "matchPrefix p99",
      color: "#1f77b4",
      dashed: true,
      points: rows.map((r) => [x(r), r.matchP99]),
    },
  ];
}

// ─── Run ─────────────────────────────────────────────────────────────────────────────────────────

const workerSweep: Config[] = [8, 32, 128, 512, 1024].map((workers) => ({ workers, entries: 1 << 20 }));
const entrySweep: Config[] = [10_000, 100_000, 1 << 20, ...(QUICK ? [] : [10_000_000])].map((entries) => ({
  workers: 128,
  entries,
}));
const corner: Config[] = QUICK ? [] : [{ workers: 1024, entries: 10_000_000 }];

const results = new Map<string, Row>();
const key = (c: Config) => `${c.workers}/${c.entries}`;
for (const config of [...workerSweep, ...entrySweep, ...corner]) {
  if (results.has(key(config))) continue;
  const t0 = Date.now();
  console.log(`${config.workers} workers, ${config.entries} entries …`);
  const row = measure(config);
  results.set(key(config), row);
  console.log(
    `  match p50 ${row.matchP50.toFixed(1)} / p99 ${row.matchP99.toFixed(1)} µs, route p50 ${row.routeP50.toFixed(1)} / p99 ${row.routeP99.toFixed(1)} µs, ` +
      `index ${(row.indexBytes / 2 ** 20).toFixed(1)} MiB, ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
}
const floor = noiseFloor();

const mib = (b: number) => (b / 2 ** 20).toFixed(b < 2 ** 20 ? 2 : 0);
const us = (v: number) => v.toFixed(1);
const table = (rows: Row[]) => [
  "| workers | indexed entries | distinct blocks | `matchPrefix` p50 / p99 | route + release p50 / p99 | routed | index (typed arrays) | + heap | build |",
  "|---|---|---|---|---|---|---|---|---|",
  ...rows.map(
    (r) =>
      `| ${r.workers} | ${r.entries.toLocaleString("en-US")} | ${r.distinctBlocks.toLocaleString("en-US")} | ${us(r.matchP50)} / ${us(r.matchP99)} µs | ${us(r.routeP50)} / ${us(r.routeP99)} µs | ${(r.routed * 100).toFixed(0)} % | ${mib(r.indexBytes)} MiB | ${mib(Math.max(0, r.heapBytes))} MiB | ${(r.buildBlocksPerS / 1e6).toFixed(2)} M entries/s |`,
  ),
];
const byWorkers = workerSweep.map((c) => results.get(key(c))!);
const byEntries = entrySweep.map((c) => results.get(key(c))!);
const cornerRows = corner.map((c) => results.get(key(c))!);

writeFileSync(
  new URL("./scaling-router-workers.svg", import.meta.url),
  logPlot(
    "L2 router vs workers (1M indexed entries, 8k-token requests)",
    "workers",
    "µs per call",
    byWorkers.map((r) => r.workers),
    latencySeries(byWorkers, (r) => r.workers),
  ),
);
writeFileSync(
  new URL("./scaling-router-entries.svg", import.meta.url),
  logPlot(
    "L2 router vs indexed entries (128 workers, 8k-token requests)",
    "indexed (block, worker) entries",
    "µs per call",
    byEntries.map((r) => r.entries),
    latencySeries(byEntries, (r) => r.entries),
  ),
);

const ratio = (a: number, b: number) => (b / a).toFixed(1);
const first = byWorkers[0]!;
const last = byWorkers[byWorkers.length - 1]!;
const small = byEntries[0]!;
const big = byEntries[byEntries.length - 1]!;
const section = [
  "## L2 router scaling (`bench/scaling-router.ts`)",
  "",
  `Measured ${measuredAt(startedAt)} on ${machineDescription()}. Command: \`${COMMAND}\`` +
    (gc === undefined ? " (run without `--expose-gc`: heap figures include uncollected garbage)." : "."),
  `Each cell: median-p99 run of 3 × ${CALLS} calls, 50 % of prompts fully indexed on some worker (128-block walk),`,
  "50 % sharing only a system prefix; 16 requests in flight per worker with a fresh observation each.",
  `Noise floor in the same run (fixed ~${us(floor.p50)} µs loop timed the same way): p50 ${us(floor.p50)} µs, p99 ${us(floor.p99)} µs.`,
  "",
  "### Workers (1M indexed entries)",
  "",
  ...table(byWorkers),
  "",
  "![route and lookup vs workers](scaling-router-workers.svg)",
  "",
  "### Indexed entries (128 workers)",
  "",
  ...table(byEntries),
  "",
  "![route and lookup vs indexed entries](scaling-router-entries.svg)",
  ...(cornerRows.length > 0 ? ["", "### Corner: 1024 workers × 10M entries", "", ...table(cornerRows)] : []),
  "",
  "### Growth",
  "",
  `- \`matchPrefix\`: O(prompt blocks) hash probes, each ANDing ⌈workers / 32⌉ words: slowly growing in workers` +
    ` (×${ratio(first.matchP50, last.matchP50)} p50 from ${first.workers} to ${last.workers} workers here, with 128× the` +
    ` bitset words). The probe count does not depend on the index size; the time does, through cache and TLB` +
    ` misses once the table outgrows the caches (×${ratio(small.matchP50, big.matchP50)} p50 from` +
    ` ${small.entries.toLocaleString("en-US")} to ${big.entries.toLocaleString("en-US")} entries).`,
  `- Route + release: the lookup, plus O(workers) scoring (two reads by dense slot, resolved once per worker list, and a few dozen flops per worker),` +
    ` plus O(prompt blocks) reference counts on the chosen worker: linear in workers` +
    ` (×${ratio(first.routeP50, last.routeP50)} p50 from ${first.workers} to ${last.workers}), near flat in index size` +
    ` (×${ratio(small.routeP50, big.routeP50)}).`,
  "- Index memory: O(distinct blocks × slot size), one slot per distinct block at ≤ 50 % load (the table" +
    " doubles, so 25–50 % in practice). A slot is key (2 words) + count + one bit per worker, rounded up to" +
    " 4 words: 16 B up to 32 workers, 32 B up to 160, 144 B at 1024 — flat in workers at the issue's" +
    " 128-worker shape, then linear in them, because every block reserves a bit for every worker even when" +
    " one worker holds it. A sparse per-block worker list would be smaller past a few hundred workers.",
];
writeResultsSection("scaling-router", section.join("\n"));
console.log(section.join("\n"));
console.log("wrote the scaling-router section of bench/RESULTS.md and bench/scaling-router-*.svg");
