// `sluice replay` against real processes: a mock engine started in-process (with real nats-server and
// etcd), and a stub upstream (a real HTTP server) that rejects like a Sluice ingress.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { launchMockEngine } from "@sluice/mock-engine";
import { replayCommand, runReplay, summarizeReplay } from "@sluice/replay";
import { parseTrace, simCommand } from "@sluice/sim";
import { startEtcd, startNats } from "@sluice/testkit";

function sink(isTTY = false) {
  let text = "";
  return { write: (s: string) => (text += s), text: () => text, isTTY };
}

/** Requests 300 ms apart; the second and fourth share the first's first two 512-token trace blocks. */
const MOONCAKE_FIXTURE = [
  { timestamp: 0, input_length: 1100, output_length: 7, hash_ids: [1, 2, 3] },
  { timestamp: 300, input_length: 1300, output_length: 12, hash_ids: [1, 2, 4] },
  { timestamp: 600, input_length: 200, output_length: 3, hash_ids: [5] },
  { timestamp: 900, input_length: 1500, output_length: 9, hash_ids: [1, 2, 6] },
  { timestamp: 1200, input_length: 700, output_length: 1, hash_ids: [7, 8] },
]
  .map((r) => JSON.stringify(r))
  .join("\n");

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(new URL("/metrics", url))).text();
  let total = 0;
  for (const line of text.split("\n"))
    if (line.startsWith(`${name}{`)) total += Number(line.split(" ").pop());
  return total;
}

