import { strict as assert } from "node:assert";
import { existsSync } from "node:fs";
import { type Socket, connect as tcpConnect } from "node:net";
import { describe, it } from "node:test";
import { startNatsCluster } from "./nats-cluster.js";

/** A bare NATS protocol client (the test kit has no client dependency): enough to sub and pub. */
interface RawClient {
  readonly received: string[];
  send(line: string): void;
  /** Sends PING and resolves on PONG: everything sent before was processed by the server. */
  flush(): Promise<void>;
  close(): void;
}

function rawClient(url: string): Promise<RawClient> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket: Socket = tcpConnect({ host: hostname, port: Number(port) });
    const received: string[] = [];
    const pongs: (() => void)[] = [];
    let buffer = "";
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      let end = buffer.indexOf("\r\n");
      while (end >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (line === "PONG") pongs.shift()?.();
        else if (line === "PING") socket.write("PONG\r\n");
        else if (!line.startsWith("INFO") && !line.startsWith("MSG") && line !== "+OK") received.push(line);
        end = buffer.indexOf("\r\n");
      }
    });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.write('CONNECT {"verbose":false,"pedantic":false}\r\n');
      resolve({
        received,
        send: (line) => socket.write(`${line}\r\n`),
        flush: () =>
          new Promise<void>((done) => {
            pongs.push(done);
            socket.write("PING\r\n");
          }),
        close: () => socket.destroy(),
      });
    });
  });
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("startNatsCluster", () => {
  it("starts a routed 2-node cluster that survives losing a node and takes it back", async () => {
    let dirs: (string | undefined)[] = [];
    {
      await using cluster = await startNatsCluster();
      dirs = cluster.nodes.map((n) => n.dataDir);
      assert.equal(cluster.nodes.length, 2);
      assert.equal(cluster.url, cluster.urls.join(","));
      const [a, b] = cluster.nodes;
      assert.ok(a !== undefined && b !== undefined);

      // A message published on one node reaches a subscriber on the other (the route works).
      const sub = await rawClient(b.url);
      sub.send("SUB t.x 1");
      await sub.flush();
      const pub = await rawClient(a.url);
      await until("the subscription to propagate", () => {
        pub.send("PUB t.x 5\r\nhello");
        return sub.received.includes("hello");
      });
      sub.close();
      pub.close();

      await b.kill();
      await cluster.waitForRoutes(1_000); // only one node runs: nothing to wait for
      await b.start();
      await cluster.waitForRoutes();
      const again = await rawClient(b.url);
      again.send("SUB t.y 1");
      await again.flush();
      const pub2 = await rawClient(a.url);
      await until("a message across the rejoined route", () => {
        pub2.send("PUB t.y 2\r\nhi");
        return again.received.includes("hi");
      });
      again.close();
      pub2.close();
    }
    for (const dir of dirs) assert.ok(dir !== undefined && !existsSync(dir), "temp dirs removed");
  });

  it("refuses a node count that is not a positive integer", async () => {
    await assert.rejects(startNatsCluster({ nodes: 1.5 }), RangeError);
  });
});
