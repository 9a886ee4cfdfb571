// Added latency of the L3 sidecar when idle (issue 6, target p99 < 1 ms): the same small request sent
// to `sluice mock-engine` directly and through `sluice engine-scheduler` in front of that same engine.
// Engine and sidecar each run in their own Node process as in production; this process is the client
// (one keep-alive connection per path, one request at a time, so the sidecar is idle: its queue is
// always empty). The engine runs at a large speed-up so engine time is ~negligible.
//
// Fairness: the run is split into rounds; in each round, for each request shape, the paths take turns
// request by request (the order rotating every request), so background noise (other work on the
// machine, GC, the engine's own timers) hits every path alike. Added latency = percentile through the
// sidecar − the same percentile direct, over all rounds; the per-round added p99 is printed too, so a
// noisy round shows. Besides latency, it reports what the sidecar spends per request: CPU (user + system,
// all threads, from /proc), write syscalls (HTTP to client and engine, NATS) and NATS messages published
// (from nats-server's /connz), and the load average around each round.
//
// A/B in one run: `--compare DIR` starts a second sidecar from another copy of the package sources
// (DIR/src/index.ts, e.g. the sources before a change, with DIR/node_modules linked to the
// workspace's) in front of the same engine, interleaved with the other two paths; its figures are
// printed but not written to RESULTS.md. `--cpu-prof DIR` runs the sidecar(s) under `node --cpu-prof`.
//
// Run: node --conditions=sluice-src --import tsx bench/l3-sidecar-overhead.ts [--requests 3000]
//      [--rounds 6] [--warmup 500] [--quick] [--compare DIR] [--cpu-prof DIR]
// Needs nats-server and etcd (started on free ports by @sluice/testkit). Writes section
// `l3-sidecar-overhead` of bench/RESULTS.md (not with --quick or --compare).
import { type ChildProcess, spawn } from "node:child_process";
import { once as onceEvent } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { loadavg } from "node:os";
import { resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import { freePort, startEtcd, startNats } from "@sluice/testkit";
import { machineDescription, measuredAt, writeResultsSection } from "./results-section.js";

const { values } = parseArgs({
  options: {
    requests: { type: "string" },
    rounds: { type: "string" },
    warmup: { type: "string" },
    quick: { type: "boolean", default: false },
    compare: { type: "string", multiple: true },
    "cpu-prof": { type: "string" },
  },
});
const REQUESTS = Number(values.requests ?? (values.quick ? 600 : 3000));
const ROUNDS = Number(values.rounds ?? (values.quick ? 2 : 6));
const WARMUP = Number(values.warmup ?? (values.quick ? 200 : 500));
if (
  !(
    Number.isInteger(REQUESTS) &&
    Number.isInteger(ROUNDS) &&
    ROUNDS > 0 &&
    REQUESTS >= ROUNDS &&
    Number.isInteger(WARMUP) &&
    WARMUP >= 0
  )
) {
  console.error(
    "--requests must be an integer ≥ --rounds, --rounds a positive integer, --warmup a non-negative integer",
  );
  process.exit(2);
}
const compareDirs = (values.compare ?? []).map((d) => resolvePath(d));
for (const dir of compareDirs)
  if (!existsSync(`${dir}/src/index.ts`)) {
    console.error(`--compare: ${dir}/src/index.ts does not exist`);
    process.exit(2);
  }
const cpuProfDir = values["cpu-prof"] === undefined ? undefined : resolvePath(values["cpu-prof"]);
const PER_ROUND = Math.floor(REQUESTS / ROUNDS);
const SPEEDUP = 1000;
const TARGET_P99_MS = 1;

interface Shape {
  readonly name: string;
  readonly body: string;
}
const PROMPT = Array.from({ length: 64 }, (_, i) => 100 + i);
const SHAPES: readonly Shape[] = [
  { name: "non-streaming", body: JSON.stringify({ prompt: PROMPT, max_tokens: 1 }) },
  { name: "streaming (SSE)", body: JSON.stringify({ prompt: PROMPT, max_tokens: 1, stream: true }) },
];

/** CPU and write syscalls of a process so far (Linux /proc; undefined elsewhere). */
interface ProcStats {
  readonly cpuMs: number;
  readonly writes: number;
}
const CLOCK_TICKS_PER_S = 100;
function procStats(pid: number | undefined): ProcStats | undefined {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const writes = Number(/^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? Number.NaN);
    return { cpuMs: (ticks * 1000) / CLOCK_TICKS_PER_S, writes };
  } catch {
    return undefined;
  }
}

