// `sluice policy` as an operator runs it: a child process against a real etcd, checked by exit code,
// output and what lands in etcd (and in a watcher of another session).

import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEtcdClient, type PolicyWatcher, policyKeys, watchPolicies } from "@sluice/runtime";
import { type EtcdServer, freePort, startEtcd } from "@sluice/testkit";
import type { Etcd3 } from "etcd3";

const ROOT = new URL("..", import.meta.url).pathname;
const PREFIX = "/policy-cli-test/v1";
const keys = policyKeys(PREFIX);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  elapsedMs: number;
}

let etcdServer: EtcdServer;
let client: Etcd3;
let watcher: PolicyWatcher;
let dir: string;

/** Runs `sluice policy <args>` in a child process with only our etcd settings in its env. */
function sluicePolicy(args: readonly string[], endpoints = etcdServer.endpoints.join(",")): Promise<Run> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  env.SLUICE_ETCD_ENDPOINTS = endpoints;
  env.SLUICE_ETCD_PREFIX = PREFIX;
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--conditions=sluice-src", "--import", "tsx", "packages/cli/src/main.ts", "policy", ...args],
      { cwd: ROOT, env, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        resolve({ code, stdout, stderr, elapsedMs: Date.now() - started });
      },
    );
  });
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

before(async () => {
  etcdServer = await startEtcd();
  client = createEtcdClient(etcdServer.endpoints, 2_000);
  watcher = await watchPolicies({ client, prefix: PREFIX });
  dir = mkdtempSync(join(tmpdir(), "sluice-policy-cli-"));
});

