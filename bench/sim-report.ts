// Simulator report on the three shared traces: capacity (largest rate scale at which `none` attains ≥ 99 %
// SLO), then `none` and `static` at 0.5–4× capacity, a plot per trace, the simulator speed benchmark, and the
// feasibility evidence for the default class objectives. Writes the "Simulator" section of bench/RESULTS.md.
// Run: node --conditions=sluice-src --import tsx bench/sim-report.ts
import { basename } from "node:path";
import { DYNAMO_MOCKER_STEP_COEFFICIENTS, dynamoMockerStepTime } from "@sluice/core";
import {
  DEFAULT_CLASS_OBJECTIVES,
  expandBlockHashes,
  readTraceFile,
  type SimJsonRow,
  simCommand,
  type Trace,
} from "@sluice/sim";
import { machine, TRACES_DIR, writeSimSection } from "./sim-common.js";
import { measureSimSpeed } from "./sim-speed-lib.js";

const TRACES = ["mooncake_conversation.jsonl", "mooncake_synthetic.jsonl", "azure_code_2023.csv"];
const SWEEP = "0.5,1,1.5,2,3,4";
const TABLE_MULTIPLIERS = [1, 2, 4];

async function runCommand(argv: string[]): Promise<{ rows: SimJsonRow[]; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await simCommand.run(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: {
      write: (s: string) => {
        if (!s.startsWith("\r")) stderr += s;
        process.stderr.write(s);
      },
      isTTY: process.stderr.isTTY,
    },
    env: process.env,
  });
  if (code !== 0) throw new Error(`sluice sim ${argv.join(" ")} exited ${code}: ${stderr}`);
  return { rows: JSON.parse(stdout) as SimJsonRow[], stderr };
}

/** Unloaded, cold-cache TTFT of a prompt alone on a default engine: 8192-token chunks, Dynamo step times. */
function isolatedTtftMs(promptTokens: number): number {
  const stepTime = dynamoMockerStepTime();
  let ms = 0;
  for (let done = 0; done < promptTokens; ) {
    const chunk = Math.min(8192, promptTokens - done);
    done += chunk;
    const last = done >= promptTokens;
    ms += stepTime.stepMs({
      prefillTokens: chunk,
      decodeSeqs: 0,
      outputSeqs: last ? 1 : 0,
      kvUsage: Math.ceil(done / 64) / 16384,
    });
  }
  return ms;
}

/**
 * Prefix hit rate of ONE LRU cache of `capacityBlocks` 64-token blocks fed the prompts in arrival order with
 * no concurrency (Infinity = the README's unlimited cache). Separates cache capacity from routing effects.
 */
