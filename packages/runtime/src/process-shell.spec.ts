import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defineSchema } from "./config-schema.js";
import { maskUrlCredentials, startProcessShell } from "./process-shell.js";

class Exited extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

function harness(argv: string[], env: Record<string, string> = {}) {
  const out = { stdout: "", stderr: "" };
  const schema = defineSchema({ "hold-timeout": { type: "duration", defaultMs: 100, description: "Hold." } });
  const run = startProcessShell({
    role: "router",
    schema,
    argv,
    env,
    stdout: { write: (t: string) => (out.stdout += t) },
    stderr: { write: (t: string) => (out.stderr += t) },
    exit: (code) => {
      throw new Exited(code);
    },
  });
  return { run, out };
}

describe("startProcessShell before start-up", () => {
  it("prints help with common and role settings, then exits 0", async () => {
    const { run, out } = harness(["--help"]);
    await assert.rejects(run, (e: unknown) => e instanceof Exited && e.code === 0);
    assert.match(out.stdout, /^Usage: sluice router \[options\]/);
    assert.ok(out.stdout.includes("--hold-timeout <duration>"));
    assert.ok(out.stdout.includes("--etcd-endpoints"));
    assert.equal(out.stderr, "");
  });

  it("turns a ConfigError into its message on stderr and exit code 2", async () => {
    const { run, out } = harness([], { SLUICE_HOLD_TIMEOUT: "later" });
    await assert.rejects(run, (e: unknown) => e instanceof Exited && e.code === 2);
    assert.equal(
      out.stderr,
      'sluice router: invalid value "later" for setting "hold-timeout" from env SLUICE_HOLD_TIMEOUT: expected a duration with a unit (250ms, 5s, 1m)\n',
    );
  });
});

describe("maskUrlCredentials", () => {
  it("masks passwords in every URL and leaves others alone", () => {
    assert.equal(
      maskUrlCredentials("nats://u:secret@a:4222,nats://b:4222,tls://x:y@c"),
      "nats://u:***@a:4222,nats://b:4222,tls://x:***@c",
    );
    assert.equal(maskUrlCredentials("http://127.0.0.1:2379"), "http://127.0.0.1:2379");
    assert.equal(maskUrlCredentials("plain"), "plain");
  });
});
