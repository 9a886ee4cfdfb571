// How many concurrent streams the `sluice replay` client sustains without falling behind its schedule.
// A stub upstream in a CHILD process (so it does not share the client's event loop) streams every request
// `--tokens` tokens `--gap-ms` apart; the client sends `--requests` requests spread evenly over `--over-ms`
// of trace time (speed-up 1), so about requests × tokens × gap / over streams are open at the peak.
// Prints send lag and event-loop delay, the figures behind the replay's client-bottleneck verdict.
// Run: node --conditions=sluice-src --import tsx bench/replay-client-capacity.ts [--requests 4000]
//        [--over-ms 2000] [--tokens 40] [--gap-ms 100]
import { spawn } from "node:child_process";
import { once } from "node:events";
import { parseArgs } from "node:util";
import { runReplay, summarizeReplay } from "@sluice/replay";
import type { Trace } from "@sluice/sim";
import { machine } from "./sim-common.js";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "4000" },
    "over-ms": { type: "string", default: "2000" },
    tokens: { type: "string", default: "40" },
    "gap-ms": { type: "string", default: "100" },
  },
});
const requests = Number(values.requests);
const overMs = Number(values["over-ms"]);
const tokens = Number(values.tokens);
const gapMs = Number(values["gap-ms"]);
for (const [name, v] of Object.entries({ requests, overMs, tokens, gapMs })) {
  if (!(v > 0) || !Number.isFinite(v)) throw new Error(`--${name} must be a positive number`);
}

const STUB = `
const http = require("node:http");
const [tokens, gapMs] = [${tokens}, ${gapMs}];
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    let sent = 0;
    const tick = () => {
      res.write('data: {"choices":[{"index":0,"text":" x"}]}\\n\\n');
      if (++sent < tokens) return void setTimeout(tick, gapMs);
      res.write('data: {"choices":[],"usage":{"prompt_tokens":64,"completion_tokens":' + tokens + '}}\\n\\n');
      res.end("data: [DONE]\\n\\n");
    };
    tick();
  });
});
server.maxConnections = 100000;
server.listen(0, "127.0.0.1", () => process.stdout.write(server.address().port + "\\n"));
process.on("SIGTERM", () => process.exit(0));
`;
const stub = spawn(process.execPath, ["-e", STUB], { stdio: ["ignore", "pipe", "inherit"] });
const [portLine] = (await once(stub.stdout, "data")) as [Buffer];
const port = Number(portLine.toString().trim());

const trace: Trace = {
  format: "azure",
  source: "synthetic-capacity",
  skippedLines: 0,
  records: Array.from({ length: requests }, (_, i) => ({
    timestampMs: (i * overMs) / requests,
    promptTokens: 64,
    outputTokens: tokens,
  })),
};
try {
  const startedAt = performance.now();
  const m = await runReplay({ trace, targets: [new URL(`http://127.0.0.1:${port}`)], spreadBucketMs: 0 });
  const wallS = (performance.now() - startedAt) / 1000;
  const { row, client } = summarizeReplay(m);
  const peak = Math.max(...m.inFlightAtSend);
  process.stdout.write(`### Replay client capacity (\`bench/replay-client-capacity.ts\`)

Command: \`node --conditions=sluice-src --import tsx bench/replay-client-capacity.ts --requests ${requests} --over-ms ${overMs} --tokens ${tokens} --gap-ms ${gapMs}\`
— ${new Date().toISOString().slice(0, 10)}, ${machine()}; wall ${wallS.toFixed(1)} s.

| requests | offered rps | peak concurrent streams (at a send) | completed | send lag p50 / p99 / max ms | event-loop delay p99 ms | ITL p50 / p99 ms (stub: ${gapMs}) | bottleneck verdict |
|---|---|---|---|---|---|---|---|
| ${requests} | ${row.offered_rps} | ${peak} | ${row.completed} | ${client.send_lag_p50_ms} / ${client.send_lag_p99_ms} / ${client.send_lag_max_ms} | ${client.event_loop_delay_p99_ms} | ${row.itl_p50_ms} / ${row.itl_p99_ms} | ${client.client_bottleneck ? "client-bound" : "ok"} |
`);
} finally {
  stub.kill("SIGTERM");
}