function lruHitRate(trace: Trace, capacityBlocks: number): number {
  const lru = new Map<number, true>();
  let hits = 0;
  let total = 0;
  for (const r of trace.records) {
    const hashes = expandBlockHashes(r.hashIds ?? [], r.promptTokens, {
      traceBlockTokens: 512,
      engineBlockTokens: 64,
    });
    let prefix = true;
    for (const h of hashes) {
      total++;
      if (prefix && lru.has(h)) {
        hits++;
        lru.delete(h);
      } else prefix = false;
      lru.set(h, true);
      if (lru.size > capacityBlocks) lru.delete(lru.keys().next().value as number);
    }
  }
  return total > 0 ? hits / total : 0;
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const f = (x: number | null, d = 0): string => (x === null ? "–" : x.toFixed(d));

const started = new Date();
const sections: string[] = [];
const evidence: string[] = [];
const lightLoad: string[] = [];
const cacheRows: string[] = [];
for (const name of TRACES) {
  const path = `${TRACES_DIR}/${name}`;
  const stem = basename(name).replace(/\.[^.]+$/, "");
  const plot = new URL(`./sim-${stem}.svg`, import.meta.url).pathname;
  const argv = [
    "--trace",
    path,
    "--find-capacity",
    "--static-limit",
    "auto",
    "--sweep",
    SWEEP,
    "--plot",
    plot,
    "--json",
  ];
  const t0 = performance.now();
  const { rows, stderr } = await runCommand(argv);
  const wallS = (performance.now() - t0) / 1000;
  const capacityLine = stderr.split("\n").find((l) => l.startsWith("capacity:")) ?? "capacity: (no line)";
  const first = rows[0] as SimJsonRow;
  const capScale = first.capacity_rate_scale;
  const lines = [
    `### ${name}`,
    "",
    `Command: \`sluice sim ${argv
      .join(" ")
      .replace(TRACES_DIR, "../shared/traces")
      .replace(
        plot,
        `bench/${basename(plot)}`,
      )}\` (wall ${wallS.toFixed(0)} s for the capacity search and ${rows.length} runs)`,
    "",
    `${capacityLine.replace(/^capacity: /, "**Capacity:** ")}`,
    "",
    `Static limit (\`auto\` = 1 + p99 of the in-flight count arrivals saw under \`none\` at capacity): ${rows.find((r) => r.policy === "static")?.static_limit ?? "–"}`,
    "",
    "| × capacity | rate scale | policy | offered rps | completed rps | goodput rps | goodput / max | SLO attainment (admitted) | rejected | TTFT p50 / p90 / p99 ms | ITL p50 / p90 / p99 ms | wasted prefill tokens | preemptions | prefix-cache hit rate |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const ratio = capScale ? r.rate_scale / capScale : Number.NaN;
    const mult = TABLE_MULTIPLIERS.find((m) => Math.abs(m - ratio) < 1e-4);
    if (mult === undefined) continue;
    lines.push(
      `| ${mult}× | ${r.rate_scale.toPrecision(4)} | ${r.policy} | ${r.offered_rps.toFixed(2)} | ${r.completed_rps.toFixed(2)} | ${r.goodput_rps.toFixed(2)} | ${r.goodput_vs_capacity === null ? "–" : pct(r.goodput_vs_capacity)} | ${pct(r.slo_attainment_admitted)} | ${pct(r.rejected_fraction)} | ${f(r.ttft_p50_ms)} / ${f(r.ttft_p90_ms)} / ${f(r.ttft_p99_ms)} | ${f(r.itl_p50_ms, 1)} / ${f(r.itl_p90_ms, 1)} / ${f(r.itl_p99_ms, 1)} | ${r.wasted_prefill_tokens} | ${r.preemptions} | ${pct(r.prefix_cache_hit_rate)} |`,
    );
  }
  lines.push("", `![${name} sweep](${basename(plot)})`, "");
  sections.push(lines.join("\n"));

  const lightArgv = [
    "--trace",
    path,
    "--find-capacity",
    "--capacity-reference",
    "light-load",
    "--policy",
    "none",
    "--json",
  ];
  const light = await runCommand(lightArgv);
  const lightRow = light.rows[0] as SimJsonRow;
  lightLoad.push(
    `| ${name} | ${capScale === null ? "not found" : capScale.toPrecision(4)} | ${(light.stderr.match(/attains ([\d.]+%) at rate scale ([\d.]+)/) ?? ["", "?", "?"]).slice(1).join(" at ")} | ${lightRow.capacity_rate_scale === null ? "not found" : lightRow.capacity_rate_scale.toPrecision(4)} | ${lightRow.capacity_goodput_rps ?? "–"} | ${lightRow.ttft_p99_ms} | ${lightRow.itl_p99_ms} |`,
  );
  const trace = await readTraceFile(path);
  if (trace.format === "mooncake") {
    const measured = rows.find((r) => r.policy === "none")?.prefix_cache_hit_rate ?? 0;
    cacheRows.push(
      `| ${name} | ${pct(lruHitRate(trace, Number.POSITIVE_INFINITY))} | ${pct(lruHitRate(trace, 8 * 16384))} | ${pct(lruHitRate(trace, 16384))} | ${pct(measured)} |`,
    );
  }
  const std = DEFAULT_CLASS_OBJECTIVES.standard.ttftObjectiveMs;
  const crit = DEFAULT_CLASS_OBJECTIVES.critical.ttftObjectiveMs;
  const isolated = trace.records.map((r) => isolatedTtftMs(r.promptTokens));
  const overStd = isolated.filter((t) => t > std).length;
  const overCrit = isolated.filter((t) => t > crit).length;
  evidence.push(
    `| ${name} | ${trace.records.length} | ${overStd} (${pct(overStd / trace.records.length)}) | ${overCrit} (${pct(overCrit / trace.records.length)}) | ${Math.max(...trace.records.map((r) => r.promptTokens))} | ${Math.max(...isolated).toFixed(0)} |`,
  );
}

const speed = await measureSimSpeed({
  tracePath: `${TRACES_DIR}/mooncake_conversation.jsonl`,
  repeat: 3,
  engines: 8,
});
const c = DYNAMO_MOCKER_STEP_COEFFICIENTS;
/** Smallest prompt (to 100 tokens) whose isolated TTFT exceeds `objectiveMs`. */
function feasibilityLimitTokens(objectiveMs: number): number {
  let tokens = 100;
  while (isolatedTtftMs(tokens) <= objectiveMs) tokens += 100;
  return tokens;
}
const stdLimit = feasibilityLimitTokens(DEFAULT_CLASS_OBJECTIVES.standard.ttftObjectiveMs);
const critLimit = feasibilityLimitTokens(DEFAULT_CLASS_OBJECTIVES.critical.ttftObjectiveMs);
const fullChunkMs = isolatedTtftMs(8192);
const md = `
## Simulator (\`sluice sim\`)

Measured ${started.toISOString().slice(0, 10)} on ${machine()} (2 cores, shared with other work while measuring).
Defaults unless stated: 8 engines, Dynamo mocker step model (prefill_ms = ${c.prefillQuadraticMsPerToken2}·T² + ${c.prefillLinearMsPerToken}·T + ${c.prefillConstantMs}, decode_ms = max(1, ${c.decodeQuadraticMs}·u² + ${c.decodeLinearMs}·u + ${c.decodeConstantMs})),
16384 × 64-token KV blocks, max_num_seqs 256, max_num_batched_tokens 8192, watermark 0.01, load-snapshot delay 10 ms,
dispatch delay 0, seed 1, all requests class \`standard\` (TTFT 2 s, mean ITL 100 ms). Requests sharing a recorded
timestamp are spread uniformly (seeded jitter) over up to 3 s — the Mooncake conversation trace's 3 s buckets —
instead of replayed as micro-bursts. Mooncake \`hash_ids\` are expanded to chained 64-token block hashes
(8 engine blocks per 512-token trace block), so prefix sharing is reproduced; Azure prompts are unique.
Rate scale = arrival-time compression factor of the trace; "× capacity" multiplies the capacity's rate scale.

### Speed (\`bench/sim-speed.ts\`)

Command: \`node --conditions=sluice-src --import tsx bench/sim-speed.ts\` — one hour of
\`mooncake_conversation.jsonl\` (${speed.requests} requests, ${speed.virtual_s} s of trace) on ${speed.engines} engines, policy \`none\`, rate scale 1:
wall ${speed.wall_ms_runs.map((w) => `${(w / 1000).toFixed(1)} s`).join(", ")} (median ${(speed.wall_ms_median / 1000).toFixed(1)} s) →
**${speed.speedup_median}× faster than real time** (target ≥ 200×).

### Capacity and policies

Command prefix for every row: \`node --conditions=sluice-src --import tsx bench/sim-report.ts\` runs exactly the
\`sluice sim\` command lines shown. Goodput = requests meeting both objectives per second of the (scaled) trace
window; "goodput / max" divides by the goodput of \`none\` at capacity. Wasted prefill = prompt tokens of admitted
requests that missed an objective (an upper bound: the engine model does not report per-request cache hits).

${sections.join("\n")}

### Are the default objectives feasible on this engine model?

A prompt alone on an idle engine with a cold cache needs ⌈T/8192⌉ prefill steps; with the Dynamo fit one full
8192-token step (with the first-token decode term) costs ${fullChunkMs.toFixed(0)} ms, so a prompt of ${stdLimit} tokens or more
cannot meet the standard 2 s TTFT objective even unloaded (${critLimit} or more cannot meet critical's 1 s). Per trace (cold cache, no queueing; prefix-cache hits can
rescue some of these):

| trace | requests | isolated TTFT > 2 s (standard) | isolated TTFT > 1 s (critical) | longest prompt (tokens) | its isolated TTFT ms |
|---|---|---|---|---|---|
${evidence.join("\n")}

With the light-load reference (\`--capacity-reference light-load\`: capacity is where \`none\` still attains 99 % of
what it attains at 1/16 of the start scale) the capacity measures load instead of that tail:

| trace | capacity, absolute 99 % (rate scale) | \`none\` at light load | capacity, light-load reference (rate scale) | its goodput rps | TTFT p99 ms there | ITL p99 ms there |
|---|---|---|---|---|---|---|
${lightLoad.join("\n")}

Command per trace: \`sluice sim --trace FILE --find-capacity --capacity-reference light-load --policy none --json\`.

### Observations (from the tables above; runs are deterministic, so they reproduce exactly)

- **Conversation trace:** the absolute 99 % capacity sits at the trace's natural rate (rate scale ≈ 0.99) because
  ≈ 0.7 % of its requests cannot meet the 2 s TTFT even alone; \`none\` still attains 97.7 % at 4× that "capacity",
  hence goodput / max ≈ 394 %. The light-load reference puts the real knee near rate scale 3.1. The 99 % criterion
  of issue 3 is reported as specified, but on this trace it measures the infeasible tail, not load.
- **Static limit** (auto-sized to the p99 in-flight count at capacity): on the conversation trace it rejects
  16–53 % at 2–4× while improving attainment of admitted requests by at most a point, and delivers less goodput
  than \`none\`, because the misses there are long prompts, not concurrency. On the synthetic trace
  at 4×, where \`none\` collapses to 72.8 % attainment, the static limit keeps 98.3 % but serves 9.2 goodput rps to
  \`none\`'s 14.1: a count limit does not know which requests are expensive. That is the gap L1–L3 must close.
- **Engine model:** no preemptions in any run: 16384 × 64 tokens (1 Mi tokens of KV per engine) never fills on these
  traces, even with the 126 k / 191 k-token prompts, so KV never forces preemption; prefill compute is the
  bottleneck. Each 8192-token chunk makes a ≈ 170 ms step, and every decode that shares it sees that gap — hence
  per-token ITL p99 ≈ 180 ms once load is high, while the mean-ITL objective (100 ms) mostly holds.
- **Prefix-cache hits are far below the README's 36.6 % / 64 %, and that is mostly cache capacity, not a
  bug:** 1 Mi tokens per engine is small against these traces' working sets (12 k / 15 k-token prompts at several
  requests a second), so LRU evicts shared prefixes before they are reused. One LRU cache of 16384 × 64-token
  blocks fed the same prompts in order (no concurrency) hits exactly what a single simulated engine measures
  (15.29 % on the synthetic trace, 1 engine at rate scale 0.2 — checked). The 8-engine least-loaded runs hit
  about what ONE engine's cache would (or less): the router ignores prefixes, so each shared prefix is spread over
  8 caches. A prefix-aware router (L2) could approach the pooled 8 × 16384-block column:

| trace | unlimited cache, 64-token blocks (README: 36.6 % / 64 % at 512) | one LRU of 8 × 16384 blocks | one LRU of 16384 blocks | measured, 8 engines, least-loaded, \`none\` at 1× capacity |
|---|---|---|---|---|
${cacheRows.join("\n")}
- **Azure trace:** its arrivals are bursty (p99 in-flight ≈ 230 at capacity against a time-averaged ≈ 3), so the
  auto static limit is loose and behaves almost like \`none\`.

So on the Mooncake traces a small, load-independent share of requests misses the standard objective at any load:
\`none\`'s attainment at very light load stays just above 99 % on the conversation trace, which makes the 99 %
capacity criterion sensitive to that tail. The objectives were **not** changed (issue 3 §6 allows it only with
evidence); the numbers above are that evidence for whoever tunes them. \`--capacity-target\` changes the criterion.
`;
writeSimSection(md);
console.log(md);
