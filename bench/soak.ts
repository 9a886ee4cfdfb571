// Soak (issue 9 item 3): the full local stack (`sluice up`: NATS, etcd, mock engines behind
// engine-schedulers, router, aggregator, ingress) under sustained 2× overload with ~10 % client aborts for
// 30 minutes. Samples the RSS of every process (/proc/<pid>/status VmRSS), the event-loop delay of every
// Sluice process (prom-client's `nodejs_eventloop_lag_p99_seconds` on its /metrics) and the in-flight gauges,
// then stops the load and checks that every in-flight gauge returns to 0. Reports start / median / end RSS
// and event-loop delay per process and the RSS slope (MB/hour, least squares after the warm-up), draws
// bench/soak.svg (RSS over time per process) and writes the `soak` section of bench/RESULTS.md.
//
// Offered load: a closed-loop calibration first measures the stack's sustained completion rate (capacity,
// requests/s); the soak then offers `--overload` × capacity as Poisson arrivals of streaming chat
// completions, and aborts `--abort-fraction` of them at a random moment (queued, holding or mid-stream).
//
// Run (after `npx tsc -b`, which builds the `sluice up` it starts):
//   node --conditions=sluice-src --import tsx bench/soak.ts [--duration 30m] [--engines 2] [--speedup 1]
//     [--overload 2] [--abort-fraction 0.1] [--sample-every 15s] [--calibrate 30s] [--seed 1] [--no-results]
// Quick check: --duration 2m --calibrate 15s --sample-every 10s --no-results

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import { ClusterLoadSchema } from "@sluice/proto";
import { parseDurationMs } from "@sluice/runtime";
import { connect } from "nats";
import { machineDescription, measuredAt, writeResultsSection } from "./results-section.js";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "30m" },
    engines: { type: "string", default: "2" },
    speedup: { type: "string", default: "1" },
    overload: { type: "string", default: "2" },
    "abort-fraction": { type: "string", default: "0.1" },
    "sample-every": { type: "string", default: "15s" },
    calibrate: { type: "string", default: "30s" },
    "calibrate-concurrency": { type: "string", default: "256" },
    "max-rate": { type: "string", default: "300" },
    "max-pending": { type: "string", default: "3000" },
    seed: { type: "string", default: "1" },
    "drain-timeout": { type: "string", default: "90s" },
    "no-results": { type: "boolean", default: false },
    "keep-data": { type: "boolean", default: false },
    svg: { type: "string", default: new URL("./soak.svg", import.meta.url).pathname },
  },
});

function durationFlag(name: string, text: string): number {
  const ms = parseDurationMs(text);
  if (ms === undefined || ms <= 0)
    throw new Error(`--${name} must be a duration with a unit (90s, 2m), got "${text}"`);
  return ms;
}
const durationMs = durationFlag("duration", values.duration);
const sampleEveryMs = durationFlag("sample-every", values["sample-every"]);
const calibrateMs = durationFlag("calibrate", values.calibrate);
const drainTimeoutMs = durationFlag("drain-timeout", values["drain-timeout"]);
const engines = Number(values.engines);
const speedup = Number(values.speedup);
const overload = Number(values.overload);
const abortFraction = Number(values["abort-fraction"]);
const calibrateConcurrency = Number(values["calibrate-concurrency"]);
const maxRate = Number(values["max-rate"]);
const maxPending = Number(values["max-pending"]);
const seed = Number(values.seed);
for (const [name, v] of Object.entries({
  engines,
  speedup,
  overload,
  abortFraction,
  calibrateConcurrency,
  maxRate,
  maxPending,
})) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number, got ${v}`);
}
if (abortFraction >= 1) throw new Error("--abort-fraction must be below 1");
if (durationMs < 3 * sampleEveryMs) throw new Error("--duration must cover at least three samples");

const CLI = new URL("../packages/cli/dist/main.js", import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npx tsc -b first`);
const say = (line: string) =>
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

