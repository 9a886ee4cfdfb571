// NATS authentication and TLS (issue 9 §4) against real nats-server: each auth method the runtime
// supports (user/password, token, NKey seed, creds file with an operator/account/user JWT chain) works
// with the right secret and is refused with the wrong one; TLS with a CA and a client certificate; and
// a whole process (`sluice mock-engine`) configured through flags, env and files, whose logs carry no secret.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { launchMockEngine } from "@sluice/mock-engine";
import {
  connectNats,
  createNatsClient,
  isNatsAuthError,
  type NatsAuth,
  type NatsConnectOptions,
  type NatsStatusEvent,
  type NatsTlsFiles,
} from "@sluice/runtime";
import {
  createTestCertificates,
  createTestNatsOperator,
  type NatsServer,
  startNats,
  type TestCertificates,
} from "@sluice/testkit";
import { createUser } from "nkeys.js";

let dir: string;
let certs: TestCertificates;

function secretFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, `${text}\n`, { mode: 0o600 });
  return file;
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const FAST = {
  reconnectDelayMs: 50,
  maxReconnectDelayMs: 200,
  reconnectJitterMs: 0,
  connectTimeoutMs: 2_000,
};

/** Connects with `auth`/`tls`, sends one message to itself, closes. */
async function roundTrip(server: NatsServer, auth?: NatsAuth, tls?: NatsTlsFiles): Promise<void> {
  const nats = await connectNats({
    servers: server.url,
    name: "security-test",
    ...FAST,
    ...(auth ? { auth } : {}),
    ...(tls ? { tls } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  try {
    const got: string[] = [];
    nats.subscribe("sec.ping", (msg) => got.push(new TextDecoder().decode(msg.data)));
    await nats.connection.flush();
    assert.ok(nats.publish("sec.ping", new TextEncoder().encode("pong")));
    await until("the message to come back", () => got.length === 1);
    assert.deepEqual(got, ["pong"]);
  } finally {
    await nats.close();
  }
}

/** The first connect-failed event of a client with these options (it keeps retrying; we close it). */
async function refusal(options: Omit<NatsConnectOptions, "name">): Promise<Error> {
  const client = createNatsClient({ name: "security-test-refused", ...FAST, ...options });
  try {
    let failure: Error | undefined;
    client.onStatus((e: NatsStatusEvent) => {
      if (e.type === "connect-failed") failure ??= e.error;
      if (e.type === "connected") assert.fail("connected although it should have been refused");
    });
    await until("a refused connect", () => failure !== undefined);
    return failure as Error;
  } finally {
    await client.close();
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sluice-sec-nats-"));
  certs = await createTestCertificates();
});

after(async () => {
  await certs?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("NATS authentication", () => {
  it("user/password: the right password from a file connects, a wrong one is refused as an auth error", async () => {
    await using server = await startNats({
      jetstream: false,
      auth: { users: [{ user: "sluice", password: "correct horse" }] },
    });
    await roundTrip(server, {
      kind: "user-password",
      user: "sluice",
      password: { file: secretFile("nats-password", "correct horse") },
    });
    const err = await refusal({
      servers: server.url,
      auth: { kind: "user-password", user: "sluice", password: { value: "battery staple" } },
    });
    assert.ok(isNatsAuthError(err), `auth error, got ${String(err)}`);
    // No credentials at all is refused too.
    assert.ok(isNatsAuthError(await refusal({ servers: server.url })));
  });

  it("token: the right token connects, a wrong one is refused", async () => {
    await using server = await startNats({ jetstream: false, auth: { token: "s3cr3t-token" } });
    await roundTrip(server, { kind: "token", token: { file: secretFile("nats-token", "s3cr3t-token") } });
    const err = await refusal({ servers: server.url, auth: { kind: "token", token: { value: "guess" } } });
    assert.ok(isNatsAuthError(err), `auth error, got ${String(err)}`);
  });

  it("NKey: the seed of a known public key connects, another seed is refused", async () => {
    const user = createUser();
    const stranger = createUser();
    await using server = await startNats({
      jetstream: false,
      auth: { users: [{ nkey: user.getPublicKey() }] },
    });
    const seedOf = (kp: typeof user) => new TextDecoder().decode(kp.getSeed());
    await roundTrip(server, { kind: "nkey", seed: { file: secretFile("user.nk", seedOf(user)) } });
    const err = await refusal({
      servers: server.url,
      auth: { kind: "nkey", seed: { file: secretFile("stranger.nk", seedOf(stranger)) } },
    });
    assert.ok(isNatsAuthError(err), `auth error, got ${String(err)}`);
  });

  it("creds file: a user JWT signed by a trusted account connects, one from an unknown operator is refused", async () => {
    const operator = createTestNatsOperator();
    const foreign = createTestNatsOperator();
    await using server = await startNats({ auth: operator.auth });
    await roundTrip(server, { kind: "creds", creds: { file: operator.writeUserCreds(dir, "process") } });
    const err = await refusal({
      servers: server.url,
      auth: { kind: "creds", creds: { file: foreign.writeUserCreds(dir, "intruder") } },
    });
    assert.ok(isNatsAuthError(err), `auth error, got ${String(err)}`);
  });
});

describe("NATS TLS", () => {
  it("verifies the server against the CA and presents the client certificate (mutual TLS)", async () => {
    await using server = await startNats({
      jetstream: false,
      tls: {
        certFile: certs.serverCertFile,
        keyFile: certs.serverKeyFile,
        caFile: certs.caFile,
        verifyClients: true,
      },
    });
    await roundTrip(server, undefined, {
      caFile: certs.caFile,
      certFile: certs.clientCertFile,
      keyFile: certs.clientKeyFile,
    });
    // Without a client certificate the server refuses the handshake.
    await refusal({ servers: server.url, tls: { caFile: certs.caFile } });
    // Without our CA the server's certificate is not trusted.
    await refusal({ servers: server.url });
  });

  it("refuses a server without TLS when TLS is configured (no silent downgrade)", async () => {
    await using server = await startNats({ jetstream: false });
    const err = await refusal({ servers: server.url, tls: { caFile: certs.caFile } });
    assert.match(String(err), /tls/i);
  });
});

describe("a process configured for NATS auth and TLS", () => {
  it("mock-engine connects with a creds file over mutual TLS and publishes its load", async () => {
    const operator = createTestNatsOperator();
    await using nats = await startNats({
      auth: operator.auth,
      tls: {
        certFile: certs.serverCertFile,
        keyFile: certs.serverKeyFile,
        caFile: certs.caFile,
        verifyClients: true,
      },
    });
    const tls = { caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile };
    const watcher = await connectNats({
      servers: nats.url,
      name: "watcher",
      auth: { kind: "creds", creds: { file: operator.writeUserCreds(dir, "watcher") } },
      tls,
      signal: AbortSignal.timeout(10_000),
    });
    const loads: string[] = [];
    watcher.subscribe("sluice.v1.sec.engine.*.load", (msg) => loads.push(msg.subject));
    await watcher.connection.flush();
    const launched = await launchMockEngine({
      argv: [
        "--port=0",
        "--admin-port=0",
        "--log-level=silent",
        `--nats-url=${nats.url}`,
        `--nats-creds=${operator.writeUserCreds(dir, "engine")}`,
        `--nats-tls-ca=${certs.caFile}`,
        `--nats-tls-cert=${certs.clientCertFile}`,
        `--nats-tls-key=${certs.clientKeyFile}`,
        // etcd is not needed: the engine serves and publishes without it (retried in the background).
        "--etcd-endpoints=http://127.0.0.1:1",
        "--namespace=sec",
        "--worker-id=1",
        "--load-heartbeat=100ms",
      ],
      env: {},
    });
    assert.ok(typeof launched !== "number", `the engine started (exit ${String(launched)})`);
    try {
      await until("a load snapshot from the engine", () => loads.length > 0);
      assert.equal(loads[0], "sluice.v1.sec.engine.1.load");
    } finally {
      await launched.stop();
      await watcher.close();
    }
  });

  it("takes the password from SLUICE_NATS_PASSWORD, refuses it as a flag, and never logs it", async () => {
    const password = "pw-that-must-not-leak-7f3a";
    // The engine user holds exactly the docs/security.md recipe permissions of an engine.
    const n = "sluice.v1.default";
    await using nats = await startNats({
      jetstream: false,
      auth: {
        users: [
          {
            user: "engine",
            password,
            permissions: {
              publish: [`${n}.engine.*.load`, `${n}.engine.*.kv`, `${n}.events.engine.>`],
              subscribe: [],
            },
          },
          { user: "watcher", password: "watcher-pw" },
        ],
      },
    });
    const watcher = await connectNats({
      servers: nats.url,
      name: "watcher",
      auth: { kind: "user-password", user: "watcher", password: { value: "watcher-pw" } },
      signal: AbortSignal.timeout(10_000),
    });
    const loads: string[] = [];
    watcher.subscribe(`${n}.engine.2.load`, (msg) => loads.push(msg.subject));
    await watcher.connection.flush();
    const base = [
      "--port=0",
      "--admin-port=0",
      "--log-level=debug",
      `--nats-url=nats://engine:${password}@${new URL(nats.url).host}`,
      // etcd is not needed: the engine serves and publishes without it (retried in the background).
      "--etcd-endpoints=http://127.0.0.1:1",
      "--worker-id=2",
      "--load-heartbeat=100ms",
    ];
    // As a flag: refused (exit 2) before anything starts, and the message says what to use instead.
    let stderr = "";
    const refused = await launchMockEngine({
      argv: [...base, "--nats-user=engine", `--nats-password=${password}`],
      env: {},
      stderr: { write: (s: string) => (stderr += s) },
    });
    assert.equal(refused, 2);
    assert.match(stderr, /SLUICE_NATS_PASSWORD or pass --nats-password-file/);
    assert.ok(!stderr.includes(password), "the refusal does not echo the password");

    let help = "";
    assert.equal(
      await launchMockEngine({
        argv: ["--help"],
        env: { SLUICE_NATS_PASSWORD: password },
        stdout: { write: (s: string) => (help += s) },
      }),
      0,
    );
    assert.match(help, /SLUICE_NATS_PASSWORD \(env or config file only\)/);
    assert.ok(!help.includes(password), "--help shows no secret");

    let logs = "";
    const launched = await launchMockEngine({
      argv: [...base.slice(0, 3), `--nats-url=${nats.url}`, ...base.slice(4), "--nats-user=engine"],
      env: { SLUICE_NATS_PASSWORD: password },
      logDestination: { write: (s: string) => (logs += s) },
    });
    assert.ok(typeof launched !== "number", `the engine started (exit ${String(launched)})`);
    try {
      await until("the NATS connection", () => logs.includes('"msg":"NATS connected"'));
      await until("a load snapshot published under the recipe permissions", () => loads.length > 0);
      assert.doesNotMatch(logs, /PERMISSIONS_VIOLATION|Permissions Violation/i);
      const loaded = logs.split("\n").find((line) => line.includes('"msg":"configuration loaded"')) ?? "";
      assert.match(loaded, /"nats-password":"\[redacted\]"/);
      assert.match(loaded, /"nats":"user-password \(user engine\), no TLS"/);
      assert.ok(!logs.includes(password), "no log line carries the password");
    } finally {
      await launched.stop();
      await watcher.close();
    }
  });
});
