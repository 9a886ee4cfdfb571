// A killed (SIGKILL) engine-scheduler cannot revoke its lease: its engine registration must still
// disappear within the lease TTL, so nobody routes to a dead sidecar for longer than that.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { startEtcd, startNats } from "@sluice/testkit";
import { Etcd3 } from "etcd3";
import { until } from "./engine-scheduler-helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;

describe("sluice engine-scheduler killed", () => {
  it("is deregistered within its lease TTL", async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const argv = [
      "--port=0",
      "--admin-port=0",
      "--log-level=silent",
      `--nats-url=${nats.url}`,
      `--etcd-endpoints=${etcd.endpoints.join(",")}`,
      "--lease-ttl=2s",
      "--id=killed",
      "--worker-id=killed",
      // No engine behind it: registration does not depend on the engine being up.
      "--engine-url=http://127.0.0.1:9",
    ];
    const child = spawn(
      process.execPath,
      [
        "--conditions=sluice-src",
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `import { runEngineScheduler } from "@sluice/engine-scheduler";
         process.exitCode = await runEngineScheduler(${JSON.stringify(argv)}, {});`,
      ],
      { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] },
    );
    const client = new Etcd3({ hosts: [...etcd.endpoints] });
    try {
      await until(
        "the registration",
        async () => (await client.get("/sluice/v1/engines/killed").string()) !== null,
        60_000, // tsx compiles the sources on start: slow on a loaded machine
      );
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
      const killedAt = Date.now();
      await until(
        "the registration to expire",
        async () => (await client.get("/sluice/v1/engines/killed").string()) === null,
        10_000,
      );
      // TTL 2 s; etcd expires leases on its own clock, allow it some slack on a loaded machine.
      assert.ok(Date.now() - killedAt < 6_000, `gone after ${Date.now() - killedAt} ms`);
      assert.equal(await client.get("/sluice/v1/instances/engine-scheduler/killed").string(), null);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      client.close();
    }
  });
});