interface Path {
  readonly label: string;
  readonly url: URL;
  readonly agent: Agent;
  /** The sidecar process (none for the direct path). */
  readonly proc?: ChildProcess;
  /** Its NATS connection name (`{role}-{id}`), to find its published-message count in /connz. */
  readonly natsName?: string;
  /** Per shape: every latency, and per round the samples of that round. */
  readonly samples: Map<string, { all: number[]; rounds: number[][] }>;
  /** Per shape: what the sidecar process spent over the measured requests. */
  readonly spent: Map<string, { cpuMs: number; writes: number; natsMsgs: number; requests: number }>;
}
const makePath = (label: string, base: string, proc?: ChildProcess, natsName?: string): Path => ({
  label,
  url: new URL(`${base}/v1/completions`),
  agent: new Agent({ keepAlive: true, maxSockets: 1 }),
  ...(proc !== undefined ? { proc } : {}),
  ...(natsName !== undefined ? { natsName } : {}),
  samples: new Map(SHAPES.map((s) => [s.name, { all: [], rounds: [] }])),
  spent: new Map(SHAPES.map((s) => [s.name, { cpuMs: 0, writes: 0, natsMsgs: 0, requests: 0 }])),
});

/** Wall ms of one request, from the write to the end of the response body. */
function once(p: Path, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = request(
      {
        hostname: p.url.hostname,
        port: p.url.port,
        path: p.url.pathname,
        method: "POST",
        agent: p.agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`${p.url.host}: status ${res.statusCode}`));
          res.resume();
          return;
        }
        res.resume();
        res.on("end", () => resolve(Number(process.hrtime.bigint() - start) / 1e6));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const q = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);

/** Runs a Sluice command in its own Node process (as in production), so the hops do not share one event loop. */
function spawnCommand(module: string, fn: string, argv: string[], nodeArgs: string[] = []): ChildProcess {
  return spawn(
    process.execPath,
    [
      ...nodeArgs,
      "--conditions=sluice-src",
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      `import { ${fn} } from ${JSON.stringify(module)}; process.exitCode = await ${fn}(${JSON.stringify(argv)}, {});`,
    ],
    { cwd: new URL("..", import.meta.url).pathname, stdio: ["ignore", "ignore", "inherit"] },
  );
}

