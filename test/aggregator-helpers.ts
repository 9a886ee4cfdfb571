// Shared helpers of the aggregator / events / status tests.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";

export const ROOT = new URL("..", import.meta.url).pathname;

export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export function sink() {
  let text = "";
  return { write: (s: string) => (text += s), text: () => text };
}

/** `sluice aggregator` as a child process (so a test can SIGKILL it). */
export function spawnAggregator(argv: readonly string[]): ChildProcess & { stopped: Promise<unknown> } {
  const child = spawn(
    process.execPath,
    [
      "--conditions=sluice-src",
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      `import { runAggregator } from "@sluice/aggregator";
       process.exitCode = await runAggregator(${JSON.stringify(argv)}, {});`,
    ],
    { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] },
  );
  return Object.assign(child, { stopped: once(child, "exit") });
}

/** Runs `sluice <args>` (the CLI from sources) and collects its output and exit code. */
export async function runSluice(
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    process.execPath,
    ["--conditions=sluice-src", "--import", "tsx", `${ROOT}packages/cli/src/main.ts`, ...args],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}
