// Proxy overhead of `sluice ingress` (issue 4): added p50/p99 latency at a fixed open-loop rate and the
// closed-loop maximum request rate, through the ingress vs straight to the same upstream, and vs nginx
// as a reverse proxy in front of that same upstream. Target: added p99 < 1 ms at 1 000 req/s.
//
// Every party is its own process: the fixed upstream (bench/ingress-fixed-upstream.ts, answers at
// once), the built CLI `node packages/cli/dist/main.js ingress` (real nats-server and etcd from
// @sluice/testkit, one engine registered in etcd, no router registered: engine choice falls back to
// the local least-in-flight pick, with the L1 decision and the decision events on every request;
// `--log-level error`, plus a second ingress at the default `info` to show what its per-request
// fallback warning costs), nginx (Debian package, 1 worker, upstream keep-alive) and the load client
// (bench/ingress-load-client.ts). The paths are measured interleaved, twice, so background noise
// hits them alike; percentiles are over the union of both rounds.
//
// Run: npx tsc -b && node --conditions=sluice-src --import tsx bench/ingress-proxy-overhead.ts
//      [--rate 1000] [--seconds 10] [--max-seconds 5] [--connections 32] [--rounds 2]
//      [--log-level error] [--no-info-log] [--cpu-prof DIR] [--quick]
// Needs nats-server, etcd and nginx on PATH (`apt-get install -y nginx`).

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { freePort, startEtcd, startNats } from "@sluice/testkit";
import { connect as connectNats } from "nats";
import {
  BENCH_MODEL,
  type IngressProcess,
  percentile,
  processCpuMs,
  registerEngines,
  runBenchScript,
  spawnBuiltIngress,
  startUpstream,
  stopAllSpawned,
} from "./ingress-bench-common.js";
import type { LoadClientResult } from "./ingress-load-client.js";
import { machineDescription, measuredAt, writeResultsSection } from "./results-section.js";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "1000" },
    seconds: { type: "string", default: "10" },
    "max-seconds": { type: "string", default: "5" },
    connections: { type: "string", default: "32" },
    rounds: { type: "string", default: "2" },
    "log-level": { type: "string", default: "error" },
    "no-info-log": { type: "boolean", default: false },
    "cpu-prof": { type: "string" },
    quick: { type: "boolean", default: false },
  },
});
const quick = values.quick === true;
const rate = Number(values.rate);
const seconds = quick ? 3 : Number(values.seconds);
const maxSeconds = quick ? 2 : Number(values["max-seconds"]);
const connections = Number(values.connections);
const rounds = quick ? 1 : Number(values.rounds);
if (![rate, seconds, maxSeconds, connections, rounds].every((n) => Number.isFinite(n) && n > 0)) {
  console.error("--rate, --seconds, --max-seconds, --connections and --rounds must be > 0");
  process.exit(2);
}
if (spawnSync("nginx", ["-v"]).error) {
  console.error("nginx is not installed: apt-get install -y nginx");
  process.exit(2);
}

const PREFIX = "/sluice/v1";
const PATH = "/v1/chat/completions";
const INGRESS = "sluice ingress";
const INGRESS_INFO = "sluice ingress, info log";
const withInfoLog = values["no-info-log"] !== true;

async function waitForPort(port: number, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port}`);
    await sleep(50);
  }
}

/** nginx in the foreground with a generated config under a temporary prefix. */
async function startNginx(upstreamUrl: string) {
  const dir = mkdtempSync(join(tmpdir(), "sluice-bench-nginx-"));
  chmodSync(dir, 0o755); // workers drop to an unprivileged user when started as root
  const port = await freePort();
  const upstream = new URL(upstreamUrl);
  const config = `
worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream engine {
    server ${upstream.hostname}:${upstream.port};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://engine;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`;
  writeFileSync(join(dir, "nginx.conf"), config);
  const child = spawn("nginx", ["-p", dir, "-c", join(dir, "nginx.conf"), "-g", "daemon off;"], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  try {
    await waitForPort(port, child, "nginx");
  } catch (error) {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const masterPid = child.pid as number;
  return {
    url: `http://127.0.0.1:${port}`,
    /** The worker processes (children of the master). */
    workerPids(): number[] {
      const text = readFileSync(`/proc/${masterPid}/task/${masterPid}/children`, "utf8").trim();
      return text === "" ? [] : text.split(/\s+/).map(Number);
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = once(child, "exit");
        child.kill("SIGQUIT");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function load(
  url: string,
  mode: "open" | "closed",
  runSeconds: number,
  extra: string[] = [],
): Promise<LoadClientResult> {
  const out = await runBenchScript("ingress-load-client.ts", [
    "--url",
    `${url}${PATH}`,
    "--mode",
    mode,
    "--rate",
    String(rate),
    "--seconds",
    String(runSeconds),
    "--connections",
    String(connections),
    ...extra,
  ]);
  const result = JSON.parse(out) as LoadClientResult;
  if (result.errors > 0) {
    throw new Error(`${result.errors} of ${result.sent} requests to ${url} failed (${result.firstError})`);
  }
  return result;
}

console.log(`machine: ${machineDescription()}`);
await using nats = await startNats({ jetstream: false });
await using etcd = await startEtcd();
let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
try {
  const upstream = await startUpstream(0);
  await registerEngines(etcd.endpoints, PREFIX, [{ workerId: "bench-engine", url: upstream.url }]);
  const spawnIngress = (id: string, logLevel: string) =>
    spawnBuiltIngress({
      id,
      natsUrl: nats.url,
      etcdEndpoints: etcd.endpoints,
      etcdPrefix: PREFIX,
      flags: ["--max-inflight", "100000", "--log-level", logLevel],
      nodeFlags: values["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${values["cpu-prof"]}`] : [],
    });
  // The measured ingress logs errors only; a second one at the operator default (info) shows what
  // logging costs — without a router every request logs the fallback warning (router-selector.ts).
  const ingress = await spawnIngress("bench-ingress", values["log-level"] as string);
  const ingressInfo = withInfoLog ? await spawnIngress("bench-ingress-info", "info") : undefined;
  nginx = await startNginx(upstream.url);
  // CPU is read from the process that does the path's work: the upstream itself for "direct" (the
  // baseline a Node HTTP exchange costs), the ingress, nginx's worker.
  const targets: { name: string; url: string; cpuPids: () => number[]; proc?: IngressProcess }[] = [
    { name: "direct", url: upstream.url, cpuPids: () => [upstream.pid] },
    { name: INGRESS, url: ingress.url, cpuPids: () => [ingress.pid], proc: ingress },
    ...(ingressInfo
      ? [{ name: INGRESS_INFO, url: ingressInfo.url, cpuPids: () => [ingressInfo.pid], proc: ingressInfo }]
      : []),
    { name: "nginx", url: nginx.url, cpuPids: nginx.workerPids },
  ];

  // An ingress learns the engine from its etcd watch: wait until each forwards.
  for (const t of targets.filter((x) => x.proc)) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const res = await fetch(`${t.url}${PATH}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: BENCH_MODEL, messages: [{ role: "user", content: "hi" }] }),
      }).catch(() => undefined);
      const status = res?.status;
      await res?.text();
      if (status === 200) break;
      if (Date.now() > deadline) throw new Error(`${t.name} never forwarded (last status ${status})`);
      await sleep(200);
    }
  }
  console.log("warming up (closed loop, 2 s per path)…");
  for (const t of targets) await load(t.url, "closed", quick ? 1 : 2);

  // What the ingress publishes on NATS per request (each publish made in its own tick is one socket
  // write): decision events and ingress.state snapshots, counted while the ingress path is measured.
  const observer = await connectNats({ servers: nats.url });
  let counting = false;
  const published = new Map<string, number>();
  observer.subscribe("sluice.v1.default.>", {
    callback: (_err, msg) => {
      if (!counting) return;
      const kind = msg.subject.includes(".events.")
        ? "decision events"
        : msg.subject.split(".").slice(3).join(".");
      published.set(kind, (published.get(kind) ?? 0) + 1);
    },
  });
  const openLatencies = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  const cpuMsOf = new Map<string, number>();
  const wallMsOf = new Map<string, number>();
  const logLinesOf = new Map<string, number>();
  for (let round = 1; round <= rounds; round++) {
    for (const t of targets) {
      const pids = t.cpuPids();
      const cpuNow = () => pids.reduce((sum, pid) => sum + processCpuMs(pid), 0);
      const cpu0 = cpuNow();
      const lines0 = t.proc?.logLines() ?? 0;
      const wall0 = performance.now();
      counting = t.name === INGRESS;
      const r = await load(t.url, "open", seconds);
      counting = false;
      cpuMsOf.set(t.name, (cpuMsOf.get(t.name) ?? 0) + cpuNow() - cpu0);
      wallMsOf.set(t.name, (wallMsOf.get(t.name) ?? 0) + performance.now() - wall0);
      if (t.proc) logLinesOf.set(t.name, (logLinesOf.get(t.name) ?? 0) + t.proc.logLines() - lines0);
      openLatencies.get(t.name)?.push(...r.latenciesMs);
      const sorted = [...r.latenciesMs].sort((a, b) => a - b);
      console.log(
        `round ${round} open ${rate}/s ${t.name.padEnd(24)} ${r.ok} ok, achieved ${r.achievedPerS.toFixed(0)}/s, p50 ${percentile(sorted, 0.5).toFixed(3)} ms, p99 ${percentile(sorted, 0.99).toFixed(3)} ms (client schedule lag p99 ${r.scheduleLagP99Ms.toFixed(2)} ms)`,
      );
    }
  }
  const openRequests = rate * seconds * rounds;
  await observer.close();
  const natsPerRequest = [...published]
    .map(([kind, n]) => `${(n / openRequests).toFixed(2)} ${kind}`)
    .join(", ");

  const maxRate = new Map<string, LoadClientResult>();
  for (const t of targets) {
    const r = await load(t.url, "closed", maxSeconds);
    maxRate.set(t.name, r);
    const sorted = [...r.latenciesMs].sort((a, b) => a - b);
    console.log(
      `closed loop ${connections} connections ${t.name.padEnd(24)} ${r.achievedPerS.toFixed(0)} req/s, p50 ${percentile(sorted, 0.5).toFixed(3)} ms, p99 ${percentile(sorted, 0.99).toFixed(3)} ms`,
    );
  }

  const stats = (name: string) => {
    const sorted = [...(openLatencies.get(name) ?? [])].sort((a, b) => a - b);
    return {
      n: sorted.length,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      p999: percentile(sorted, 0.999),
    };
  };
  const direct = stats("direct");
  const f = (v: number) => v.toFixed(3);
  const added = (v: number, base: number) => `${v - base >= 0 ? "+" : ""}${f(v - base)}`;
  const rows = targets.map((t) => {
    const s = stats(t.name);
    const closed = maxRate.get(t.name) as LoadClientResult;
    const closedSorted = [...closed.latenciesMs].sort((a, b) => a - b);
    return `| ${t.name} | ${s.n} | ${f(s.p50)} | ${f(s.p99)} | ${f(s.p999)} | ${t.name === "direct" ? "—" : added(s.p50, direct.p50)} | ${t.name === "direct" ? "—" : added(s.p99, direct.p99)} | ${closed.achievedPerS.toFixed(0)} | ${f(percentile(closedSorted, 0.99))} |`;
  });
  const ingressAdded = stats(INGRESS).p99 - direct.p99;
  const nginxAdded = stats("nginx").p99 - direct.p99;
  const verdict = ingressAdded < 1 ? "met" : "NOT met";
  const cpuLines = targets.map((t) => {
    const cpuMs = cpuMsOf.get(t.name) ?? 0;
    const who = t.name === "direct" ? "the upstream alone" : t.name === "nginx" ? "nginx's worker" : t.name;
    const logs = t.proc
      ? `, ${((logLinesOf.get(t.name) ?? 0) / openRequests).toFixed(2)} log lines per request`
      : "";
    return `- ${t.name} path, ${who}: CPU ${((100 * cpuMs) / (wallMsOf.get(t.name) ?? 1)).toFixed(0)} % of one core, ${((cpuMs * 1000) / openRequests).toFixed(0)} µs CPU per request (10 ms ticks)${logs}.`;
  });
  const command = `node --conditions=sluice-src --import tsx bench/ingress-proxy-overhead.ts${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(" ")}` : ""}`;
  const markdown = `## Ingress proxy overhead (issue 4)

Added latency of \`sluice ingress\` (the built CLI, its own process, real nats-server + etcd, one
engine in etcd, no router registered so the engine is picked by the local least-in-flight fallback;
the L1 decision, metrics and NATS decision events run on every request; \`--log-level ${values["log-level"]}\`;
"${INGRESS_INFO}" is a second one at the default \`--log-level info\`)
versus the same upstream straight, and versus nginx ${nginxVersion()} (1 worker process, upstream
keep-alive, \`proxy_buffering off\`). Upstream: a fixed OpenAI-shaped non-streaming chat completion
answered at once (bench/ingress-fixed-upstream.ts, own process). Client: its own process, keep-alive;
open loop at ${rate} req/s for ${seconds} s × ${rounds} round(s) per path, interleaved; closed loop with
${connections} connections for ${maxSeconds} s. Everything shares the same ${machineDescription()}.

| path | requests (open loop) | p50 ms | p99 ms | p99.9 ms | added p50 ms | added p99 ms | max req/s (closed loop) | closed-loop p99 ms |
|---|---|---|---|---|---|---|---|---|
${rows.join("\n")}

- Target added p99 < 1 ms at ${rate} req/s: **${verdict}** (ingress ${added(ingressAdded, 0)} ms, nginx ${added(nginxAdded, 0)} ms).
${cpuLines.join("\n")}
- NATS messages the measured ingress published per request: ${natsPerRequest || "none"} (each publish in its own event-loop tick costs one socket write).
- The closed-loop maximum is bounded by the 2-core machine shared by client, proxy and upstream: it ranks the proxies, it is not a capacity figure.

Command: \`npx tsc -b && ${command}\` — measured ${measuredAt()}.`;
  console.log(`\n${markdown}`);
  writeResultsSection("ingress-proxy", markdown);
} finally {
  await Promise.allSettled([stopAllSpawned(), nginx?.stop()]);
}

function nginxVersion(): string {
  const out = spawnSync("nginx", ["-v"], { encoding: "utf8" });
  return /nginx\/(\S+)/.exec(out.stderr)?.[1] ?? "?";
}
