// The HTTP load generator of bench/ingress-proxy-overhead.ts, run as its own process so it never
// shares an event loop with the proxy it measures. Two modes:
//   open   — requests start on a fixed schedule (`--rate` per second) whatever the answers do, so a
//            slow proxy cannot slow the offered load down (no coordinated omission in the schedule);
//            latency is measured from the moment each request is handed to the socket.
//   closed — `--connections` loops each send the next request as soon as the previous one answers:
//            the maximum request rate the target sustains with this client on this machine.
// Prints one JSON object ({ ok, errors, latenciesMs, … }) on stdout and exits.
//
// Run: node --import tsx bench/ingress-load-client.ts --url URL --mode open|closed [--rate 1000]
//      [--seconds 10] [--connections 32] [--body JSON]

import { Agent, request } from "node:http";
import { parseArgs } from "node:util";

export interface LoadClientResult {
  mode: "open" | "closed";
  url: string;
  seconds: number;
  sent: number;
  ok: number;
  errors: number;
  /** First error message seen, for diagnosis. */
  firstError?: string;
  /** Completed requests per second of measured wall time. */
  achievedPerS: number;
  /** Latency of every successful request, ms, in completion order. */
  latenciesMs: number[];
  /** p99 of how late the open-loop schedule fired (client-side jitter), ms. */
  scheduleLagP99Ms: number;
}

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    mode: { type: "string", default: "open" },
    rate: { type: "string", default: "1000" },
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "32" },
    body: { type: "string" },
  },
});
const mode = values.mode;
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
if (values.url === undefined || (mode !== "open" && mode !== "closed")) {
  console.error("usage: --url URL --mode open|closed [--rate N] [--seconds N] [--connections N]");
  process.exit(2);
}
if (!(rate > 0) || !(seconds > 0) || !Number.isInteger(connections) || connections < 1) {
  console.error("--rate and --seconds must be > 0, --connections an integer ≥ 1");
  process.exit(2);
}
const target = new URL(values.url);
const body =
  values.body ??
  JSON.stringify({
    model: "bench-llm",
    messages: [{ role: "user", content: "Say hello in one word." }],
    max_tokens: 8,
  });
const bodyLength = Buffer.byteLength(body);
const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });

const latenciesMs: number[] = [];
let sent = 0;
let ok = 0;
let errors = 0;
let firstError: string | undefined;

function fail(message: string): void {
  errors += 1;
  firstError ??= message;
}

/** One request; resolves when it ended (well or not), recording its latency or its error. */
function once(): Promise<void> {
  sent += 1;
  return new Promise((resolve) => {
    const startMs = performance.now();
    const req = request(
      {
        hostname: target.hostname,
        port: target.port,
        path: target.pathname,
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": bodyLength },
      },
      (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) {
            ok += 1;
            latenciesMs.push(performance.now() - startMs);
          } else fail(`status ${res.statusCode}`);
          resolve();
        });
        res.on("error", (error) => {
          fail(error.message);
          resolve();
        });
      },
    );
    req.on("error", (error) => {
      fail(error.message);
      resolve();
    });
    req.end(body);
  });
}

async function openLoop(): Promise<{ wallMs: number; lagP99Ms: number }> {
  const total = Math.round(rate * seconds);
  const intervalMs = 1000 / rate;
  const lags: number[] = [];
  const pending: Promise<void>[] = [];
  const startMs = performance.now();
  let next = 0;
  await new Promise<void>((done) => {
    const pump = () => {
      const now = performance.now();
      while (next < total && startMs + next * intervalMs <= now) {
        lags.push(now - (startMs + next * intervalMs));
        pending.push(once());
        next += 1;
      }
      if (next >= total) done();
      else setTimeout(pump, Math.max(0, startMs + next * intervalMs - performance.now()));
    };
    pump();
  });
  await Promise.all(pending);
  lags.sort((a, b) => a - b);
  return {
    wallMs: performance.now() - startMs,
    lagP99Ms: lags[Math.min(lags.length - 1, Math.floor(lags.length * 0.99))] ?? 0,
  };
}

async function closedLoop(): Promise<number> {
  const startMs = performance.now();
  const endMs = startMs + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < endMs) await once();
    }),
  );
  return performance.now() - startMs;
}

let wallMs: number;
let scheduleLagP99Ms = 0;
if (mode === "open") {
  const r = await openLoop();
  wallMs = r.wallMs;
  scheduleLagP99Ms = r.lagP99Ms;
} else {
  wallMs = await closedLoop();
}
agent.destroy();
const result: LoadClientResult = {
  mode,
  url: target.href,
  seconds,
  sent,
  ok,
  errors,
  ...(firstError !== undefined ? { firstError } : {}),
  achievedPerS: ok / (wallMs / 1000),
  latenciesMs,
  scheduleLagP99Ms,
};
process.stdout.write(JSON.stringify(result));
