// Added latency of the L3 sidecar when idle (issue 6, target p99 < 1 ms): the same small request sent
// to `sluice mock-engine` directly and through `sluice engine-scheduler` in front of that same engine,
// alternating request by request (direct, sidecar, sidecar, direct, …) so background noise hits both
// paths alike. Engine and sidecar each run in their own Node process as in production; this process
// is the client (one keep-alive connection per path, one request at a time, so the sidecar is idle:
// its queue is always empty). The engine runs at a large speed-up so engine time is ~negligible.
// Two request shapes: non-streaming, and streaming (SSE, exercises the first-token audit path).
// Added latency = percentile through the sidecar − the same percentile direct.
//
// Run: node --conditions=sluice-src --import tsx bench/l3-sidecar-overhead.ts [--requests 3000] [--quick]
// Needs nats-server and etcd (started on free ports by @sluice/testkit). Writes section
// `l3-sidecar-overhead` of bench/RESULTS.md.
import { type ChildProcess, spawn } from "node:child_process";
import { once as onceEvent } from "node:events";
import { Agent, request } from "node:http";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { freePort, startEtcd, startNats } from "@sluice/testkit";
import { machineDescription, measuredAt, writeResultsSection } from "./results-section.js";

const { values } = parseArgs({
  options: {
    requests: { type: "string" },
    warmup: { type: "string" },
    quick: { type: "boolean", default: false },
  },
});
const REQUESTS = Number(values.requests ?? (values.quick ? 600 : 3000));
const WARMUP = Number(values.warmup ?? (values.quick ? 200 : 500));
if (!(Number.isInteger(REQUESTS) && REQUESTS > 0 && Number.isInteger(WARMUP) && WARMUP >= 0)) {
  console.error("--requests must be a positive integer, --warmup a non-negative integer");
  process.exit(2);
}
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

interface Target {
  readonly url: URL;
  readonly agent: Agent;
}
const target = (base: string): Target => ({
  url: new URL(`${base}/v1/completions`),
  agent: new Agent({ keepAlive: true, maxSockets: 1 }),
});

/** Wall ms of one request, from the write to the end of the response body. */
function once(t: Target, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = request(
      {
        hostname: t.url.hostname,
        port: t.url.port,
        path: t.url.pathname,
        method: "POST",
        agent: t.agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`${t.url.host}: status ${res.statusCode}`));
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

/** Alternates direct and sidecar request by request, swapping which goes first every pair. */
async function measure(
  direct: Target,
  sidecar: Target,
  body: string,
): Promise<{ direct: number[]; sidecar: number[] }> {
  for (let i = 0; i < WARMUP; i++) {
    await once(direct, body);
    await once(sidecar, body);
  }
  const d: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    if (i % 2 === 0) {
      d.push(await once(direct, body));
      s.push(await once(sidecar, body));
    } else {
      s.push(await once(sidecar, body));
      d.push(await once(direct, body));
    }
  }
  return { direct: d.sort((a, b) => a - b), sidecar: s.sort((a, b) => a - b) };
}
const q = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