async function waitHealthy(url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} did not become healthy`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The floor for any Node.js hop: a minimal reverse proxy (keep-alive agent, headers copied, bodies
 * piped; no parsing, scheduling, metrics or NATS), in its own process. Sidecar − bare proxy is what
 * the sidecar's own work adds on top of being a Node HTTP hop at all.
 */
const BARE_PROXY_JS = `
const http = require("node:http");
const [port, engine] = process.argv.slice(1);
const target = new URL(engine);
const agent = new http.Agent({ keepAlive: true });
const server = http.createServer((req, res) => {
  const headers = { ...req.headers };
  delete headers.connection;
  delete headers.host;
  const up = http.request({ hostname: target.hostname, port: target.port, path: req.url, method: req.method, headers, agent }, (upRes) => {
    res.writeHead(upRes.statusCode, upRes.headers);
    upRes.pipe(res);
  });
  up.on("error", () => res.destroy());
  req.pipe(up);
});
server.listen(Number(port), "127.0.0.1");
process.on("SIGTERM", () => { server.close(); server.closeAllConnections(); agent.destroy(); });
`;

const loadStart = loadavg()[0]!;
await using nats = await startNats();
await using etcd = await startEtcd();
const monitorUrl = nats.monitorUrl;

/** Messages each named NATS connection has published so far. */
async function natsPublished(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (monitorUrl === undefined) return out;
  const connz = (await (await fetch(`${monitorUrl}/connz?limit=1024`)).json()) as {
    connections?: Array<{ name?: string; in_msgs?: number }>;
  };
  for (const c of connz.connections ?? []) if (c.name !== undefined) out.set(c.name, c.in_msgs ?? 0);
  return out;
}

const common = [
  "--admin-port=0",
  "--log-level=silent",
  `--nats-url=${nats.url}`,
  `--etcd-endpoints=${etcd.endpoints.join(",")}`,
];
const enginePort = await freePort();
const engineUrl = `http://127.0.0.1:${enginePort}`;
const engine = spawnCommand("@sluice/mock-engine", "runMockEngine", [
  ...common,
  `--port=${enginePort}`,
  "--id=bench-engine",
  "--register-engine=false",
  `--speedup=${SPEEDUP}`,
]);
const profArgs = (name: string) =>
  cpuProfDir === undefined
    ? []
    : ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`, `--cpu-prof-name=${name}.cpuprofile`];
async function startSidecar(label: string, module: string, id: string): Promise<Path> {
  const port = await freePort();
  const proc = spawnCommand(
    module,
    "runEngineScheduler",
    [...common, `--port=${port}`, `--id=${id}`, `--worker-id=${id}`, `--engine-url=${engineUrl}`],
    profArgs(id),
  );
  return makePath(label, `http://127.0.0.1:${port}`, proc, `engine-scheduler-${id}`);
}
const direct = makePath("direct", engineUrl);
const sidecar = await startSidecar("sidecar", "@sluice/engine-scheduler", "bench-sidecar");
const compared: Path[] = [];
for (const [i, dir] of compareDirs.entries())
  compared.push(await startSidecar(`compared ${i + 1}`, `${dir}/src/index.ts`, `bench-compared-${i + 1}`));
const bareProxyPort = await freePort();
const bareProxy = makePath(
  "bare Node proxy",
  `http://127.0.0.1:${bareProxyPort}`,
  spawn(process.execPath, ["-e", BARE_PROXY_JS, String(bareProxyPort), engineUrl], {
    stdio: ["ignore", "ignore", "inherit"],
  }),
);
const paths = [direct, bareProxy, sidecar, ...compared];
/** Every path through a process of its own (all but direct). */
const sidecars = paths.filter((p) => p.proc !== undefined);

