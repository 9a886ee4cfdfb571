// The evaluation report (issue 8 §2): every policy on every shared trace at 1×, 1.5×, 2× and 4× of measured
// capacity, with false rejections, Retry-After accuracy, wasted prefill and per-class results; tables and
// SVG plots in the `eval` section of bench/RESULTS.md. Methodology: docs/evaluation.md.
//
// Run:          npm run bench:report      (= node --conditions=sluice-src --import tsx bench/eval-report.ts)
// Flags:        --jobs N          child processes at a time, one per trace (default: 2)
//               --trace NAME      evaluate only this trace; the section is rebuilt from the stored results
//                                 of every trace evaluated so far ($TMPDIR/sluice-eval/<trace>.json)
//               --quick           first 15 min of each trace and 8 sampled rejections (a smoke run; the
//                                 section says so)
//               --report          only rebuild the section and plots from the stored results
// Internal:     --worker NAME --out FILE   evaluate one trace in this process and write its JSON
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { renderSweepSvg } from "@sluice/sim";
import { renderEvalSection } from "./eval-markdown-lib.js";
import { EVAL_NOTES } from "./eval-notes.js";
import { DEFAULT_EVAL_SETTINGS, type EvalSettings, evaluateTrace, type TraceEval } from "./eval-trace-lib.js";
import { machineDescription, measuredAt, writeResultsSection } from "./results-section.js";

const TRACES = ["mooncake_conversation.jsonl", "mooncake_synthetic.jsonl", "azure_code_2023.csv"];
const JSON_DIR = process.env.SLUICE_EVAL_DIR ?? join(tmpdir(), "sluice-eval");
const QUICK: Partial<EvalSettings> = { durationMs: 15 * 60_000, falseRejectionSample: 8 };
const stem = (trace: string) => basename(trace).replace(/\.[^.]+$/, "");
const jsonPath = (trace: string) => join(JSON_DIR, `${trace}.json`);
const plotFile = (t: TraceEval) => `eval-${stem(t.trace)}.svg`;

const { values } = parseArgs({
  options: {
    jobs: { type: "string" },
    trace: { type: "string" },
    quick: { type: "boolean" },
    report: { type: "boolean" },
    worker: { type: "string" },
    out: { type: "string" },
  },
  strict: true,
});

function fail(message: string): never {
  process.stderr.write(`eval-report: ${message}\n`);
  process.exit(2);
}

async function worker(trace: string, out: string): Promise<void> {
  const settings: EvalSettings = { ...DEFAULT_EVAL_SETTINGS, ...(values.quick ? QUICK : {}) };
  const prefix = `[${stem(trace)}]`;
  const result = await evaluateTrace(trace, settings, machineDescription(), (line) =>
    process.stderr.write(`${prefix} ${line}\n`),
  );
  writeFileSync(out, `${JSON.stringify(result)}\n`);
}

function runChild(trace: string): Promise<void> {
  const args = [
    "--conditions=sluice-src",
    "--import",
    "tsx",
    new URL(import.meta.url).pathname,
    "--worker",
    trace,
    "--out",
    jsonPath(trace),
    ...(values.quick ? ["--quick"] : []),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"] });
    child.on("error", reject);
    child.on("exit", (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${trace}: worker exited with ${signal ?? code}`)),
    );
  });
}

async function runAll(traces: readonly string[], jobs: number): Promise<void> {
  mkdirSync(JSON_DIR, { recursive: true });
  const queue = [...traces];
  const failures: string[] = [];
  const lane = async (): Promise<void> => {
    for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
      try {
        await runChild(t);
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, traces.length) }, lane));
  if (failures.length > 0) fail(`failed: ${failures.join("; ")}`);
}

function report(command: string, wallS: number | undefined): void {
  const evals = TRACES.filter((t) => existsSync(jsonPath(t))).map(
    (t) => JSON.parse(readFileSync(jsonPath(t), "utf8")) as TraceEval,
  );
  if (evals.length === 0) fail(`no stored results in ${JSON_DIR}; run without --report first`);
  for (const t of evals) {
    const svg = renderSweepSvg(t.rows, {
      title: t.trace,
      ...(t.capacity !== null ? { capacityGoodputRps: t.capacity.goodputRps } : {}),
    });
    writeFileSync(new URL(`./${plotFile(t)}`, import.meta.url), svg);
  }
  const markdown = renderEvalSection(
    evals,
    { command, wallS, machine: machineDescription(), measuredAt: measuredAt(), plotFile },
    EVAL_NOTES,
  );
  writeResultsSection("eval", markdown);
  process.stderr.write(`eval-report: wrote the eval section of bench/RESULTS.md (${evals.length} traces)\n`);
}

if (values.worker !== undefined) {
  if (values.out === undefined) fail("--worker needs --out FILE");
  if (!TRACES.includes(values.worker)) fail(`unknown trace ${values.worker}; known: ${TRACES.join(", ")}`);
  await worker(values.worker, values.out);
} else {
  const jobs = values.jobs === undefined ? 2 : Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) fail(`--jobs must be an integer ≥ 1, got "${values.jobs}"`);
  if (values.trace !== undefined && !TRACES.includes(values.trace)) {
    fail(`unknown trace ${values.trace}; known: ${TRACES.join(", ")}`);
  }
  const command = `npm run bench:report${values.quick ? " -- --quick" : ""}`;
  const started = performance.now();
  if (values.report !== true) await runAll(values.trace !== undefined ? [values.trace] : TRACES, jobs);
  report(command, values.report === true ? undefined : Math.round((performance.now() - started) / 1000));
}
