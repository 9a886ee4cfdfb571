// `sluice up` starts a real local stack (nats-server, etcd, mock engines) and, on SIGTERM, stops
// everything it started: no process left behind, temp dirs removed.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const root = new URL("..", import.meta.url).pathname;
// The built CLI (`npm test` builds before testing): this is the artifact `npm start` runs, and its
// processes start far faster than through tsx on a 2-core CI machine.
const cliMain = join(root, "packages/cli/dist/main.js");

/** Pids of live processes whose command line or environment mentions `needle`. */
function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    for (const file of ["cmdline", "environ"]) {
      try {
        if (readFileSync(`/proc/${entry}/${file}`).includes(needle)) {
          // A zombie has an empty cmdline and is already gone for our purposes.
          found.push(Number(entry));
          break;
        }
      } catch {
        // the process ended while we looked, or is not ours to read
      }
    }
  }
  return found;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

const scratch = mkdtempSync(join(tmpdir(), "sluice-up-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

test("sluice up starts NATS, etcd, engines, sidecars, a router and an aggregator, and stops all of them on SIGTERM", {
  timeout: 240_000,
}, async () => {
  const stackTmp = join(scratch, "tmp");
  const stateFile = join(scratch, "state.json");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(stackTmp);
  const up = spawn(
    process.execPath,
    [
      cliMain,
      "up",
      "--engines",
      "2",
      "--no-demo",
      "--state-file",
      stateFile,
      "--lease-ttl",
      "2s",
      "--start-timeout",
      "120s",
    ],
    { env: { ...process.env, TMPDIR: stackTmp }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  up.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  up.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = exitOf(up);
  try {
    const state = await waitFor("the state file", 150_000, () => {
      if (up.exitCode !== null) throw new Error(`sluice up exited early (${up.exitCode}):\n${output}`);
      return existsSync(stateFile)
        ? (JSON.parse(readFileSync(stateFile, "utf8")) as Record<string, unknown>)
        : undefined;
    });
    assert.match(String(state.nats), /^nats:\/\/127\.0\.0\.1:\d+$/);
    assert.match(String(state.etcd), /^http:\/\/127\.0\.0\.1:\d+$/);
    for (const key of ["ingress", "router", "engine_scheduler", "engine", "aggregator"]) {
      assert.ok(Array.isArray(state[key]), `state.${key} is a list`);
    }
    const engines = state.engine as { id: string; url: string; metrics: string }[];
    assert.deepEqual(
      engines.map((e) => e.id),
      ["engine-0", "engine-1"],
    );
    const schedulers = state.engine_scheduler as {
      id: string;
      url: string;
      metrics: string;
      worker_id: string;
    }[];
    assert.deepEqual(
      schedulers.map((s) => s.worker_id),
      ["engine-0", "engine-1"],
    );
    const routers = state.router as { grpc: string; metrics: string }[];
    assert.equal(routers.length, 1);
    assert.match(routers[0]?.grpc ?? "", /^grpc:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((state.aggregator as unknown[]).length, 1);
    // A request through a sidecar reaches its engine and comes back.
    const completion = await fetch(`${schedulers[0]?.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "mock-llm", prompt: "hello", max_tokens: 3 }),
    });
    assert.equal(completion.status, 200);
    const body = (await completion.json()) as { usage: { completion_tokens: number } };
    assert.equal(body.usage.completion_tokens, 3);
    for (const p of [...schedulers, ...routers]) {
      assert.equal((await fetch(p.metrics)).status, 200, `${p.metrics} answers`);
    }
    for (const engine of engines) {
      const models = (await (await fetch(`${engine.url}/v1/models`)).json()) as { data: { id: string }[] };
      assert.equal(models.data[0]?.id, "mock-llm");
      const metrics = await (await fetch(engine.metrics)).text();
      assert.match(metrics, /vllm:num_requests_running/);
    }
    // Every process of the stack carries our temp dir (servers' data dirs) or up's pid (children).
    assert.ok(
      processesMentioning(stackTmp).length >= 2,
      "nats-server and etcd run from the stack's temp dir",
    );
    // 2 engines, 2 engine-schedulers, 1 router, 1 aggregator
    assert.ok(processesMentioning(`SLUICE_PARENT_PID=${up.pid}`).length >= 6, "every process runs");

    up.kill("SIGTERM");
    const { code } = await exited;
    assert.equal(code, 0, output);
    assert.deepEqual(processesMentioning(stackTmp), [], "no server left running");
    assert.deepEqual(
      processesMentioning(`SLUICE_PARENT_PID=${up.pid}`),
      [],
      "no sluice process left running",
    );
    // (tsx keeps its compile cache under TMPDIR too; only the stack's own dirs matter here)
    assert.deepEqual(
      readdirSync(stackTmp).filter((name) => name.startsWith("sluice-")),
      [],
      "temp dirs removed",
    );
    assert.equal(existsSync(stateFile), false, "state file removed");
    for (const engine of engines) {
      await assert.rejects(fetch(`${engine.url}/v1/models`), "engine no longer listening");
    }
  } finally {
    if (up.exitCode === null) {
      up.kill("SIGKILL");
      await exited;
    }
  }
});

test("sluice up rejects an invalid flag with exit code 2 naming it", { timeout: 60_000 }, async () => {
  const up = spawn(process.execPath, [cliMain, "up", "--engines", "lots"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  up.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const { code } = await exitOf(up);
  assert.equal(code, 2);
  assert.match(stderr, /engines/);
  assert.match(stderr, /lots/);
});