after(async () => {
  await watcher?.close();
  client?.close();
  await etcdServer?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe("sluice policy", () => {
  it("set refuses an invalid file with exit 2, naming the field, and writes nothing", async () => {
    const bad = file(
      "bad.yaml",
      "classes:\n  - name: critical\n  - name: standard\n    ttftObjectiveMs: fast\nfailMode: LOOSE\n",
    );
    const r = await sluicePolicy(["set", "-f", bad, "--model", "llama"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /classes\[1\]\.ttftObjectiveMs: "fast" is not a number/);
    assert.match(r.stderr, /failMode: "LOOSE" is not one of FAIL_MODE_UNSPECIFIED/);
    assert.equal(await client.get(keys.enforcing("llama")).string(), null);

    const range = await sluicePolicy([
      "validate",
      "-f",
      file("range.yaml", "ingress:\n  kvOvercommit: -1\n"),
    ]);
    assert.equal(range.code, 2);
    assert.match(range.stderr, /ingress\.kvOvercommit: must be a finite number ≥ 0, got -1/);
  });

  it("set stores a valid file, prints the revision, and a watcher in another session applies it", async () => {
    const r = await sluicePolicy([
      "set",
      "-f",
      file("v1.yaml", "ingress:\n  kvOvercommit: 1.5\n"),
      "--model",
      "llama",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { revision: number; key: string };
    assert.equal(out.key, keys.enforcing("llama"));
    await until("watcher applied the CLI's write", () => watcher.current("llama").revision === out.revision);
    assert.equal(watcher.current("llama").policy.ingress.kvOvercommit, 1.5);

    const get = await sluicePolicy(["get", "--model", "llama", "--json"]);
    assert.equal(get.code, 0, get.stderr);
    const shown = JSON.parse(get.stdout) as {
      stored: { revision: number; valid: boolean };
      effective: { source: string; revision: number; policy: { ingress: { kvOvercommit: number } } };
    };
    assert.equal(shown.stored.revision, out.revision);
    assert.equal(shown.effective.source, "model");
    assert.equal(shown.effective.policy.ingress.kvOvercommit, 1.5);
  });

  it("takes the model from the file when --model is omitted", async () => {
    const r = await sluicePolicy([
      "set",
      "-f",
      file("named.yaml", "model: mistral\ningress: {maxInflight: 7}\n"),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`stored ${keys.enforcing("mistral")} at revision \\d+`));
    await until("mistral applied", () => watcher.current("mistral").policy.ingress.maxInflight === 7);
    const reserved = await sluicePolicy(["get", "--model", "_shadow"]);
    assert.equal(reserved.code, 2);
  });

  it("diff lists the changed fields between stored and file", async () => {
    const next = file(
      "v2.yaml",
      "ingress:\n  kvOvercommit: 2\n  maxInflight: 100\nfailMode: FAIL_MODE_OPEN\n",
    );
    const r = await sluicePolicy(["diff", "-f", next, "--model", "llama"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").slice(2);
    assert.deepEqual(lines, [
      '+ failMode: "FAIL_MODE_OPEN"',
      "~ ingress.kvOvercommit: 1.5 -> 2",
      "+ ingress.maxInflight: 100",
    ]);
  });

  it("history lists the revisions and rollback --to restores an earlier one", async () => {
    const v2 = await sluicePolicy([
      "set",
      "-f",
      file("v2b.yaml", "ingress: {kvOvercommit: 2}\n"),
      "--model",
      "llama",
      "--json",
    ]);
    assert.equal(v2.code, 0, v2.stderr);
    const v2Rev = (JSON.parse(v2.stdout) as { revision: number }).revision;

    const h = await sluicePolicy(["history", "--model", "llama", "--json"]);
    assert.equal(h.code, 0, h.stderr);
    const history = JSON.parse(h.stdout) as {
      end: string;
      revisions: { revision: number; version: number; document: { ingress: { kvOvercommit: number } } }[];
    };
    assert.equal(history.end, "created");
    assert.deepEqual(
      history.revisions.map((x) => [x.version, x.document.ingress.kvOvercommit]),
      [
        [2, 2],
        [1, 1.5],
      ],
    );
    assert.equal(history.revisions[0]?.revision, v2Rev);
    const v1Rev = history.revisions[1]?.revision as number;

    const rb = await sluicePolicy(["rollback", "--to", String(v1Rev), "--model", "llama", "--json"]);
    assert.equal(rb.code, 0, rb.stderr);
    const restored = JSON.parse(rb.stdout) as { revision: number; restoredRevision: number };
    assert.equal(restored.restoredRevision, v1Rev);
    await until(
      "watcher applied the rollback",
      () => watcher.current("llama").revision === restored.revision,
    );
    assert.equal(watcher.current("llama").policy.ingress.kvOvercommit, 1.5);

    // Compaction removes history: rollback to before it fails with exit 1 and says why.
    await client.kv.compact({ revision: String(restored.revision) });
    const gone = await sluicePolicy(["rollback", "--to", String(v1Rev), "--model", "llama"]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /compacted/);
    const after = await sluicePolicy(["history", "--model", "llama"]);
    assert.equal(after.code, 0, after.stderr);
    assert.match(after.stdout, /compaction/);
  });

  it("shadow stores, shows and clears a candidate beside the enforcing policy", async () => {
    const set = await sluicePolicy([
      "shadow",
      "-f",
      file("s.yaml", "ingress: {kvOvercommit: 3}\n"),
      "--model",
      "llama",
    ]);
    assert.equal(set.code, 0, set.stderr);
    await until("shadow applied", () => watcher.shadow("llama")?.policy.ingress.kvOvercommit === 3);
    assert.equal(watcher.current("llama").policy.ingress.kvOvercommit, 1.5);
    const clear = await sluicePolicy(["shadow", "--clear", "--model", "llama"]);
    assert.equal(clear.code, 0, clear.stderr);
    await until("shadow cleared", () => watcher.shadow("llama") === undefined);
  });

  it("exits 3 naming the endpoints when etcd is unreachable", async () => {
    const closedPort = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    const r = await sluicePolicy(["get"], closedPort);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`etcd unreachable at ${closedPort.replace(/[.]/g, "\\.")}`));
    // The connect deadline is 3 s; allow generous slack for a loaded machine.
    assert.ok(r.elapsedMs < 20_000, `took ${r.elapsedMs} ms`);
  });

  it("has --help for every subcommand and exit 2 for usage errors", async () => {
    const help = await sluicePolicy(["rollback", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--to/);
    assert.match(help.stdout, /3 etcd unreachable/);
    assert.equal((await sluicePolicy(["frobnicate"])).code, 2);
    assert.equal((await sluicePolicy(["set", "--model", "llama"])).code, 2);
  });
});
