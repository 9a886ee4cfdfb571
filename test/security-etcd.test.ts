// etcd authentication, RBAC and TLS (issue 9 §4) against a real etcd with client-certificate TLS and
// auth enabled: the runtime's session (through the common settings, as every process builds it)
// registers with a process user's role; `sluice policy set` succeeds for a user whose role may write
// `{prefix}/policies/` and fails with exit 4 and a clear message for one whose role may not and for a
// wrong password; inline passwords are refused as flags.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { EXIT_ETCD_ACCESS_DENIED, EXIT_UNREACHABLE, runPolicy, runStatus } from "@sluice/cli";
import { commonSchema, createEtcdClient, loadConfig, noopLogger, openSharedState } from "@sluice/runtime";
import {
  createTestCertificates,
  type EtcdServer,
  startEtcd,
  startNats,
  type TestCertificates,
} from "@sluice/testkit";
import { EtcdPermissionDeniedError } from "etcd3";

const ROOT = new URL("..", import.meta.url).pathname;
const PREFIX = "/sluice/v1";
const ROOT_PASSWORD = "root-pw";
const USERS = {
  process: { name: "sluice-process", password: "process-pw-91c2" },
  policyAdmin: { name: "policy-admin", password: "policy-pw-4b7e" },
};

let dir: string;
let certs: TestCertificates;
let etcd: EtcdServer;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

/** TLS flags every client here needs: our CA and, since etcd runs --client-cert-auth, a client cert. */
function tlsFlags(): string[] {
  return [
    `--etcd-tls-ca=${certs.caFile}`,
    `--etcd-tls-cert=${certs.clientCertFile}`,
    `--etcd-tls-key=${certs.clientKeyFile}`,
  ];
}

/** `sluice policy <args>` in a child process, the etcd password in its env as an operator would pass it. */
function sluicePolicy(args: readonly string[], password?: string): Promise<Run> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  env.SLUICE_ETCD_ENDPOINTS = etcd.endpoints.join(",");
  if (password !== undefined) env.SLUICE_ETCD_PASSWORD = password;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--conditions=sluice-src", "--import", "tsx", "packages/cli/src/main.ts", "policy", ...args],
      { cwd: ROOT, env, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** `sluice policy <args>` in this process through the same entry point, with its own env and output. */
async function policyInProcess(args: readonly string[], password?: string): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const env: Record<string, string> = { SLUICE_ETCD_ENDPOINTS: etcd.endpoints.join(",") };
  if (password !== undefined) env.SLUICE_ETCD_PASSWORD = password;
  const code = await runPolicy(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env,
  });
  return { code, stdout, stderr };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sluice-sec-etcd-"));
  certs = await createTestCertificates();
  etcd = await startEtcd({
    tls: {
      certFile: certs.serverCertFile,
      keyFile: certs.serverKeyFile,
      caFile: certs.caFile,
      clientCertAuth: true,
    },
    // The recipe of docs/security.md: processes read everything and write their own subtrees;
    // only the policy writer may change policies.
    auth: {
      rootPassword: ROOT_PASSWORD,
      roles: [
        {
          name: "sluice-process",
          permissions: [
            { key: `${PREFIX}/`, prefix: true, type: "read" },
            { key: `${PREFIX}/instances/`, prefix: true, type: "readwrite" },
            { key: `${PREFIX}/engines/`, prefix: true, type: "readwrite" },
            { key: `${PREFIX}/elections/`, prefix: true, type: "readwrite" },
          ],
        },
        {
          name: "sluice-policy-writer",
          permissions: [{ key: `${PREFIX}/policies/`, prefix: true, type: "readwrite" }],
        },
      ],
      users: [
        { name: USERS.process.name, password: USERS.process.password, roles: ["sluice-process"] },
        {
          name: USERS.policyAdmin.name,
          password: USERS.policyAdmin.password,
          roles: ["sluice-policy-writer"],
        },
      ],
    },
  });
});

