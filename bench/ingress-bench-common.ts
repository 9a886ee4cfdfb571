// Shared by the ingress benchmarks: the built `sluice ingress` CLI in its own process, the fixed
// upstream in its own process, engine registrations written to etcd as engines write them, a node
// script runner, per-process CPU time from /proc, and percentiles.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "@sluice/testkit";
import { Etcd3 } from "etcd3";

export const REPO_ROOT = new URL("..", import.meta.url).pathname;
export const CLI_MAIN = `${REPO_ROOT}packages/cli/dist/main.js`;
export const BENCH_MODEL = "bench-llm";

export function requireBuiltCli(): void {
  if (!existsSync(CLI_MAIN)) {
    throw new Error(`${CLI_MAIN} is missing: build first with \`npx tsc -b\``);
  }
}

export interface BenchProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** SIGTERM, then SIGKILL after 5 s; resolves when it exited. */
  stop(): Promise<void>;
}

const spawned = new Set<BenchProcess>();

function track(p: BenchProcess): BenchProcess {
  spawned.add(p);
  p.child.once("exit", () => spawned.delete(p));
  return p;
}

/** Stops every process these helpers started and that is still running (benchmarks call it in `finally`). */
export async function stopAllSpawned(): Promise<void> {
  await Promise.allSettled([...spawned].map((p) => p.stop()));
}

function wrap(child: ChildProcess): BenchProcess {
  if (child.pid === undefined) throw new Error("process did not start");
  return {
    child,
    pid: child.pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves with the first stdout line matching `pattern` (its match), rejects on exit or timeout. */
function waitForLine(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 60_000) {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  return new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not start within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onExit = (code: number | null) => reject(new Error(`${what} exited with ${code} during start-up`));
    child.once("exit", onExit);
    lines.on("line", (line) => {
      const match = pattern.exec(line);
      if (match) {
        clearTimeout(timer);
        child.off("exit", onExit);
        // Closing readline pauses the stream: resume it so later output keeps draining.
        lines.close();
        child.stdout?.resume();
        resolve(match);
      }
    });
  });
}

export interface UpstreamProcess extends BenchProcess {
  readonly url: string;
}

export async function startUpstream(delayMs: number): Promise<UpstreamProcess> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      `${REPO_ROOT}bench/ingress-fixed-upstream.ts`,
      "--port",
      "0",
      "--delay-ms",
      String(delayMs),
    ],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] },
  );
  const proc = track(wrap(child));
  const match = await waitForLine(child, /^ready (\S+)$/, "upstream").catch(async (error: unknown) => {
    await proc.stop();
    throw error;
  });
  return { ...proc, url: match[1] as string };
}

export interface IngressProcess extends BenchProcess {
  readonly id: string;
  readonly url: string;
  readonly adminUrl: string;
  /** Log lines written so far (stdout is always drained so the process never blocks on it). */
  logLines(): number;
}

export interface SpawnIngressOptions {
  id: string;
  natsUrl: string;
  etcdEndpoints: readonly string[];
  etcdPrefix: string;
  /** Extra `sluice ingress` flags. */
  flags?: readonly string[];
  /** Extra node flags (e.g. --cpu-prof). */
  nodeFlags?: readonly string[];
}

/**
 * `node packages/cli/dist/main.js ingress …`: the built CLI, as an operator runs it. Ports are chosen
 * here (not logged back), so any `--log-level` works; ready when its admin `/readyz` answers 200.
 */
export async function spawnBuiltIngress(o: SpawnIngressOptions): Promise<IngressProcess> {
  requireBuiltCli();
  const [port, adminPort] = [await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    [
      ...(o.nodeFlags ?? []),
      CLI_MAIN,
      "ingress",
      "--id",
      o.id,
      "--port",
      String(port),
      "--admin-port",
      String(adminPort),
      "--nats-url",
      o.natsUrl,
      "--etcd-endpoints",
      o.etcdEndpoints.join(","),
      "--etcd-prefix",
      o.etcdPrefix,
      "--shutdown-timeout",
      "1s",
      ...(o.flags ?? []),
    ],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] },
  );
  const proc = track(wrap(child));
  let lines = 0;
  child.stdout?.on("data", (chunk: Buffer) => {
    for (const byte of chunk) if (byte === 10) lines += 1;
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`ingress ${o.id} exited with ${child.exitCode} during start-up`);
    const status = await fetch(`${adminUrl}/readyz`).then(
      (r) => r.text().then(() => r.status),
      () => 0,
    );
    if (status === 200) break;
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`ingress ${o.id} not ready within 60 s (last /readyz status ${status})`);
    }
    await sleep(100);
  }
  return { ...proc, id: o.id, url: `http://127.0.0.1:${port}`, adminUrl, logLines: () => lines };
}

/** Writes `engines/{worker_id}` registrations (no lease: they live as long as the benchmark's etcd). */
export async function registerEngines(
  etcdEndpoints: readonly string[],
  prefix: string,
  engines: readonly { workerId: string; url: string; kvTotalBlocks?: number }[],
): Promise<void> {
  const etcd = new Etcd3({ hosts: [...etcdEndpoints] });
  try {
    for (const e of engines) {
      await etcd.put(`${prefix}/engines/${e.workerId}`).value(
        JSON.stringify({
          worker_id: e.workerId,
          model: BENCH_MODEL,
          engine_url: e.url,
          scheduler_url: e.url,
          block_size: 16,
          kv_total_blocks: e.kvTotalBlocks ?? 10_000_000,
          max_num_seqs: 100_000,
          max_num_batched_tokens: 8192,
        }),
      );
    }
  } finally {
    etcd.close();
  }
}

/** Runs a TypeScript file of bench/ in its own node process; resolves with its stdout. */
export async function runBenchScript(file: string, args: readonly string[]): Promise<string> {
  const child = spawn(process.execPath, ["--import", "tsx", `${REPO_ROOT}bench/${file}`, ...args], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`bench/${file} exited with ${code}`);
  return out;
}

/** User + system CPU time of a process so far, ms (Linux /proc; clock ticks of 10 ms). */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may contain spaces) start at ") ".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) * 10;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return percentile(sorted, 0.5);
}

/**
 * This process's CPU time so far, µs. Averages of pure costs use it rather than wall time: on a shared,
 * busy machine wall time includes every other process's time slices, CPU time does not.
 */
export function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}
