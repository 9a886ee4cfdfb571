import { strict as assert } from "node:assert";
import { once } from "node:events";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startFaultProxy } from "./fault-proxy.js";

async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on("error", () => s.destroy()); // resetConnections() resets this side too
    s.pipe(s);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  return { server, port: address.port };
}

/** Collects everything a socket receives so tests can wait for an exact content. */
function collector(socket: Socket): { text: () => string; waitFor: (s: string) => Promise<void> } {
  let received = "";
  socket.on("data", (c: Buffer) => {
    received += c.toString("utf8");
  });
  return {
    text: () => received,
    waitFor: async (s) => {
      while (!received.includes(s)) await sleep(10);
    },
  };
}

describe("startFaultProxy", () => {
  it("forwards, holds bytes while suspended and delivers them on resume", async () => {
    const echo = await echoServer();
    await using proxy = await startFaultProxy({ target: `127.0.0.1:${echo.port}` });
    const socket = tcpConnect({ host: proxy.host, port: proxy.port });
    await once(socket, "connect");
    const inbox = collector(socket);

    socket.write("one;");
    await inbox.waitFor("one;");
    assert.equal(proxy.connectionCount, 1);

    proxy.suspend();
    socket.write("two;");
    // Nothing may come back while partitioned; waiting proves absence, it cannot pass by luck.
    await sleep(200);
    assert.equal(inbox.text(), "one;");

    proxy.resume();
    await inbox.waitFor("two;");
    assert.equal(inbox.text(), "one;two;");
    socket.destroy();
    echo.server.close();
  });

  it("pauses a single direction", async () => {
    const echo = await echoServer();
    await using proxy = await startFaultProxy({ target: `tcp://127.0.0.1:${echo.port}` });
    const socket = tcpConnect({ host: proxy.host, port: proxy.port });
    await once(socket, "connect");
    const inbox = collector(socket);

    proxy.pause("downstream");
    socket.write("held;");
    await sleep(200);
    assert.equal(inbox.text(), "");
    proxy.unpause("downstream");
    await inbox.waitFor("held;");
    socket.destroy();
    echo.server.close();
  });

  it("resets connections so the client sees the link drop", async () => {
    const echo = await echoServer();
    await using proxy = await startFaultProxy({ target: `127.0.0.1:${echo.port}` });
    const socket = tcpConnect({ host: proxy.host, port: proxy.port });
    socket.on("error", () => {});
    await once(socket, "connect");
    socket.write("x");
    await collector(socket).waitFor("x");
    // events.once() would reject on the expected ECONNRESET, so wait for "close" by hand.
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    proxy.resetConnections();
    await closed;
    assert.equal(proxy.connectionCount, 0);
    echo.server.close();
  });

  it("rejects a target without a port", async () => {
    await assert.rejects(startFaultProxy({ target: "127.0.0.1" }), RangeError);
  });
});