// ---- deterministic randomness (mulberry32), so two runs offer the same request sequence ----
function mulberry32(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = mulberry32(seed);

// ---- the stack ----
interface StackState {
  nats: string;
  ingress: { id: string; url: string; metrics: string }[];
  router: { id: string; metrics: string }[];
  engine_scheduler: { id: string; url: string; metrics: string }[];
  engine: { id: string; url: string; metrics: string }[];
  aggregator: { id: string; metrics: string }[];
}

interface Proc {
  name: string;
  pid: number;
  /** /metrics URL for Sluice processes; undefined for nats-server and etcd. */
  metrics?: string;
}

async function startStack(
  dataDir: string,
  stateFile: string,
): Promise<{ child: ChildProcess; state: StackState }> {
  const args = [
    CLI,
    "up",
    "--no-demo",
    "--state-file",
    stateFile,
    "--data-dir",
    dataDir,
    "--engines",
    String(engines),
    "--speedup",
    String(speedup),
    "--log-level",
    "warn",
    "--start-timeout",
    "120s",
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] });
  const deadline = Date.now() + 180_000;
  while (!existsSync(stateFile)) {
    if (child.exitCode !== null) throw new Error(`sluice up exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error("sluice up did not write its state file within 180 s");
    await sleep(250);
  }
  return { child, state: JSON.parse(readFileSync(stateFile, "utf8")) as StackState };
}

async function stopStack(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(45_000)]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

/** Every descendant of `root` with its command line: the stack's processes are `up`'s children. */
function descendants(root: number): { pid: number; cmdline: string[] }[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Field 4 (ppid) follows the parenthesised command, which may itself contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      // Exited while we looked.
    }
  }
  const out: { pid: number; cmdline: string[] }[] = [];
  const isDescendant = (pid: number): boolean => {
    for (let p = parentOf.get(pid); p !== undefined && p > 1; p = parentOf.get(p))
      if (p === root) return true;
    return false;
  };
  for (const pid of parentOf.keys()) {
    if (!isDescendant(pid)) continue;
    try {
      out.push({ pid, cmdline: readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean) });
    } catch {
      // Exited while we looked.
    }
  }
  return out;
}

function processesOf(upPid: number, state: StackState): Proc[] {
  const metricsById = new Map<string, string>();
  for (const list of [state.ingress, state.router, state.engine_scheduler, state.engine, state.aggregator]) {
    for (const p of list) metricsById.set(p.id, p.metrics);
  }
  const procs: Proc[] = [{ name: "sluice-up", pid: upPid }];
  for (const { pid, cmdline } of descendants(upPid)) {
    const exe = cmdline[0] ?? "";
    if (exe.endsWith("nats-server")) procs.push({ name: "nats-server", pid });
    else if (exe.endsWith("etcd")) procs.push({ name: "etcd", pid });
    else {
      const idAt = cmdline.indexOf("--id");
      const id = idAt >= 0 ? cmdline[idAt + 1] : undefined;
      if (id === undefined) continue;
      const metrics = metricsById.get(id);
      procs.push({ name: id, pid, ...(metrics ? { metrics } : {}) });
    }
  }
  return procs.sort((a, b) => a.name.localeCompare(b.name));
}

function rssMb(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/** Sums every sample of `name` (all label sets) whose labels include `labelFilter`. */
function metricSum(text: string, name: string, labelFilter = ""): number | undefined {
  let sum: number | undefined;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    if (labelFilter !== "" && !rest.includes(labelFilter)) continue;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

/** In-flight gauges per role: each must be 0 when the stack is idle. */
const INFLIGHT_GAUGES: readonly { name: string; label?: string }[] = [
  { name: "sluice_ingress_inflight_requests", label: 'scope="local"' },
  { name: "sluice_router_queue_depth" },
  { name: "sluice_engine_queue_depth" },
  { name: "sluice_engine_in_engine" },
  { name: "vllm:num_requests_running" },
  { name: "vllm:num_requests_waiting" },
];

/** The aggregator's predicted in-flight load (cluster.load), summed over models: must drain to 0 too. */
interface Predicted {
  pendingPrefillTokens: number;
  inflightRequests: number;
}
let lastPredicted: Predicted | undefined;

async function watchClusterLoad(natsUrl: string): Promise<() => Promise<void>> {
  const nc = await connect({ servers: natsUrl });
  nc.subscribe("sluice.v1.default.cluster.load", {
    callback: (err, msg) => {
      if (err !== null) return;
      try {
        const view = fromBinary(ClusterLoadSchema, msg.data);
        lastPredicted = {
          pendingPrefillTokens: view.models.reduce((a, m) => a + m.predictedPendingPrefillTokens, 0),
          inflightRequests: view.models.reduce((a, m) => a + m.predictedInflightRequests, 0),
        };
      } catch {
        // Not ours to judge here; the fuzz suite covers malformed messages.
      }
    },
  });
  return () => nc.close();
}

interface Sample {
  tSec: number;
  predicted?: Predicted;
  rssMb: Record<string, number>;
  eldP99Ms: Record<string, number>;
  inflight: Record<string, number>;
  /** `process gauge` → value, for the non-zero ones (diagnosis of a leak). */
  inflightDetail: Record<string, number>;
}

async function sample(procs: readonly Proc[], t0: number): Promise<Sample> {
  const s: Sample = {
    tSec: (performance.now() - t0) / 1000,
    rssMb: {},
    eldP99Ms: {},
    inflight: {},
    inflightDetail: {},
    ...(lastPredicted ? { predicted: { ...lastPredicted } } : {}),
  };
  await Promise.all(
    procs.map(async (p) => {
      const rss = rssMb(p.pid);
      if (rss !== undefined) s.rssMb[p.name] = rss;
      if (p.metrics === undefined) return;
      try {
        const text = await (await fetch(p.metrics, { signal: AbortSignal.timeout(5_000) })).text();
        const eld = metricSum(text, "nodejs_eventloop_lag_p99_seconds");
        if (eld !== undefined) s.eldP99Ms[p.name] = eld * 1000;
        let inflight: number | undefined;
        for (const g of INFLIGHT_GAUGES) {
          const v = metricSum(text, g.name, g.label);
          if (v !== undefined) inflight = (inflight ?? 0) + v;
          if (v !== undefined && v !== 0) s.inflightDetail[`${p.name} ${g.name}`] = v;
        }
        if (inflight !== undefined) s.inflight[p.name] = inflight;
      } catch {
        // A missed scrape is a gap in the series, not a failure of the soak.
      }
    }),
  );
  return s;
}

/** Rejection counters by level and reason, summed over the processes (read once, at the end). */
const REJECTION_COUNTERS: readonly [level: string, name: string][] = [
  ["L1 ingress", "sluice_ingress_rejected_total"],
  ["L2 router", "sluice_router_rejections_total"],
  ["L3 engine-scheduler", "sluice_engine_rejections_total"],
];
async function rejectionsByReason(procs: readonly Proc[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const p of procs) {
    if (p.metrics === undefined) continue;
    const text = await (await fetch(p.metrics, { signal: AbortSignal.timeout(5_000) }))
      .text()
      .catch(() => "");
    for (const line of text.split("\n")) {
      for (const [level, name] of REJECTION_COUNTERS) {
        if (!line.startsWith(`${name}{`)) continue;
        const reason = /reason="([^"]*)"/.exec(line)?.[1] ?? "?";
        const key = `${level}: ${reason}`;
        out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
      }
    }
  }
  return out;
}

// ---- load ----
const SYSTEM_PROMPTS = [
  "You are a concise assistant for a cloud provider's customers. Answer with short, correct steps.",
  "You are a code reviewer. Point out bugs first, then style, and keep every remark actionable.",
  "You translate technical English into plain language for operators on call at night.",
  "You are a patient tutor. Explain with one example and one counter-example, then summarise.",
];
const WORDS = "kv cache batching retries tls leases queues prefill streaming quotas tokens latency".split(
  " ",
);

/** Longest a request may take end to end before the client gives up (counted as a failure). */
const CLIENT_TIMEOUT_MS = 120_000;

interface Tally {
  sent: number;
  completed: number;
  rejected: number;
  aborted: number;
  failed: number;
  other: Record<string, number>;
}
const newTally = (): Tally => ({ sent: 0, completed: 0, rejected: 0, aborted: 0, failed: 0, other: {} });

function requestBody(model: string): string {
  const words = 20 + Math.floor(random() * 200);
  let user = "";
  for (let i = 0; i < words; i++) user += `${WORDS[Math.floor(random() * WORDS.length)]} `;
  return JSON.stringify({
    model,
    stream: true,
    max_tokens: 16 + Math.floor(random() * 112),
    messages: [
      { role: "system", content: SYSTEM_PROMPTS[Math.floor(random() * SYSTEM_PROMPTS.length)] },
      { role: "user", content: user },
    ],
  });
}

// node:http with one keep-alive agent, not fetch: undici's fetch costs several times the CPU per
// streamed request, and at ~100 req/s on a shared 2-core machine the client itself fell behind, piled
// up pending requests (1.8 GB) and measured its own collapse instead of the stack's.
const clientAgent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

/** One request; `abortAfterMs` cuts it at that moment, wherever it is (queued, held, streaming). */
function sendOne(
  url: string,
  body: string,
  tally: Tally,
  abortAfterMs?: number,
): Promise<number | undefined> {
  tally.sent++;
  return new Promise((resolve) => {
    let settled = false;
    const settle = (retry?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(retry);
    };
    const req = http.request(`${url}/v1/chat/completions`, {
      method: "POST",
      agent: clientAgent,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    });
    // A client that never hears back would hold the run open: give up (as a failure) after the bound.
    const timer = setTimeout(() => {
      if (settled) return;
      if (abortAfterMs !== undefined) tally.aborted++;
      else tally.failed++;
      req.destroy();
      settle();
    }, abortAfterMs ?? CLIENT_TIMEOUT_MS);
    req.on("error", () => {
      if (settled) return;
      tally.failed++;
      settle();
    });
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      if (status === 429 || status === 503 || status === 529) {
        tally.rejected++;
        const retry = Number(res.headers["retry-after-ms"]);
        res.resume();
        settle(Number.isFinite(retry) ? retry : undefined);
        return;
      }
      // Drain the body as a client would (the whole stream for a 200).
      res.resume();
      res.on("end", () => {
        if (settled) return;
        if (status === 200) tally.completed++;
        else tally.other[status] = (tally.other[status] ?? 0) + 1;
        settle();
      });
      res.on("error", () => {
        if (settled) return;
        tally.failed++;
        settle();
      });
    });
    req.end(body);
  });
}

let lastCalibration: Tally = newTally();

/** Closed loop of `concurrency` clients for `ms`: completions per second in the last two thirds. */
async function calibrate(urls: readonly string[], model: string, ms: number): Promise<number> {
  const tally = newTally();
  const start = performance.now();
  let completedAtThird = 0;
  const third = setTimeout(() => {
    completedAtThird = tally.completed;
  }, ms / 3);
  const clients = Array.from({ length: calibrateConcurrency }, async (_, i) => {
    while (performance.now() - start < ms) {
      const retry = await sendOne(urls[i % urls.length] as string, requestBody(model), tally);
      if (retry !== undefined) await sleep(Math.min(250, retry));
    }
  });
  await Promise.all(clients);
  clearTimeout(third);
  const elapsedSec = (performance.now() - start) / 1000;
  say(`calibration: ${JSON.stringify(tally)} in ${elapsedSec.toFixed(1)} s`);
  lastCalibration = tally;
  return (tally.completed - completedAtThird) / (elapsedSec - ms / 3000);
}

// ---- statistics ----
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
/** Least-squares slope of y over x. */
function slope(points: readonly [number, number][]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

function predictedSeries(samples: readonly Sample[]): string {
  const v = samples.map((s) => s.predicted?.pendingPrefillTokens).filter((x): x is number => x !== undefined);
  if (v.length === 0) return "no cluster.load seen";
  return `${v[0]} / ${median(v)} / ${Math.max(...v)} / ${v[v.length - 1]}`;
}

// ---- plot ----
const COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
  "#393b79",
  "#637939",
];
function niceStep(max: number): number {
  const rough = max / 5;
  const pow = 10 ** Math.floor(Math.log10(rough));
  return [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= rough) ?? 10 * pow;
}
function renderSvg(title: string, series: { name: string; points: [number, number][] }[]): string {
  const W = 820;
  const H = 420;
  const m = { left: 60, right: 190, top: 40, bottom: 50 };
  const xMax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[0])));
  const yMaxRaw = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const yStep = niceStep(yMaxRaw);
  const yMax = Math.ceil(yMaxRaw / yStep) * yStep;
  const xStep = niceStep(xMax);
  const px = (x: number) => m.left + (x / xMax) * (W - m.left - m.right);
  const py = (y: number) => H - m.bottom - (y / yMax) * (H - m.top - m.bottom);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.left}" y="20" font-size="13">${title.replace(/&/g, "&amp;").replace(/</g, "&lt;")}</text>`,
  ];
  for (let y = 0; y <= yMax + 1e-9; y += yStep) {
    out.push(`<line x1="${m.left}" x2="${W - m.right}" y1="${py(y)}" y2="${py(y)}" stroke="#eee"/>`);
    out.push(`<text x="${m.left - 6}" y="${py(y) + 4}" text-anchor="end">${Number(y.toPrecision(6))}</text>`);
  }
  for (let x = 0; x <= xMax + 1e-9; x += xStep) {
    out.push(
      `<text x="${px(x)}" y="${H - m.bottom + 16}" text-anchor="middle">${Number(x.toPrecision(6))}</text>`,
    );
  }
  out.push(
    `<line x1="${m.left}" x2="${W - m.right}" y1="${py(0)}" y2="${py(0)}" stroke="#333"/>`,
    `<line x1="${m.left}" x2="${m.left}" y1="${py(0)}" y2="${m.top}" stroke="#333"/>`,
    `<text x="${(m.left + W - m.right) / 2}" y="${H - 12}" text-anchor="middle">minutes since load start</text>`,
    `<text transform="translate(16 ${(m.top + H - m.bottom) / 2}) rotate(-90)" text-anchor="middle">RSS (MB)</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const d = s.points
      .map((p, j) => `${j === 0 ? "M" : "L"}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`)
      .join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
    const ly = m.top + i * 16;
    out.push(
      `<line x1="${W - m.right + 10}" x2="${W - m.right + 30}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
    );
    out.push(`<text x="${W - m.right + 36}" y="${ly + 4}">${s.name}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

// ---- main ----
const dataDir = mkdtempSync(join(tmpdir(), "sluice-soak-"));
const stateFile = join(dataDir, "state.json");
say(`starting sluice up: ${engines} mock engines at --speedup ${speedup} (data in ${dataDir}) ...`);
const { child, state } = await startStack(dataDir, stateFile);
// Ctrl-C stops the stack too (its processes would otherwise outlive the script).
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping the stack`);
    void stopStack(child).finally(() => process.exit(130));
  });
}
const model = "mock-llm";
const urls = state.ingress.map((i) => i.url);
if (urls.length === 0) throw new Error("the stack has no ingress");
const upPid = child.pid as number;
const procs = processesOf(upPid, state);
say(`processes: ${procs.map((p) => `${p.name}=${p.pid}`).join(" ")}`);
const closeWatch = await watchClusterLoad(state.nats);
const loadAtStart = loadavg()[0] ?? 0;
const startedAt = new Date();