describe("sluice replay", () => {
  it("refuses bad flags with exit code 2 and a message naming the flag", async () => {
    const err = sink();
    assert.equal(
      await replayCommand.run(["--trace", "x.jsonl"], { stdout: sink(), stderr: err, env: {} }),
      2,
    );
    assert.match(err.text(), /--target URL is required/);
    const err2 = sink();
    const io = { stdout: sink(), stderr: err2, env: {} };
    assert.equal(
      await replayCommand.run(["--trace", "x.jsonl", "--target", "http://h:1", "--speedup", "0"], io),
      2,
    );
    assert.match(err2.text(), /--speedup must be a positive number/);
  });

  it("replays a Mooncake slice against a mock engine: counts, TTFT, output lengths, prefix hits, sim's JSON keys", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-replay-"));
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const engine = await launchMockEngine({
      argv: [
        "--port=0",
        "--admin-port=0",
        "--log-level=silent",
        `--nats-url=${nats.url}`,
        `--etcd-endpoints=${etcd.endpoints.join(",")}`,
        "--namespace=replay",
        "--id=replay-engine",
        "--worker-id=replay-engine",
        "--block-size=16",
        "--shutdown-timeout=0s",
      ],
      env: {},
    });
    assert.ok(typeof engine !== "number", "mock engine started");
    try {
      const tracePath = join(dir, "slice.jsonl");
      await writeFile(tracePath, MOONCAKE_FIXTURE);
      const out = sink();
      const err = sink();
      const startedAt = performance.now();
      const code = await replayCommand.run(
        ["--trace", tracePath, "--target", engine.url, "--json", "--progress", "--max-client-lag-ms", "5000"],
        { stdout: out, stderr: err, env: {} },
      );
      assert.equal(code, 0, err.text());
      const [row] = JSON.parse(out.text()) as Record<string, unknown>[];
      assert.ok(row !== undefined);
      assert.equal(row.policy, "replay");
      assert.equal(row.requests, 5);
      assert.equal(row.completed, 5);
      assert.equal(row.admitted, 5);
      assert.equal(row.rejected_fraction, 0);
      const elapsedMs = performance.now() - startedAt;
      assert.ok(typeof row.ttft_p50_ms === "number" && row.ttft_p50_ms > 0, `TTFT ${row.ttft_p50_ms}`);
      // At speed-up 1 no first token can come later than the whole replay took.
      assert.ok(
        typeof row.ttft_p99_ms === "number" && row.ttft_p99_ms < elapsedMs,
        `TTFT p99 ${row.ttft_p99_ms}`,
      );
      assert.ok(typeof row.itl_p50_ms === "number" && row.itl_p50_ms > 0, `ITL ${row.itl_p50_ms}`);
      assert.ok(typeof row.goodput_rps === "number");
      assert.match(err.text(), /output-length mismatches 0; failures 0/);
      assert.match(err.text(), /replay: trace .* sent 5\/5/);
      // The engine generated exactly the trace's output lengths, and the shared trace blocks hit its cache.
      assert.equal(await metric(engine.url, "vllm:generation_tokens_total"), 7 + 12 + 3 + 9 + 1);
      assert.equal(await metric(engine.url, "vllm:prompt_tokens_total"), 1100 + 1300 + 200 + 1500 + 700);
      assert.ok(
        (await metric(engine.url, "vllm:prefix_cache_hits_total")) >= 1024,
        "shared 2×512 prefix hit",
      );

      const simOut = sink();
      const simCode = await simCommand.run(
        ["--trace", tracePath, "--policy", "none", "--engines", "1", "--json"],
        {
          stdout: simOut,
          stderr: sink(),
          env: {},
        },
      );
      assert.equal(simCode, 0);
      const [simRow] = JSON.parse(simOut.text()) as Record<string, unknown>[];
      assert.ok(simRow !== undefined);
      assert.deepEqual(Object.keys(row).sort(), Object.keys(simRow).sort());
      assert.equal(row.requests, simRow.requests);
      assert.equal(row.window_s, simRow.window_s);
    } finally {
      await engine.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("accounts rejections (level, reason, retry-after-ms), engine refusals and truncated streams", async () => {
    let served = 0;
    const behaviours = ["reject-sluice", "ok", "reject-plain", "ok", "reject-sluice", "truncate", "refuse"];
    const stub = createServer((req: IncomingMessage, res: ServerResponse) => {
      const behaviour = behaviours[served++ % behaviours.length];
      req.resume();
      req.on("end", () => {
        if (behaviour === "reject-sluice") {
          res.writeHead(429, {
            "content-type": "application/json",
            "retry-after": "2",
            "retry-after-ms": "1500",
          });
          res.end(
            JSON.stringify({
              error: { message: "no", type: "rate_limit_error", param: null, code: "inflight_limit" },
              sluice: {
                level: "ingress",
                reason: "inflight_limit",
                observed: 9,
                limit: 8,
                retry_after_ms: 1500,
              },
            }),
          );
        } else if (behaviour === "reject-plain") {
          res.writeHead(503, { "content-type": "text/plain" });
          res.end("overloaded");
        } else if (behaviour === "refuse") {
          res.writeHead(400, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              error: { message: "too long", type: "BadRequestError", code: "context_length_exceeded" },
            }),
          );
        } else {
          res.writeHead(200, { "content-type": "text/event-stream" });
          const chunk = (text: string) => `data: ${JSON.stringify({ choices: [{ index: 0, text }] })}\n\n`;
          res.write(chunk(" a"));
          res.write(chunk(" b"));
          if (behaviour === "truncate") {
            // Cut the connection once the headers and first tokens are surely on the wire.
            setTimeout(() => res.destroy(), 100);
            return;
          }
          res.write(chunk(" c"));
          res.write(
            `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 64, completion_tokens: 3 } })}\n\n`,
          );
          res.end("data: [DONE]\n\n");
        }
      });
    });
    await new Promise<void>((resolve) => stub.listen(0, "127.0.0.1", resolve));
    try {
      const port = (stub.address() as AddressInfo).port;
      const lines = Array.from({ length: 7 }, (_, i) =>
        JSON.stringify({ timestamp: i * 20, input_length: 64, output_length: 3, hash_ids: [i] }),
      );
      const trace = parseTrace(lines.join("\n"), "stub.jsonl", "mooncake");
      const measurements = await runReplay({
        trace,
        targets: [new URL(`http://127.0.0.1:${port}`)],
        spreadBucketMs: 0,
        maxClientLagMs: 5000,
        // One at a time: each request waits for the previous one to settle, none is lost.
        concurrencyLimit: 1,
      });
      assert.ok(measurements.inFlightAtSend.every((inFlight) => inFlight === 0));
      const { row, client } = summarizeReplay(measurements);
      assert.equal(served, 7);
      assert.equal(row.requests, 7);
      assert.equal(row.completed, 2);
      // Rejected at admission: 2 by Sluice's ingress (L1), 1 by an upstream that is not Sluice.
      assert.equal(row.admitted, 4);
      assert.deepEqual(row.rejected_by, {
        "L1:inflight_limit": Number((2 / 7).toFixed(6)),
        "engine:context_length_exceeded": Number((1 / 7).toFixed(6)),
        "upstream:http_503": Number((1 / 7).toFixed(6)),
      });
      assert.equal(row.rejected_by_level.L1, Number((2 / 7).toFixed(6)));
      assert.equal(row.late_rejections, 1);
      assert.equal(row.retry_after_p50_ms, 1500);
      assert.deepEqual(client.failures, { truncated: 1 });
      assert.equal(client.output_length_mismatches, 0);
      assert.equal(client.client_bottleneck, false);
    } finally {
      await new Promise<void>((resolve) => stub.close(() => resolve()));
    }
  });
});
