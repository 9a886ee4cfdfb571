// The Sluice levels against the baselines in `sluice sim` (issues 4–6, 8): on each shared trace, capacity is
// found with the light-load reference (see the sim section of RESULTS.md for why: on the Mooncake traces
// the absolute 99 % criterion measures the tail of requests no load can save, not load), then every policy
// runs at 2× and 4× that capacity. Writes the "sim-levels" section of bench/RESULTS.md.
//
// Run all:      node --conditions=sluice-src --import tsx bench/sim-levels.ts
// One trace:    … bench/sim-levels.ts --trace mooncake_synthetic.jsonl   (writes $TMPDIR/sluice-sim-levels/<trace>.json)
// Report only:  … bench/sim-levels.ts --report   (rebuilds the section from the per-trace JSON files)
// Per-trace runs can go in parallel processes; each trace's JSON keeps its command, machine and date.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type SimJsonRow, simCommand } from "@sluice/sim";
import { writeResultsSection } from "./results-section.js";
import { machine, TRACES_DIR } from "./sim-common.js";
import { SIM_LEVELS_NOTES } from "./sim-levels-notes.js";

const TRACES = ["mooncake_conversation.jsonl", "mooncake_synthetic.jsonl", "azure_code_2023.csv"];
const POLICIES = [
  "none",
  "static",
  "dynamo-busy",
  "dynamo-ema",
  "sluice-l1",
  "sluice-l1l2",
  "sluice-l3",
  "sluice-l1l2l3",
];
const MULTIPLIERS = "2,4";

interface TraceRun {
  trace: string;
  command: string;
  machine: string;
  date: string;
  wallS: number;
  capacity: string;
  rows: SimJsonRow[];
}

// Per-trace results live outside the repository: RESULTS.md is the record, these only join parallel runs.
const JSON_DIR = process.env.SIM_LEVELS_DIR ?? join(tmpdir(), "sluice-sim-levels");
const jsonPath = (trace: string) => join(JSON_DIR, `${trace}.json`);

function argvFor(trace: string): string[] {
  return [
    "--trace",
    join(TRACES_DIR, trace),
    "--find-capacity",
    "--capacity-reference",
    "light-load",
    "--static-limit",
    "auto",
    "--sweep",
    MULTIPLIERS,
    "--policy",
    POLICIES.join(","),
    "--json",
  ];
}

async function runTrace(trace: string): Promise<TraceRun> {
  const argv = argvFor(trace);
  let stdout = "";
  let capacity = "";
  const started = performance.now();
  const code = await simCommand.run(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: {
      write: (s: string) => {
        if (s.startsWith("capacity:")) capacity = s.trim();
        process.stderr.write(s);
      },
      isTTY: process.stderr.isTTY,
    },
    env: process.env,
  });
  if (code !== 0) throw new Error(`sluice sim ${argv.join(" ")} exited ${code}`);
  const run: TraceRun = {
    trace,
    command: `sluice sim ${argv.join(" ").replace(TRACES_DIR, "../shared/traces")}`,
    machine: machine(),
    date: new Date().toISOString(),
    wallS: Math.round((performance.now() - started) / 1000),
    capacity,
    rows: JSON.parse(stdout) as SimJsonRow[],
  };
  mkdirSync(JSON_DIR, { recursive: true });
  writeFileSync(jsonPath(trace), `${JSON.stringify(run, null, 2)}\n`);
  return run;
}

const pct = (v: number | null, digits = 1) => (v === null ? "-" : `${(v * 100).toFixed(digits)}%`);

function levelCell(r: SimJsonRow, level: string): string {
  const f = r.rejected_by_level[level] ?? 0;
  return f === 0 ? "–" : pct(f, 2);
}

function traceSection(run: TraceRun): string {
  const lines = [
    `### ${run.trace}`,
    "",
    `Command: \`${run.command}\` (wall ${run.wallS} s; ${run.date}; ${run.machine})`,
    "",
    `**${run.capacity.replace(/^capacity: /, "Capacity: ")}**`,
    "",
    `Static limit (\`auto\`): ${run.rows.find((r) => r.static_limit !== null)?.static_limit ?? "-"}. ` +
      `Max-sustainable goodput = goodput of \`none\` at capacity: ${run.rows[0]?.capacity_goodput_rps ?? "-"} req/s.`,
    "",
    "| × capacity | policy | goodput rps | goodput / max | goodput / offered | SLO attainment (admitted) | rejected | L1 | L2 | L3 | engine | reasons | TTFT p50 / p99 ms | prefix-cache hit rate |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  const base = run.rows[0]?.capacity_rate_scale ?? 1;
  for (const r of run.rows) {
    const reasons = Object.entries(r.rejected_by)
      .map(([k, f]) => `${k} ${pct(f, 2)}`)
      .join(", ");
    lines.push(
      `| ${Number((r.rate_scale / base).toFixed(2))}× | ${r.policy} | ${r.goodput_rps.toFixed(2)} | ` +
        `${pct(r.goodput_vs_capacity)} | ${pct(r.goodput_rps / r.offered_rps)} | ${pct(r.slo_attainment_admitted, 2)} | ${pct(r.rejected_fraction)} | ` +
        `${levelCell(r, "L1")} | ${levelCell(r, "L2")} | ${levelCell(r, "L3")} | ${levelCell(r, "engine")} | ` +
        `${reasons || "–"} | ${r.ttft_p50_ms ?? "-"} / ${r.ttft_p99_ms ?? "-"} | ${pct(r.prefix_cache_hit_rate)} |`,
    );
  }
  return lines.join("\n");
}

function report(notes: string): void {
  const runs = TRACES.filter((t) => existsSync(jsonPath(t))).map(
    (t) => JSON.parse(readFileSync(jsonPath(t), "utf8")) as TraceRun,
  );
  const header = [
    "## Sluice levels vs baselines in the simulator (`bench/sim-levels.ts`)",
    "",
    "Same simulator defaults as the sim section above (8 engines, Dynamo mocker step model, load-snapshot and",
    "KV-event delay 10 ms, all requests `standard`: TTFT 2 s, mean ITL 100 ms). Every `sluice-*` policy runs",
    "core's decision code with core's `DEFAULT_POLICY`; baselines as described in packages/sim/README.md.",
    "Capacity uses `--capacity-reference light-load` (99 % of what `none` attains at 1/16 load), because on",
    "the Mooncake traces the absolute 99 % capacity sits where the unsaveable tail is, not where load is.",
    "Columns L1/L2/L3/engine: fraction of all requests rejected at that level.",
    "",
    `Regenerate: \`node --conditions=sluice-src --import tsx bench/sim-levels.ts\` (or per trace with`,
    "`--trace NAME`, then `--report`).",
  ].join("\n");
  writeResultsSection("sim-levels", [header, ...runs.map(traceSection), notes].join("\n\n"));
}

const args = process.argv.slice(2);
const notes = SIM_LEVELS_NOTES;
if (args[0] === "--report") {
  report(notes);
} else {
  const only = args[0] === "--trace" ? args[1] : undefined;
  if (only !== undefined && !TRACES.includes(only)) {
    process.stderr.write(`unknown trace ${only}; known: ${TRACES.join(", ")}\n`);
    process.exit(2);
  }
  for (const trace of only === undefined ? TRACES : [only]) await runTrace(trace);
  report(notes);
}
