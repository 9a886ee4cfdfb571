// Real-time replay vs the simulator on the same trace slice (issue 8 item 3). Starts `sluice up` and replays
// the slice against it with `sluice replay`'s library, runs `sluice sim` on the same slice with the same
// engine count, engine model and the matching policy, and prints both reports, the client's own lateness
// and the goodput difference; writes section `replay-vs-sim-<stack>` of bench/RESULTS.md.
//   --stack engines: N bare mock engines at a speed-up, no admission anywhere; simulator policy `none`.
//   --stack full:    the whole stack — ingress (L1), router (L2), aggregator, one engine-scheduler (L3)
//                    per mock engine — replayed through the ingress; simulator policy `sluice-l1l2l3`.
//                    Runs at speed-up 1: the live levels decide in wall-clock time against objectives
//                    in wall-clock milliseconds, so any speed-up would loosen them relative to the sim.
//
// Run (after `npx tsc -b`, which builds the `sluice up` it starts):
//   node --conditions=sluice-src --import tsx bench/replay-vs-sim.ts \
//     [--stack engines|full] [--trace FILE] [--engines 2] [--speedup 5] [--duration 120s] [--rate-scale 0.6]
//     [--seed 1] [--max-client-lag-ms 100]  (client-bottleneck threshold, engine ms, as `sluice replay`'s)
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { DEFAULT_REPLAY_OPTIONS, runReplay, summarizeReplay } from "@sluice/replay";
import { formatReportTable, parseDurationMs, readTraceFile, type SimJsonRow, simCommand } from "@sluice/sim";
import { machineDescription, measuredAt, writeResultsSection } from "./results-section.js";
import { TRACES_DIR } from "./sim-common.js";

const { values } = parseArgs({
  options: {
    stack: { type: "string", default: "engines" },
    trace: { type: "string", default: join(TRACES_DIR, "mooncake_synthetic.jsonl") },
    engines: { type: "string", default: "2" },
    speedup: { type: "string", default: "5" },
    duration: { type: "string", default: "120s" },
    "rate-scale": { type: "string", default: "0.6" },
    seed: { type: "string", default: "1" },
    "max-client-lag-ms": { type: "string", default: String(DEFAULT_REPLAY_OPTIONS.maxClientLagMs) },
  },
});
if (values.stack !== "engines" && values.stack !== "full")
  throw new Error(`--stack must be engines or full, got ${values.stack}`);
const fullStack = values.stack === "full";
if (fullStack && values.speedup !== "1" && !process.argv.includes("--speedup")) values.speedup = "1"; // see the header: the live levels' objectives are wall-clock
const simPolicy = fullStack ? "sluice-l1l2l3" : "none";
const tracePath = values.trace;
const engines = Number(values.engines);
const speedup = Number(values.speedup);
const rateScale = Number(values["rate-scale"]);
const seed = Number(values.seed);
const durationMs = parseDurationMs(values.duration);
const maxClientLagMs = Number(values["max-client-lag-ms"]);
for (const [name, v] of Object.entries({ engines, speedup, rateScale, seed, maxClientLagMs })) {
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a non-negative number`);
}
const CLI = new URL("../packages/cli/dist/main.js", import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npx tsc -b first`);

/** Mock engines default to vLLM's 32 768-token context; the simulator has no such limit and the Mooncake
 * traces have prompts up to ~190 k tokens, so the engines get a limit no trace request reaches. */
const MAX_MODEL_LEN = 1_048_576;