const f = (v: number) => v.toFixed(3);
const signed = (v: number) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(3)}`;
const loads: number[] = [];
let idleCpuMsPerS = new Map<Path, number>();
try {
  await waitHealthy(`${engineUrl}/health`);
  for (const p of sidecars) if (p !== bareProxy) await waitHealthy(`${p.url.origin}/health`);

  console.log(`warm-up: ${WARMUP} requests per path and shape …`);
  for (const shape of SHAPES)
    for (let i = 0; i < WARMUP; i++) for (const p of paths) await once(p, shape.body);

  // The sidecar's background cost (engine scrape, load heartbeat, timers) while no request arrives.
  const IDLE_MS = values.quick ? 1000 : 3000;
  const idleBefore = sidecars.map((p) => procStats(p.proc?.pid));
  await new Promise((r) => setTimeout(r, IDLE_MS));
  idleCpuMsPerS = new Map(
    sidecars.map((p, i) => {
      const a = idleBefore[i];
      const b = procStats(p.proc?.pid);
      return [p, a === undefined || b === undefined ? Number.NaN : ((b.cpuMs - a.cpuMs) * 1000) / IDLE_MS];
    }),
  );

  for (let round = 0; round < ROUNDS; round++) {
    loads.push(loadavg()[0]!);
    const parts: string[] = [];
    for (const shape of SHAPES) {
      const before = sidecars.map((p) => procStats(p.proc?.pid));
      const natsBefore = await natsPublished();
      const lat = paths.map(() => [] as number[]);
      for (let i = 0; i < PER_ROUND; i++)
        for (let k = 0; k < paths.length; k++) {
          // Rotating order: every path goes first, in the middle and last equally often.
          const j = (i + k) % paths.length;
          lat[j]!.push(await once(paths[j]!, shape.body));
        }
      const natsAfter = await natsPublished();
      sidecars.forEach((p, i) => {
        const a = before[i];
        const b = procStats(p.proc?.pid);
        const spent = p.spent.get(shape.name)!;
        spent.requests += PER_ROUND;
        spent.cpuMs += a === undefined || b === undefined ? Number.NaN : b.cpuMs - a.cpuMs;
        spent.writes += a === undefined || b === undefined ? Number.NaN : b.writes - a.writes;
        spent.natsMsgs +=
          p.natsName === undefined
            ? 0
            : (natsAfter.get(p.natsName) ?? Number.NaN) - (natsBefore.get(p.natsName) ?? Number.NaN);
      });
      paths.forEach((p, j) => {
        const s = p.samples.get(shape.name)!;
        s.all.push(...lat[j]!);
        s.rounds.push(sorted(lat[j]!));
      });
      const d = sorted(lat[0]!);
      parts.push(
        `${shape.name} added p99 ${sidecars
          .map((p) => signed(q(p.samples.get(shape.name)!.rounds.at(-1)!, 0.99) - q(d, 0.99)))
          .join(" / ")} ms`,
      );
    }
    console.log(`round ${round + 1}/${ROUNDS} (load ${loads.at(-1)!.toFixed(2)}): ${parts.join("; ")}`);
  }
} finally {
  const procs = [...sidecars.map((p) => p.proc!), engine];
  const exits = procs.map((p) => onceEvent(p, "exit"));
  for (const p of procs) p.kill("SIGTERM");
  await Promise.all(exits);
  for (const p of paths) p.agent.destroy();
}
const loadEnd = loadavg()[0]!;

interface Row {
  shape: string;
  path: Path;
  addedP50: number;
  addedP90: number;
  addedP99: number;
  roundP99s: number[];
  cpuUsPerRequest: number;
  writesPerRequest: number;
  natsPerRequest: number;
}
const rows: Row[] = [];
for (const shape of SHAPES) {
  const d = direct.samples.get(shape.name)!;
  const ds = sorted(d.all);
  console.log(`\n${shape.name}: ${PER_ROUND * ROUNDS} measured requests per path`);
  console.log(`  direct            p50 ${f(q(ds, 0.5))}  p90 ${f(q(ds, 0.9))}  p99 ${f(q(ds, 0.99))} ms`);
  for (const p of sidecars) {
    const s = p.samples.get(shape.name)!;
    const ss = sorted(s.all);
    const added = (x: number) => q(ss, x) - q(ds, x);
    const spent = p.spent.get(shape.name)!;
    const row: Row = {
      shape: shape.name,
      path: p,
      addedP50: added(0.5),
      addedP90: added(0.9),
      addedP99: added(0.99),
      roundP99s: s.rounds.map((r, i) => q(r, 0.99) - q(d.rounds[i]!, 0.99)),
      cpuUsPerRequest: (spent.cpuMs * 1000) / spent.requests,
      writesPerRequest: spent.writes / spent.requests,
      natsPerRequest: spent.natsMsgs / spent.requests,
    };
    rows.push(row);
    console.log(
      `  ${p.label.padEnd(17)} p50 ${f(q(ss, 0.5))}  p90 ${f(q(ss, 0.9))}  p99 ${f(q(ss, 0.99))} ms; ` +
        `added p50 ${signed(row.addedP50)}  p90 ${signed(row.addedP90)}  p99 ${signed(row.addedP99)} ms ` +
        `(per round p99 ${sorted(row.roundP99s).map(signed).join(" ")})`,
    );
    console.log(
      `  ${"".padEnd(17)} CPU ${row.cpuUsPerRequest.toFixed(0)} µs/request (idle ${idleCpuMsPerS.get(p)?.toFixed(1)} ms/s), ` +
        `${row.writesPerRequest.toFixed(2)} write syscalls/request, ${row.natsPerRequest.toFixed(2)} NATS messages/request`,
    );
  }
}

const ours = rows.filter((r) => r.path === sidecar);
const met = ours.every((r) => r.addedP99 < TARGET_P99_MS);
const range = (xs: number[]) => {
  const s = sorted(xs);
  return `${signed(s[0]!)} … ${signed(s.at(-1)!)}`;
};
const tableRows: string[] = [];
for (const shape of SHAPES) {
  const ds = sorted(direct.samples.get(shape.name)!.all);
  tableRows.push(`| ${shape.name} | direct | ${f(q(ds, 0.5))} / ${f(q(ds, 0.99))} | | | | | | | | |`);
  for (const r of rows.filter(
    (x) => x.shape === shape.name && (x.path === sidecar || x.path === bareProxy),
  )) {
    const ss = sorted(r.path.samples.get(shape.name)!.all);
    const target = r.path === sidecar ? (r.addedP99 < TARGET_P99_MS ? "yes" : "**no**") : "";
    const p99 = r.path === sidecar ? `**${signed(r.addedP99)}**` : signed(r.addedP99);
    tableRows.push(
      `| | ${r.path === sidecar ? "through the sidecar" : "through a bare Node proxy"} | ${f(q(ss, 0.5))} / ${f(q(ss, 0.99))} | ${signed(r.addedP50)} | ${signed(r.addedP90)} | ${p99} | ${range(r.roundP99s)} | ${r.cpuUsPerRequest.toFixed(0)} | ${r.writesPerRequest.toFixed(2)} | ${r.natsPerRequest.toFixed(2)} | ${target} |`,
    );
  }
}
const args = process.argv.slice(2).join(" ");
const markdown = `## L3 sidecar added latency when idle (\`bench/l3-sidecar-overhead.ts\`)

