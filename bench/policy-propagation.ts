// Policy propagation (target p99 < 100 ms): etcd put of a new policy revision → applied in every one
// of 10 watcher processes. Ten child processes each run `watchPolicies` in their own etcd session and
// report each applied revision with a timestamp (`performance.timeOrigin + performance.now()`, one
// system clock for all processes on this host). The parent writes 200 changes one after another and
// takes, per change, the time from just before the put to the LAST process applying it.
// Prints a markdown row. Run: node --conditions=sluice-src --import tsx bench/policy-propagation.ts
// Env: POLICY_BENCH_PROCESSES (default 10), POLICY_BENCH_CHANGES (default 200).

import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import {
  createEtcdClient,
  parsePolicyText,
  policyKeys,
  serializePolicy,
  watchPolicies,
} from "@sluice/runtime";
import { startEtcd } from "@sluice/testkit";
import { environment, percentile } from "./l2-common.js";

const PREFIX = "/bench/v1";
const MODEL = "bench-model";
const now = (): number => performance.timeOrigin + performance.now();

async function child(endpoints: string[]): Promise<void> {
  const client = createEtcdClient(endpoints, 2_000);
  const watcher = await watchPolicies({
    client,
    prefix: PREFIX,
    onApplied: (change) => {
      if (change.model === MODEL) process.stdout.write(`applied ${change.revision} ${now()}\n`);
    },
  });
  process.stdout.write("ready\n");
  // The parent closes stdin to stop us.
  process.stdin.resume();
  process.stdin.on("end", () => {
    void watcher.close().then(() => {
      client.close();
      process.exit(0);
    });
  });
}

interface Worker {
  readonly proc: ChildProcess;
  /** Applied revision → timestamp. */
  readonly applied: Map<number, number>;
  ready: boolean;
}

async function parent(): Promise<void> {
  const processes = Number(process.env.POLICY_BENCH_PROCESSES ?? 10);
  const changes = Number(process.env.POLICY_BENCH_CHANGES ?? 200);
  await using etcd = await startEtcd();
  const client = createEtcdClient(etcd.endpoints, 2_000);
  const self = fileURLToPath(import.meta.url);
  const workers: Worker[] = [];
  for (let i = 0; i < processes; i++) {
    const proc = spawn(
      process.execPath,
      ["--conditions=sluice-src", "--import", "tsx", self, "--child", etcd.endpoints.join(",")],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    const worker: Worker = { proc, applied: new Map(), ready: false };
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      if (line === "ready") worker.ready = true;
      const m = /^applied (\d+) ([\d.]+)$/.exec(line);
      if (m) worker.applied.set(Number(m[1]), Number(m[2]));
    });
    workers.push(worker);
  }
  const wait = async (what: string, ok: () => boolean, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 1));
    }
  };
  try {
    await wait("watchers ready", () => workers.every((w) => w.ready), 120_000);
    const key = policyKeys(PREFIX).enforcing(MODEL);
    const latenciesMs: number[] = [];
    for (let i = 0; i < changes; i++) {
      const value = serializePolicy(parsePolicyText(`ingress: {maxInflight: ${i + 1}}`, { model: MODEL }));
      const startedAt = now();
      const res = await client.put(key).value(value).exec();
      const revision = Number(res.header.revision);
      await wait(
        `revision ${revision} everywhere`,
        () => workers.every((w) => w.applied.has(revision)),
        10_000,
      );
      const last = Math.max(...workers.map((w) => w.applied.get(revision) as number));
      latenciesMs.push(last - startedAt);
      await new Promise((r) => setTimeout(r, 10)); // a change at a time, as an operator makes them
    }
    latenciesMs.sort((a, b) => a - b);
    const f = (ms: number) => ms.toFixed(1);
    console.log(`Environment: ${environment()}`);
    console.log("| benchmark | processes | changes | p50 ms | p99 ms | max ms | target |");
    console.log("|---|---|---|---|---|---|---|");
    console.log(
      `| policy propagation (etcd put → applied in every process) | ${processes} child processes | ${changes} | ${f(percentile(latenciesMs, 0.5))} | ${f(percentile(latenciesMs, 0.99))} | ${f(latenciesMs.at(-1) as number)} | p99 < 100 ms |`,
    );
  } finally {
    for (const w of workers) w.proc.stdin?.end();
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.proc.exitCode !== null) return resolve();
            const kill = setTimeout(() => w.proc.kill("SIGKILL"), 5_000);
            w.proc.once("exit", () => {
              clearTimeout(kill);
              resolve();
            });
          }),
      ),
    );
    client.close();
  }
}

const childIndex = process.argv.indexOf("--child");
if (childIndex !== -1) await child((process.argv[childIndex + 1] ?? "").split(","));
else await parent();
