import { strict as assert } from "node:assert";
import { existsSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { describe, it } from "node:test";
import { ServerNotInstalledError, ServerStartError, UnsupportedOnExternalServerError } from "./errors.js";
import { probeHttp } from "./http-probe.js";
import { NATS_URL_ENV, renderNatsConfig, startNats } from "./nats-server.js";

/** Reads the INFO line nats-server sends on connect: proves the client port really serves NATS. */
function readInfo(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: "127.0.0.1", port });
    socket.once("data", (chunk: Buffer) => {
      socket.destroy();
      resolve(chunk.toString("utf8"));
    });
    socket.once("error", reject);
  });
}

describe("startNats", () => {
  it("starts JetStream-enabled nats-server on free ports, restarts on the same port, cleans up", async () => {
    let dataDir: string | undefined;
    {
      await using nats = await startNats({ allowExternal: false });
      dataDir = nats.dataDir;
      assert.ok(dataDir !== undefined && existsSync(dataDir));
      assert.match(nats.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
      const info = await readInfo(nats.port);
      assert.match(info, /^INFO /);
      assert.match(info, /"jetstream":true/);
      const pidBefore = nats.pid;

      await nats.restart();
      assert.notEqual(nats.pid, pidBefore);
      assert.match(await readInfo(nats.port), /^INFO /);

      await nats.kill();
      assert.equal(nats.running, false);
      await nats.start();
      const health = await probeHttp(`${nats.monitorUrl}/healthz`, 2000);
      assert.equal(health?.status, 200);
    }
    assert.equal(existsSync(dataDir), false, "temp dir removed on dispose");
  });

  it("says how to install a missing binary", async () => {
    await assert.rejects(
      startNats({ allowExternal: false, env: { PATH: "/nonexistent-sluice-path" } }),
      (err: unknown) => {
        assert.ok(err instanceof ServerNotInstalledError);
        assert.match(err.message, /nats-server was not found on PATH/);
        assert.match(err.message, /apt-get install nats-server etcd-server/);
        assert.match(err.message, /SLUICE_TEST_NATS_URL/);
        return true;
      },
    );
  });

  it("fails fast with the server's own error when it exits during start-up", async () => {
    await assert.rejects(
      startNats({ allowExternal: false, extraArgs: ["-c", "/nonexistent/sluice-nats.conf"] }),
      (err: unknown) => {
        assert.ok(err instanceof ServerStartError);
        assert.match(err.message, /exited with code \d+ before it became ready/);
        assert.match(err.logTail, /sluice-nats\.conf/);
        return true;
      },
    );
  });

  it("uses an external server from the environment and refuses to restart it", async (t) => {
    await using nats = await startNats({ env: { [NATS_URL_ENV]: "nats://127.0.0.1:4999" } });
    assert.equal(nats.external, true);
    assert.equal(nats.url, "nats://127.0.0.1:4999");
    assert.equal(nats.port, 4999);
    assert.match(nats.lifecycleUnsupportedReason ?? "", /SLUICE_TEST_NATS_URL/);
    await assert.rejects(nats.restart(), UnsupportedOnExternalServerError);
    t.diagnostic("external handles only carry the address");
  });

  it("renders auth and TLS blocks with every string JSON-quoted", () => {
    const text = renderNatsConfig(
      {
        users: [
          { user: "a", password: 'p"w', permissions: { publish: ["x.>"], subscribe: [] } },
          { nkey: "UABC" },
        ],
      },
      { certFile: "/c.pem", keyFile: "/k.pem", caFile: "/ca.pem", verifyClients: true },
    );
    assert.match(
      text,
      /\{ user: "a", password: "p\\"w", permissions: \{ publish: \["x\.>"\], subscribe: \[\] \} \}/,
    );
    assert.match(text, /\{ nkey: "UABC" \}/);
    assert.match(
      text,
      /tls \{\n {2}cert_file: "\/c\.pem"\n {2}key_file: "\/k\.pem"\n {2}ca_file: "\/ca\.pem"\n {2}verify: true/,
    );
    assert.equal(renderNatsConfig({ token: "t" }, undefined), 'authorization { token: "t" }\n');
  });
});