let exitCode = 0;
try {
  say(`calibrating capacity: ${calibrateConcurrency} closed-loop clients for ${calibrateMs / 1000} s ...`);
  const capacity = await calibrate(urls, model, calibrateMs);
  if (!(capacity > 0)) throw new Error(`calibration measured no completions (capacity ${capacity})`);
  // Capacity is the completion rate of a saturated stack: with too few closed-loop clients it is only
  // the rate those clients sustain, and "2×" of it may not overload anything (seen with 48 clients:
  // no rejection after the first minute). Saturated means Sluice turned some of them away.
  if (lastCalibration.rejected === 0)
    throw new Error(
      `calibration saw no rejection: ${calibrateConcurrency} clients did not saturate the stack; raise --calibrate-concurrency`,
    );
  const rate = Math.min(maxRate, overload * capacity);
  // The client shares the machine: above --max-rate it would measure itself, not the stack. A soak
  // that cannot offer the overload asked for says so instead of reporting a milder one as if it were it.
  if (rate < overload * capacity * 0.98)
    throw new Error(
      `--overload ${overload} × capacity ${capacity.toFixed(1)}/s exceeds --max-rate ${maxRate}: lower --speedup or raise --max-rate`,
    );
  say(
    `capacity ≈ ${capacity.toFixed(1)} completions/s; offering ${rate.toFixed(1)} req/s` +
      ` (${(rate / capacity).toFixed(2)}× capacity) for ${values.duration}, ${abortFraction * 100}% aborted`,
  );

  const tally = newTally();
  /** Arrivals not sent because --max-pending requests were already open (the client's own bound). */
  let notOffered = 0;
  const t0 = performance.now();
  const samples: Sample[] = [];
  const takeSample = async () => {
    const s = await sample(procs, t0);
    samples.push(s);
    const rss = Object.entries(s.rssMb)
      .map(([k, v]) => `${k}:${v.toFixed(0)}`)
      .join(" ");
    const inflight = Object.values(s.inflight).reduce((a, b) => a + b, 0);
    say(
      `t=${(s.tSec / 60).toFixed(1)}m sent ${tally.sent} (not offered ${notOffered}) ok ${tally.completed} rej ${tally.rejected} abort ${tally.aborted} fail ${tally.failed} in-flight ${inflight} predicted ${s.predicted?.inflightRequests ?? "?"} req / ${s.predicted?.pendingPrefillTokens ?? "?"} prefill tok | RSS MB ${rss}`,
    );
  };
  await takeSample();
  const sampler = setInterval(() => void takeSample(), sampleEveryMs);
  const pending = new Set<Promise<unknown>>();
  let next = 0;
  let arrivalMs = 0;
  while (performance.now() - t0 < durationMs) {
    const url = urls[next++ % urls.length] as string;
    const abortAfterMs = random() < abortFraction ? 20 + random() * 3_000 : undefined;
    if (pending.size >= maxPending) {
      // The client cannot hold more open requests: count the arrival as not offered rather than
      // letting the load generator's own memory and event loop become the thing measured.
      notOffered++;
    } else {
      const p = sendOne(url, requestBody(model), tally, abortAfterMs).finally(() => pending.delete(p));
      pending.add(p);
    }
    // Open loop: arrivals on a Poisson schedule, independent of how fast answers come back.
    arrivalMs += (-Math.log(1 - random()) / rate) * 1000;
    const wait = arrivalMs - (performance.now() - t0);
    if (wait > 0) await sleep(wait);
  }
  const loadEndSec = (performance.now() - t0) / 1000;
  say(`load stopped after ${loadEndSec.toFixed(0)} s; waiting for ${pending.size} open requests ...`);
  await Promise.allSettled(pending);
  clearInterval(sampler);
  // In-flight must return to 0 once the clients are done (gauges refresh within ~1 s).
  const drainStart = performance.now();
  let idle: Sample;
  for (;;) {
    await sleep(1_000);
    idle = await sample(procs, t0);
    const total =
      Object.values(idle.inflight).reduce((a, b) => a + b, 0) +
      (idle.predicted ? idle.predicted.inflightRequests + idle.predicted.pendingPrefillTokens : 0);
    if (total === 0 || performance.now() - drainStart > drainTimeoutMs) break;
  }
  const drainSec = (performance.now() - drainStart) / 1000;
  samples.push(idle);
  const residual = Object.entries(idle.inflight).filter(([, v]) => v !== 0);
  say(
    residual.length === 0
      ? `in-flight back to 0 on every process ${drainSec.toFixed(1)} s after the last client finished`
      : `in-flight NOT back to 0 after ${drainSec.toFixed(0)} s: ${JSON.stringify(idle.inflightDetail)}`,
  );
  if (residual.length > 0) exitCode = 1;
  const predictedResidual =
    idle.predicted === undefined
      ? "no cluster.load message seen"
      : idle.predicted.inflightRequests + idle.predicted.pendingPrefillTokens === 0
        ? ""
        : `predicted ${idle.predicted.inflightRequests} requests in flight (ingresses) and ${idle.predicted.pendingPrefillTokens} prefill tokens pending (routers) in cluster.load`;
  if (predictedResidual !== "") {
    say(`predicted load NOT back to 0: ${predictedResidual}`);
    exitCode = 1;
  }
  const crashed = procs.filter((p) => rssMb(p.pid) === undefined).map((p) => p.name);
  if (crashed.length > 0) {
    say(`processes gone by the end: ${crashed.join(", ")}`);
    exitCode = 1;
  }

  // Warm-up: the first 10 % of the run (at least one sample) is excluded from the slope.
  const loadSamples = samples.filter((s) => s.tSec <= loadEndSec + sampleEveryMs / 1000);
  const warmupSec = Math.max(loadEndSec * 0.1, sampleEveryMs / 1000);
  const rows: string[] = [];
  for (const p of procs) {
    const rss = loadSamples
      .filter((s) => p.name in s.rssMb)
      .map((s) => [s.tSec, s.rssMb[p.name] as number] as [number, number]);
    const eld = loadSamples.map((s) => s.eldP99Ms[p.name]).filter((v): v is number => v !== undefined);
    if (rss.length === 0) continue;
    const slopeMbPerHour = slope(rss.filter(([t]) => t >= warmupSec)) * 3600;
    const eldText =
      eld.length === 0
        ? "—"
        : `${eld[0]?.toFixed(1)} / ${median(eld).toFixed(1)} / ${eld[eld.length - 1]?.toFixed(1)} (max ${Math.max(...eld).toFixed(1)})`;
    rows.push(
      `| ${p.name} | ${rss[0]?.[1].toFixed(1)} | ${median(rss.map((r) => r[1])).toFixed(1)} | ${rss[rss.length - 1]?.[1].toFixed(1)} | ${slopeMbPerHour.toFixed(1)} | ${eldText} | ${idle.inflight[p.name] ?? "—"} |`,
    );
  }
  const svgSeries = procs.map((p) => ({
    name: p.name,
    points: samples
      .filter((s) => p.name in s.rssMb)
      .map((s) => [s.tSec / 60, s.rssMb[p.name] as number] as [number, number]),
  }));
  writeFileSync(
    values.svg,
    renderSvg(
      `RSS per process: ${values.duration} at ${(rate / capacity).toFixed(1)}× capacity, ${abortFraction * 100}% aborts`,
      svgSeries,
    ),
  );
  say(`wrote ${values.svg}`);

  const rejections = await rejectionsByReason(procs);
  const rejectionText = [...rejections].map(([k, v]) => `${k} ${v}`).join(", ") || "none counted";
  const command =
    `node --conditions=sluice-src --import tsx bench/soak.ts ${process.argv.slice(2).join(" ")}`.trim();
  const other =
    Object.entries(tally.other)
      .map(([status, n]) => `${n}× HTTP ${status}`)
      .join(", ") || "none";
  const markdown = [
    "## Soak: sustained overload with client aborts (issue 9)",
    "",
    `Command: \`${command}\` (after \`npx tsc -b\`). Stack: \`sluice up --no-demo --engines ${engines} --speedup ${speedup}\` (NATS, etcd, ${engines} mock engines each behind an engine-scheduler, 1 router, 1 aggregator, 1 ingress).`,
    `Machine: ${machineDescription()}; load average ${loadAtStart.toFixed(1)} at the start (other work shared the machine). Measured ${measuredAt(startedAt)}.`,
    "",
    `Load: capacity measured by ${calibrateConcurrency} closed-loop clients for ${calibrateMs / 1000} s = **${capacity.toFixed(1)} completions/s**; then ${values.duration} of Poisson arrivals at **${rate.toFixed(1)} req/s (${(rate / capacity).toFixed(2)}× capacity)**, streaming chat completions (20–220 words, max_tokens 16–127), ${abortFraction * 100} % aborted by the client at a random moment in the first 3 s.`,
    `Outcomes: ${tally.sent} sent, ${tally.completed} completed, ${tally.rejected} rejected (429/503/529), ${tally.aborted} aborted by the client, ${tally.failed} connection failures, other statuses: ${other}; ${notOffered} arrivals not offered because ${maxPending} requests were already open (--max-pending).`,
    `Rejections counted by the processes (calibration included), by level and reason: ${rejectionText}.`,
    "",
    `Sampled every ${sampleEveryMs / 1000} s: RSS from \`/proc/<pid>/status\` VmRSS; event-loop delay = \`nodejs_eventloop_lag_p99_seconds\` on each process's /metrics (prom-client, p99 since the previous scrape). Slope: least squares over the samples after the first ${warmupSec.toFixed(0)} s (warm-up).`,
    "",
    "| process | RSS start MB | RSS median MB | RSS end MB | RSS slope MB/h | ELD p99 ms start / median / end (max) | in-flight after drain |",
    "|---|---|---|---|---|---|---|",
    ...rows,
    "",
    residual.length === 0
      ? `In-flight (ingress local, router queue, sidecar queue + in-engine, engine running + waiting) returned to **0 on every process** ${drainSec.toFixed(1)} s after the last client finished.`
      : `In-flight did **not** return to 0 within ${drainTimeoutMs / 1000} s: ${JSON.stringify(idle.inflightDetail)}.`,
    predictedResidual === ""
      ? "The aggregator's predicted load (cluster.load: ingress in-flight requests, routers' pending prefill tokens) returned to 0 as well."
      : `The aggregator's predicted load did **not** return to 0 with every engine idle: ${predictedResidual}.`,
    `Predicted pending prefill tokens over the run (cluster.load; start / median / max / end): ${predictedSeries(samples)}.`,
    crashed.length === 0
      ? "No process exited during the soak."
      : `Processes gone by the end: ${crashed.join(", ")}.`,
    "",
    `![RSS over time per process](${values.svg.split("/").pop()})`,
  ].join("\n");
  process.stdout.write(`${markdown}\n`);
  if (!values["no-results"]) {
    writeResultsSection("soak", markdown);
    say("wrote the soak section of bench/RESULTS.md");
  }
} catch (error) {
  say(`soak failed: ${(error as Error).stack ?? String(error)}`);
  exitCode = 1;
} finally {
  await stopStack(child);
  await closeWatch().catch(() => {});
  if (values["keep-data"]) say(`kept ${dataDir} (process logs in logs/)`);
  else rmSync(dataDir, { recursive: true, force: true });
}
process.exit(exitCode);
