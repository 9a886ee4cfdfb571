// A pooled keep-alive connection to the engine that the engine's side has just closed: the request
// written on it never reached the engine, and the ingress must send it again on a new connection
// rather than answer 502 (seen in the soak on a saturated host, where the pool's own expiry fires late).
//
// Deterministic: the engine below is a raw TCP server that answers the first request of every
// connection with keep-alive and then resets the connection when the next request arrives on it, so
// the ingress's second request always goes out on a reused connection that dies before any answer.

import assert from "node:assert/strict";
import net, { type AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { LaunchedIngress } from "@sluice/ingress";
import type { Lease } from "etcd3";
import {
  launch,
  metricValue,
  registerEngine,
  startCluster,
  type TestCluster,
  until,
} from "./ingress-helpers.js";

const MODEL = "stale-llm";
const ANSWER = JSON.stringify({
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 0,
  model: MODEL,
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
});

/** Answers one request per connection, then resets the connection on the next request's first bytes. */
async function startOneShotEngine(): Promise<{ url: string; served: () => number; close(): void }> {
  let served = 0;
  const server = net.createServer((socket) => {
    let answered = false;
    let buffered = "";
    socket.on("data", (chunk) => {
      if (answered) {
        socket.resetAndDestroy();
        return;
      }
      buffered += chunk.toString("latin1");
      const headerEnd = buffered.indexOf("\r\n\r\n");
      if (headerEnd < 0) return;
      const length = Number(/content-length:\s*(\d+)/i.exec(buffered.slice(0, headerEnd))?.[1] ?? 0);
      if (buffered.length < headerEnd + 4 + length) return;
      answered = true;
      served++;
      socket.write(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(ANSWER)}\r\nconnection: keep-alive\r\nkeep-alive: timeout=60\r\n\r\n${ANSWER}`,
      );
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, served: () => served, close: () => server.close() };
}

describe("ingress: a pooled engine connection closed by the other side", () => {
  let cluster: TestCluster;
  let engine: Awaited<ReturnType<typeof startOneShotEngine>>;
  let lease: Lease;
  let ingress: LaunchedIngress;

  before(async () => {
    cluster = await startCluster();
    engine = await startOneShotEngine();
    lease = await registerEngine(cluster, { workerId: "one-shot", model: MODEL, url: engine.url });
    ingress = await launch(cluster, ["--max-inflight", "100"]);
    await until("the ingress sees the engine", async () => {
      const res = await fetch(`${ingress.url}/v1/models`);
      const body = (await res.json()) as { data: { id: string }[] };
      return body.data.some((m) => m.id === MODEL);
    });
  });
  after(async () => {
    await ingress?.stop();
    await lease?.revoke().catch(() => {});
    engine?.close();
    await cluster?.close();
  });

  it("is sent again on a new connection, once, and answered; the slot is released", async () => {
    const ask = () =>
      fetch(`${ingress.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
      });
    // One after the other, so every request after the first finds the previous one's connection idle
    // in the pool, and that connection is reset when the request arrives on it.
    for (let i = 0; i < 4; i++) {
      const res = await ask();
      assert.equal(res.status, 200, `request ${i}: ${await res.clone().text()}`);
      assert.equal(((await res.json()) as { model: string }).model, MODEL);
    }
    assert.equal(engine.served(), 4, "every request reached the engine exactly once");
    const retries = await metricValue(ingress.adminUrl, "sluice_ingress_stale_connection_retries_total");
    // Requests 2 and 4 find the previous request's connection in the pool and are resent; the resend
    // uses a connection of its own, so requests 1 and 3 open new pooled connections.
    assert.equal(retries, 2, "resent on a new connection");
    await until("the slots are released", () => ingress.ledger.total().requests === 0);
    assert.equal(
      await metricValue(
        ingress.adminUrl,
        'sluice_ingress_http_errors_total{status="502",code="upstream_error"}',
      ),
      undefined,
      "no 502",
    );
  });
});