async function startStack(stateFile: string): Promise<{ child: ChildProcess; targets: URL[] }> {
  const args = [
    CLI,
    "up",
    "--no-demo",
    "--state-file",
    stateFile,
    "--engines",
    String(engines),
    "--speedup",
    String(speedup),
    ...(fullStack
      ? ["--engine-schedulers", "--routers", "1", "--aggregators", "1", "--ingresses", "1"]
      : ["--no-engine-schedulers", "--routers", "0", "--aggregators", "0", "--ingresses", "0"]),
    "--log-level",
    "warn",
  ];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, SLUICE_MAX_MODEL_LEN: String(MAX_MODEL_LEN) },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const deadline = Date.now() + 120_000;
  while (!existsSync(stateFile)) {
    if (child.exitCode !== null) throw new Error(`sluice up exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error("sluice up did not write its state file within 120 s");
    await sleep(200);
  }
  const state = JSON.parse(readFileSync(stateFile, "utf8")) as {
    ingress: { url: string }[];
    engine_scheduler: { url: string }[];
    engine: { url: string }[];
  };
  // Through the ingress when the build has one; otherwise the schedulers, otherwise the engines.
  const urls =
    state.ingress.length > 0
      ? state.ingress
      : state.engine_scheduler.length > 0
        ? state.engine_scheduler
        : state.engine;
  return { child, targets: urls.map((u) => new URL(u.url)) };
}

async function stopStack(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(30_000)]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

async function simulate(): Promise<SimJsonRow> {
  let stdout = "";
  const argv = [
    "--trace",
    tracePath,
    "--engines",
    String(engines),
    "--duration",
    `${durationMs}ms`,
    "--rate-scale",
    String(rateScale),
    "--seed",
    String(seed),
    "--policy",
    simPolicy,
    "--json",
  ];
  const code = await simCommand.run(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: process.stderr,
    env: process.env,
  });
  if (code !== 0) throw new Error(`sluice sim ${argv.join(" ")} exited ${code}`);
  const [row] = JSON.parse(stdout) as SimJsonRow[];
  if (row === undefined) throw new Error("sluice sim printed no row");
  return row;
}

const pct = (a: number, b: number): string => `${(((a - b) / b) * 100).toFixed(1)}%`;

const dir = mkdtempSync(join(tmpdir(), "sluice-replay-bench-"));
const stateFile = join(dir, "state.json");
const trace = await readTraceFile(tracePath);
process.stderr.write(`starting sluice up: ${engines} mock engines at --speedup ${speedup} ...\n`);
const { child, targets } = await startStack(stateFile);
let replayReport: ReturnType<typeof summarizeReplay>;
const wallStart = performance.now();
try {
  process.stderr.write(`replaying ${basename(tracePath)} against ${targets.map((t) => t.href).join(", ")}\n`);
  const measurements = await runReplay({
    trace,
    targets,
    rateScale,
    durationMs,
    seed,
    speedupFactor: speedup,
    maxClientLagMs,
    onProgress: (p) =>
      process.stderr.write(
        `  trace ${(p.traceMs / 1000).toFixed(0)} s: sent ${p.sent}/${p.total}, in flight ${p.inFlight}, ` +
          `done ${p.completed}, rejected ${p.rejected}, failed ${p.failed}, send lag ${p.lastLagMs.toFixed(1)} ms\n`,
      ),
  });
  replayReport = summarizeReplay(measurements);
} finally {
  await stopStack(child);
  rmSync(dir, { recursive: true, force: true });
}
const replayWallS = (performance.now() - wallStart) / 1000;
process.stderr.write("running sluice sim on the same slice ...\n");
const simRow = await simulate();
const { row, client } = replayReport;
const replayGoodput = row.goodput_rps as number | null;
const diff =
  replayGoodput === null
    ? "not computed: the client was the bottleneck (see above)"
    : `${pct(replayGoodput, simRow.goodput_rps)} (replay ${replayGoodput} vs sim ${simRow.goodput_rps} req/s; target within ±10%)`;
const tableRow = { ...row, goodput_rps: replayGoodput ?? Number.NaN };
const command =
  `node --conditions=sluice-src --import tsx bench/replay-vs-sim.ts --stack ${values.stack} --trace ${tracePath} --engines ${engines} ` +
  `--speedup ${speedup} --duration ${values.duration} --rate-scale ${rateScale} --seed ${seed} --max-client-lag-ms ${maxClientLagMs}`;
const stackText = fullStack
  ? `Stack: \`sluice up --no-demo --engines ${engines} --speedup ${speedup} --engine-schedulers --routers 1 --aggregators 1 --ingresses 1\`
(mock engines with the simulator's default engine model, each behind an engine-scheduler; router; aggregator; one
ingress; every level on its default policy), replayed through the ingress; \`SLUICE_MAX_MODEL_LEN=${MAX_MODEL_LEN}\` so no
prompt is refused for length. The simulator runs \`--policy sluice-l1l2l3\`: the same core decisions with the same default
policy, an instantaneous network and a ${"10 ms"} load-snapshot delay.`
  : `Stack: \`sluice up --no-demo --engines ${engines} --speedup ${speedup} --no-engine-schedulers --routers 0 --aggregators 0 --ingresses 0\`
(mock engines with the simulator's default engine model; \`SLUICE_MAX_MODEL_LEN=${MAX_MODEL_LEN}\` so no prompt is refused
for length, as the simulator refuses none). No level enforces admission in this stack, so the simulator runs \`--policy none\`.
The replay client spreads requests over the engines by its own least-in-flight count, the simulator by least
believed load (snapshot + routed): both are least-loaded placement without prefix awareness.`;
const markdown = `### Real-time replay vs simulator, ${fullStack ? "full stack" : "bare engines"} (\`bench/replay-vs-sim.ts --stack ${values.stack}\`)

Command: \`${command}\` — ${measuredAt()}, ${machineDescription()}; replay wall time ${replayWallS.toFixed(0)} s.

${stackText}

Time: engine time = wall time × ${speedup}. A request due at trace time t (ms, after \`--rate-scale\`) is sent at wall
time t / ${speedup}; every client-measured duration (TTFT from the due time, token gaps, mean ITL) is multiplied by
${speedup}; goodput is per second of the scaled trace window (${row.window_s} s of engine time), exactly as the simulator counts it.

\`\`\`
${formatReportTable([simRow, tableRow]).trimEnd()}
\`\`\`

Client: send lag p50 / p99 / max ${client.send_lag_p50_ms} / ${client.send_lag_p99_ms} / ${client.send_lag_max_ms} ms,
event-loop delay p99 ${client.event_loop_delay_p99_ms} ms (engine ms; bottleneck threshold ${replayReport.client.client_bottleneck ? "EXCEEDED" : "not reached"}),
output-length mismatches ${client.output_length_mismatches}, failures ${JSON.stringify(client.failures)}.
${client.verdict ?? ""}

**Goodput difference (replay − sim) / sim: ${diff}.** SLO attainment of admitted: replay
${(row.slo_attainment_admitted * 100).toFixed(1)}% vs sim ${(simRow.slo_attainment_admitted * 100).toFixed(1)}%;
rejected: replay ${((row.rejected_fraction ?? 0) * 100).toFixed(1)}% vs sim ${((simRow.rejected_fraction ?? 0) * 100).toFixed(1)}%;
TTFT p50 ${pct(row.ttft_p50_ms, simRow.ttft_p50_ms)}, p99 ${pct(row.ttft_p99_ms, simRow.ttft_p99_ms)};
ITL p50 ${pct(row.itl_p50_ms, simRow.itl_p50_ms)}.
`;
process.stdout.write(markdown);
writeResultsSection(`replay-vs-sim-${values.stack}`, markdown);
