// The process shell as an operator meets it: a real child process, real signals, real exit codes.

import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";

const FIXTURE = new URL("./fixtures/process-shell-fixture.ts", import.meta.url).pathname;

interface LogLine {
  msg?: string;
  level?: string;
  step?: string;
  readyzStatus?: number;
  admin?: string;
  [k: string]: unknown;
}

interface Started {
  child: ChildProcess;
  lines: LogLine[];
  stderr: () => string;
  exit: Promise<number | null>;
  waitFor: (msg: string) => Promise<LogLine>;
}

function start(args: string[], env: Record<string, string> = {}): Started {
  const child = spawn(process.execPath, ["--conditions=sluice-src", "--import", "tsx", FIXTURE, ...args], {
    env: { PATH: process.env.PATH ?? "", SLUICE_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: LogLine[] = [];
  const waiters: { msg: string; resolve: (l: LogLine) => void }[] = [];
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (c: string) => {
    stderr += c;
  });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { msg: text };
    }
    lines.push(line);
    for (const w of waiters.filter((x) => x.msg === line.msg)) w.resolve(line);
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    lines,
    stderr: () => stderr,
    exit,
    waitFor: (msg) =>
      new Promise((resolve, reject) => {
        const seen = lines.find((l) => l.msg === msg);
        if (seen) return resolve(seen);
        waiters.push({ msg, resolve });
        void exit.then((code) => reject(new Error(`exited ${code} before "${msg}"; stderr: ${stderr}`)));
      }),
  };
}

function steps(lines: LogLine[]): string[] {
  return lines.filter((l) => l.msg === "fixture step").map((l) => l.step as string);
}

describe("process shell in a child process", { timeout: 240_000 }, () => {
  it("exits 2 naming file and field for a malformed config file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-shell-"));
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "natsUrl: nats://127.0.0.1:4222\nleaseTtl: five\n");
    const p = start(["--config", file]);
    assert.equal(await p.exit, 2);
    assert.match(p.stderr(), /sluice fixture: invalid value "five" for setting "lease-ttl"/);
    assert.ok(p.stderr().includes(file), p.stderr());
    assert.ok(p.stderr().includes('key "leaseTtl"'), p.stderr());
    assert.equal(p.lines.length, 0, "nothing is logged before the config is valid");
  });

  it("exits 2 on an unknown flag and on an invalid role setting from env", async () => {
    const unknown = start(["--nats-ulr", "x"]);
    assert.equal(await unknown.exit, 2);
    assert.match(unknown.stderr(), /unknown flag --nats-ulr \(did you mean --nats-url\?\)/);
    const badEnv = start([], { SLUICE_MAX_INFLIGHT: "0" });
    assert.equal(await badEnv.exit, 2);
    assert.match(badEnv.stderr(), /env SLUICE_MAX_INFLIGHT: expected an integer ≥ 1/);
  });

  it("prints help with common and role settings and exits 0", async () => {
    const p = start(["--help"]);
    assert.equal(await p.exit, 0);
    const help = p.lines.map((l) => l.msg).join("\n");
    assert.match(help, /^Usage: sluice fixture \[options\]/);
    for (const flag of ["--nats-url", "--shutdown-timeout", "--max-inflight", "SLUICE_LOG_LEVEL"]) {
      assert.ok(help.includes(flag), flag);
    }
  });

  it("on SIGTERM runs the phases in order, is unready while draining, and exits 0", async () => {
    const p = start(["--max-inflight", "3"], { FIXTURE_DRAIN_MS: "100" });
    const ready = await p.waitFor("fixture ready");
    assert.equal(ready.maxInflight, 3);
    const readyz = await fetch(`${ready.admin}/readyz`);
    assert.equal(readyz.status, 200);
    p.child.kill("SIGTERM");
    assert.equal(await p.exit, 0, p.stderr());
    assert.deepEqual(steps(p.lines), ["stop-accepting", "drain", "release", "close"]);
    assert.equal(p.lines.find((l) => l.step === "drain")?.readyzStatus, 503);
    const done = p.lines.find((l) => l.msg === "shutdown complete");
    assert.equal(done?.exitCode, 0);
    assert.equal(done?.drainTimedOut, false);
  });

  it("exits 1 when draining hits the shutdown-timeout bound, still releasing and closing", async () => {
    const p = start(["--shutdown-timeout", "300ms"], { FIXTURE_DRAIN_MS: "600000" });
    await p.waitFor("fixture ready");
    p.child.kill("SIGTERM");
    assert.equal(await p.exit, 1, p.stderr());
    assert.deepEqual(steps(p.lines), ["stop-accepting", "drain", "release", "close"]);
    assert.equal(p.lines.find((l) => l.msg === "shutdown complete")?.drainTimedOut, true);
  });

  it("a second signal forces exit 1 during a long drain", async () => {
    const p = start([], { FIXTURE_DRAIN_MS: "600000", SLUICE_SHUTDOWN_TIMEOUT: "10m" });
    await p.waitFor("fixture ready");
    p.child.kill("SIGTERM");
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (steps(p.lines).includes("drain")) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    p.child.kill("SIGINT");
    assert.equal(await p.exit, 1);
    assert.ok(p.lines.some((l) => l.msg === "second signal during shutdown; exiting now"));
  });

  it("logs an uncaught exception as fatal and exits 1 after cleanup", async () => {
    const p = start([], { FIXTURE_THROW: "1" });
    assert.equal(await p.exit, 1, p.stderr());
    const fatal = p.lines.find((l) => l.level === "fatal");
    assert.match(String((fatal?.err as { message?: string } | undefined)?.message), /fixture bug/);
    assert.deepEqual(steps(p.lines), ["stop-accepting", "drain", "release", "close"]);
  });
});