/** Runs a Sluice command in its own Node process (as in production), so the hops do not share one event loop. */
function spawnCommand(pkg: string, fn: string, argv: string[]): ChildProcess {
  return spawn(
    process.execPath,
    [
      "--conditions=sluice-src",
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      `import { ${fn} } from "${pkg}"; process.exitCode = await ${fn}(${JSON.stringify(argv)}, {});`,
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

const loadBefore = loadavg()[0]!;
await using nats = await startNats();
await using etcd = await startEtcd();
const common = [
  "--admin-port=0",
  "--log-level=silent",
  `--nats-url=${nats.url}`,
  `--etcd-endpoints=${etcd.endpoints.join(",")}`,
];
const enginePort = await freePort();
const sidecarPort = await freePort();
const engineUrl = `http://127.0.0.1:${enginePort}`;
const sidecarUrl = `http://127.0.0.1:${sidecarPort}`;
const engine = spawnCommand("@sluice/mock-engine", "runMockEngine", [
  ...common,
  `--port=${enginePort}`,
  "--id=bench-engine",
  "--register-engine=false",
  `--speedup=${SPEEDUP}`,
]);
const sidecar = spawnCommand("@sluice/engine-scheduler", "runEngineScheduler", [
  ...common,
  `--port=${sidecarPort}`,
  "--id=bench-sidecar",
  "--worker-id=bench",
  `--engine-url=${engineUrl}`,
]);
const direct = target(engineUrl);
const through = target(sidecarUrl);
const rows: string[] = [];
let met = true;
try {
  await waitHealthy(`${engineUrl}/health`);
  await waitHealthy(`${sidecarUrl}/health`);
  const f = (v: number) => v.toFixed(3);
  const signed = (v: number) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(3)}`;
  for (const shape of SHAPES) {
    console.log(`${shape.name}: ${WARMUP} warm-up + ${REQUESTS} measured pairs …`);
    const r = await measure(direct, through, shape.body);
    const added = (p: number) => q(r.sidecar, p) - q(r.direct, p);
    for (const [label, s] of [
      ["direct ", r.direct],
      ["sidecar", r.sidecar],
    ] as const)
      console.log(`  ${label}  p50 ${f(q(s, 0.5))}  p90 ${f(q(s, 0.9))}  p99 ${f(q(s, 0.99))} ms`);
    console.log(
      `  added    p50 ${signed(added(0.5))}  p90 ${signed(added(0.9))}  p99 ${signed(added(0.99))} ms`,
    );
    const ok = added(0.99) < TARGET_P99_MS;
    met &&= ok;
    rows.push(
      `| ${shape.name} | ${f(q(r.direct, 0.5))} / ${f(q(r.direct, 0.99))} | ${f(q(r.sidecar, 0.5))} / ${f(q(r.sidecar, 0.99))} | ${signed(added(0.5))} | ${signed(added(0.9))} | **${signed(added(0.99))}** | ${ok ? "yes" : "**no**"} |`,
    );
  }
} finally {
  const exits = [onceEvent(sidecar, "exit"), onceEvent(engine, "exit")];
  sidecar.kill("SIGTERM");
  engine.kill("SIGTERM");
  await Promise.all(exits);
  direct.agent.destroy();
  through.agent.destroy();
}

const args = process.argv.slice(2).join(" ");
const markdown = `## L3 sidecar added latency when idle (\`bench/l3-sidecar-overhead.ts\`)

Command: \`node --conditions=sluice-src --import tsx bench/l3-sidecar-overhead.ts${args === "" ? "" : ` ${args}`}\`
(${measuredAt()}; ${machineDescription()}; load average ${loadBefore.toFixed(1)} at start).

Load: one request at a time (the sidecar is idle, its queue always empty) from this process over one
keep-alive connection per path; \`sluice mock-engine --speedup ${SPEEDUP}\` and \`sluice engine-scheduler\` each
in its own Node process (sources through tsx), real nats-server and etcd. Requests alternate direct /
through the sidecar pair by pair (order swapped every pair) after ${WARMUP} warm-up pairs; ${REQUESTS} measured
pairs per shape; 64-token prompt, \`max_tokens\` 1. Added = sidecar percentile − direct percentile.
Target (issue 6): added p99 < ${TARGET_P99_MS} ms.

| request | direct p50 / p99 ms | through sidecar p50 / p99 ms | added p50 ms | added p90 ms | added p99 ms | target met |
|---|---|---|---|---|---|---|
${rows.join("\n")}
`;
console.log(`\n${markdown}`);
if (!values.quick) writeResultsSection("l3-sidecar-overhead", markdown);
else console.log("(--quick run: bench/RESULTS.md not written)");
console.log(met ? "target met" : "target NOT met");
