// Added latency of the L3 sidecar when idle: p50/p99 of a small non-streaming request through
// `sluice engine-scheduler` minus the same request straight to `sluice mock-engine` (speedup 1000, so
// engine time is ~negligible). Target (issue 6): p99 added < 1 ms.
//
// Run: node --conditions=sluice-src --import tsx bench/l3-sidecar-overhead.ts [requests]
// Needs nats-server and etcd (started on free ports by @sluice/testkit). Prints a markdown row.
import { type ChildProcess, spawn } from "node:child_process";
import { once as onceEvent } from "node:events";
import { Agent, request } from "node:http";
import os from "node:os";
import { freePort, startEtcd, startNats } from "@sluice/testkit";

const REQUESTS = Number(process.argv[2] ?? 3000);
const WARMUP = 300;
const BODY = JSON.stringify({ prompt: Array.from({ length: 64 }, (_, i) => 100 + i), max_tokens: 1 });

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
function once(base: string): Promise<number> {
  const url = new URL(`${base}/v1/completions`);
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = request(
      {
        hostname: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(BODY) },
      },
      (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
        res.resume();
        res.on("end", () => resolve(Number(process.hrtime.bigint() - start) / 1e6));
      },
    );
    req.on("error", reject);
    req.end(BODY);
  });
}

async function measure(base: string): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await once(base);
  const out: number[] = [];
  for (let i = 0; i < REQUESTS; i++) out.push(await once(base));
  return out.sort((a, b) => a - b);
}
const q = (s: number[], p: number) => s[Math.min(s.length - 1, Math.floor(s.length * p))]!;

/** Runs a Sluice command in its own Node process (as in production), so the three hops do not share one event loop. */
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
  "--speedup=1000",
]);
const sidecar = spawnCommand("@sluice/engine-scheduler", "runEngineScheduler", [
  ...common,
  `--port=${sidecarPort}`,
  "--id=bench-sidecar",
  "--worker-id=bench",
  `--engine-url=${engineUrl}`,
]);
try {
  await waitHealthy(`${engineUrl}/health`);
  await waitHealthy(`${sidecarUrl}/health`);
  // Interleave the two so background noise hits both alike.
  const direct1 = await measure(engineUrl);
  const via1 = await measure(sidecarUrl);
  const direct2 = await measure(engineUrl);
  const via2 = await measure(sidecarUrl);
  const direct = [...direct1, ...direct2].sort((a, b) => a - b);
  const via = [...via1, ...via2].sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(3);
  console.log(`direct   p50 ${f(q(direct, 0.5))} ms  p99 ${f(q(direct, 0.99))} ms`);
  console.log(`sidecar  p50 ${f(q(via, 0.5))} ms  p99 ${f(q(via, 0.99))} ms`);
  console.log(
    `\n| L3 sidecar added latency (idle, mock engine ×1000, separate processes) | ${REQUESTS * 2} req | p50 +${f(q(via, 0.5) - q(direct, 0.5))} ms | p99 +${f(q(via, 0.99) - q(direct, 0.99))} ms | target p99 < 1 ms | ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.versions.node} |`,
  );
} finally {
  const exits = [onceEvent(sidecar, "exit"), onceEvent(engine, "exit")];
  sidecar.kill("SIGTERM");
  engine.kill("SIGTERM");
  await Promise.all(exits);
  agent.destroy();
}