after(async () => {
  await etcd?.dispose();
  await certs?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("etcd auth, RBAC and TLS", () => {
  it("a process session registers over mutual TLS as its user and cannot write policies", async () => {
    await using nats = await startNats({ jetstream: false });
    const loaded = loadConfig(commonSchema, {
      argv: [
        `--nats-url=${nats.url}`,
        `--etcd-endpoints=${etcd.endpoints.join(",")}`,
        `--etcd-user=${USERS.process.name}`,
        `--etcd-password-file=${file("etcd-password", `${USERS.process.password}\n`)}`,
        ...tlsFlags(),
        "--id=router-1",
      ],
      env: {},
    });
    assert.equal(loaded.kind, "config");
    if (loaded.kind !== "config") return;
    const shared = await openSharedState("router", loaded.values, noopLogger);
    assert.ok(shared !== undefined, "NATS and the etcd session opened");
    try {
      const key = await shared.etcd.register("router", "router-1", { addresses: {}, version: "test" });
      assert.equal(key, `${PREFIX}/instances/router/router-1`);
      assert.ok((await shared.etcd.client.get(key).string()) !== null, "the registration is readable");
      await assert.rejects(
        shared.etcd.client.put(`${PREFIX}/policies/_default`).value("{}").exec(),
        EtcdPermissionDeniedError,
      );
    } finally {
      await shared.etcd.close();
      await shared.nats.close();
    }
  });

  it("a client with a wrong password is refused by etcd", async () => {
    const client = createEtcdClient(etcd.endpoints, 2_000, {
      auth: { user: USERS.process.name, password: { value: "wrong" } },
      tls: { caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile },
    });
    try {
      await assert.rejects(client.get(`${PREFIX}/instances/x`).string(), /authentication failed/);
    } finally {
      client.close();
    }
  });

  it("policy set: allowed for the policy writer, exit 4 for a process user and for a wrong password", async () => {
    const policy = file("policy.yaml", "ingress:\n  maxInflight: 7\n");
    const args = ["set", "-f", policy, ...tlsFlags()];
    // The allowed write as an operator runs it (child process, password in the env); the refusals
    // in-process through the same entry point, which keeps this test fast on a busy machine.
    const allowed = await sluicePolicy(
      [...args, `--etcd-user=${USERS.policyAdmin.name}`],
      USERS.policyAdmin.password,
    );
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /stored \/sluice\/v1\/policies\/_default at revision \d+/);

    const forbidden = await policyInProcess(
      [...args, `--etcd-user=${USERS.process.name}`],
      USERS.process.password,
    );
    assert.equal(forbidden.code, EXIT_ETCD_ACCESS_DENIED, forbidden.stderr);
    assert.match(
      forbidden.stderr,
      /etcd denied a write of \/sluice\/v1\/policies\/_default as user sluice-process: the user needs a role/,
    );
    const wrongPassword = await policyInProcess(
      [...args, `--etcd-user=${USERS.policyAdmin.name}`],
      "not-the-password",
    );
    assert.equal(wrongPassword.code, EXIT_ETCD_ACCESS_DENIED, wrongPassword.stderr);
    assert.match(wrongPassword.stderr, /etcd rejected the credentials as user policy-admin/);
    assert.ok(!wrongPassword.stderr.includes("not-the-password"), "the password is not echoed");

    const anonymous = await policyInProcess(args);
    assert.equal(anonymous.code, EXIT_ETCD_ACCESS_DENIED, anonymous.stderr);
    assert.match(anonymous.stderr, /without credentials \(no --etcd-user\)/);

    const flagPassword = await policyInProcess([
      ...args,
      `--etcd-user=${USERS.policyAdmin.name}`,
      `--etcd-password=${USERS.policyAdmin.password}`,
    ]);
    assert.equal(flagPassword.code, 2, flagPassword.stderr);
    assert.match(flagPassword.stderr, /--etcd-password is not accepted on the command line/);
    assert.ok(!flagPassword.stderr.includes(USERS.policyAdmin.password), "the password is not echoed");

    // What the processes see: the allowed write, and nothing from the refused ones.
    const root = createEtcdClient(etcd.endpoints, 2_000, {
      auth: { user: "root", password: { value: ROOT_PASSWORD } },
      tls: { caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile },
    });
    try {
      const stored = await root.get(`${PREFIX}/policies/_default`).exec();
      assert.equal(stored.kvs.length, 1);
      assert.equal(String(stored.kvs[0]?.version), "1", "written exactly once");
      assert.equal(JSON.parse(stored.kvs[0]?.value.toString() ?? "{}").ingress.maxInflight, 7);
    } finally {
      root.close();
    }
  });

  it("sluice status reads a secured cluster with the processes' credentials, and says so when they are missing", async () => {
    // A status sample needs JetStream (the events stream); token auth keeps it on in the test kit.
    await using nats = await startNats({ auth: { token: "status-token-5d1" } });
    const tokenFile = file("nats-token", "status-token-5d1\n");
    const run = async (args: readonly string[], env: Record<string, string>): Promise<Run> => {
      let stdout = "";
      let stderr = "";
      const code = await runStatus(["--json", "--sample", "200ms", ...args], {
        stdout: { write: (t: string) => (stdout += t) },
        stderr: { write: (t: string) => (stderr += t) },
        env: { SLUICE_ETCD_ENDPOINTS: etcd.endpoints.join(","), SLUICE_NATS_URL: nats.url, ...env },
      });
      return { code, stdout, stderr };
    };
    const ok = await run(
      [...tlsFlags(), `--etcd-user=${USERS.process.name}`, `--nats-token-file=${tokenFile}`],
      {
        SLUICE_ETCD_PASSWORD: USERS.process.password,
      },
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(JSON.parse(ok.stdout.trim().split("\n")[0] ?? "null") !== null, "a JSON report");
    const noCredentials = await run(tlsFlags(), {});
    assert.equal(noCredentials.code, EXIT_UNREACHABLE, noCredentials.stderr);
    assert.match(noCredentials.stderr, /sluice status: /);
    assert.ok(!noCredentials.stderr.includes("status-token-5d1"), "the token is not echoed");
  });

  it("policy set without a user against an auth-enabled etcd exits 4 asking for credentials", async () => {
    await using plain = await startEtcd({ auth: { rootPassword: ROOT_PASSWORD } });
    let stderr = "";
    const code = await runPolicy(["set", "-f", file("p2.yaml", "ingress:\n  maxInflight: 3\n")], {
      stdout: { write: () => true },
      stderr: { write: (t: string) => (stderr += t) },
      env: { SLUICE_ETCD_ENDPOINTS: plain.endpoints.join(",") },
    });
    assert.equal(code, EXIT_ETCD_ACCESS_DENIED, stderr);
    assert.match(stderr, /etcd requires authentication: give --etcd-user and its password/);
  });
});
