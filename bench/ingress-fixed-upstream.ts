// A tiny OpenAI-compatible upstream for the ingress benchmarks: answers every POST with one fixed
// non-streaming chat completion after `--delay-ms` (0 = at once), keep-alive, Nagle off. Run as its own
// process so its event loop is nobody else's. Prints "ready <url>" on stdout once listening.
//
// Run: node --import tsx bench/ingress-fixed-upstream.ts --port N [--delay-ms 0]

import http from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { port: { type: "string", default: "0" }, "delay-ms": { type: "string", default: "0" } },
});
const port = Number(values.port);
const delayMs = Number(values["delay-ms"]);
if (!Number.isInteger(port) || port < 0 || port > 65535 || !(delayMs >= 0)) {
  console.error("--port must be 0..65535 and --delay-ms ≥ 0");
  process.exit(2);
}

const answer = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 0,
  model: "bench-llm",
  choices: [{ index: 0, message: { role: "assistant", content: "Hello." }, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 2, total_tokens: 14 },
});
const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(answer) };

const server = http.createServer({ noDelay: true }, (req, res) => {
  req.resume();
  req.on("end", () => {
    const send = () => {
      if (res.destroyed) return;
      res.writeHead(200, headers);
      res.end(answer);
    };
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  });
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`ready http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