Command: \`node --conditions=sluice-src --import tsx bench/l3-sidecar-overhead.ts${args === "" ? "" : ` ${args}`}\`
(${measuredAt()}; ${machineDescription()}; load average ${loadStart.toFixed(2)} at start, ${sorted(loads)[0]!.toFixed(2)}–${sorted(loads).at(-1)!.toFixed(2)} over the rounds, ${loadEnd.toFixed(2)} at the end).

Load: one request at a time (the sidecar is idle, its queue always empty) from this process over one
keep-alive connection per path; \`sluice mock-engine --speedup ${SPEEDUP}\` and \`sluice engine-scheduler\` each
in its own Node process (sources through tsx), real nats-server and etcd. Three paths to the same engine:
direct, through the sidecar, and through a bare Node reverse proxy (keep-alive agent, headers copied, bodies
piped, nothing else; its own process) — the floor for any Node.js hop, so sidecar − bare proxy is what the
sidecar's own work costs. After ${WARMUP} warm-up requests per path and shape, ${ROUNDS} rounds of ${PER_ROUND}
requests per path and shape; within a round the paths take turns request by request, the order rotating.
64-token prompt, \`max_tokens\` 1. Added = percentile through the hop − the same percentile direct, over all
rounds; "per-round added p99" is the range of that difference round by round. Cost per request of the hop's
process: CPU (user + system, all threads, /proc) over the measured requests, including the sidecar's
background work (engine scrape every 500 ms, load heartbeat every 1 s: ${idleCpuMsPerS.get(sidecar)?.toFixed(1)} ms of CPU a
second when idle); write syscalls (client response, engine request, NATS); NATS messages it published
(nats-server \`/connz\`). Target (issue 6): added p99 < ${TARGET_P99_MS} ms through the sidecar.

| request | path | p50 / p99 ms | added p50 ms | added p90 ms | added p99 ms | per-round added p99 ms | CPU µs / request | write syscalls / request | NATS msgs / request | target met |
|---|---|---|---|---|---|---|---|---|---|---|
${tableRows.join("\n")}
`;
console.log(`\n${markdown}`);
if (values.quick || compareDirs.length > 0 || cpuProfDir !== undefined)
  console.log("(--quick, --compare or --cpu-prof run: bench/RESULTS.md not written)");
else writeResultsSection("l3-sidecar-overhead", markdown);
console.log(met ? "target met" : "target NOT met");
