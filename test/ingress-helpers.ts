// Shared set-up of the ingress cross-process tests: real nats-server and etcd (testkit), engine
// registrations written to etcd exactly as engines write them, a scriptable upstream engine for
// fault injection, and in-process `sluice ingress` instances.

import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { type LaunchedIngress, launchIngress } from "@sluice/ingress";
import { type EtcdServer, type NatsServer, startEtcd, startNats } from "@sluice/testkit";
import { Etcd3, type Lease } from "etcd3";

export interface TestCluster {
  nats: NatsServer;
  etcdServer: EtcdServer;
  etcd: Etcd3;
  prefix: string;
  close(): Promise<void>;
}

export async function startCluster(prefix = "/sluice/v1"): Promise<TestCluster> {
  const [nats, etcdServer] = await Promise.all([startNats({ jetstream: false }), startEtcd()]);
  const etcd = new Etcd3({ hosts: [...etcdServer.endpoints] });
  return {
    nats,
    etcdServer,
    etcd,
    prefix,
    async close() {
      etcd.close();
      await Promise.allSettled([nats.dispose(), etcdServer.dispose()]);
    },
  };
}

export interface EngineRegistration {
  workerId: string;
  model: string;
  url: string;
  blockSize?: number;
  kvTotalBlocks?: number;
}

/** Writes `engines/{worker_id}` under its own lease, as mock-engine does; revoke the lease to unregister. */
export async function registerEngine(cluster: TestCluster, engine: EngineRegistration): Promise<Lease> {
  const lease = cluster.etcd.lease(5);
  await lease.put(`${cluster.prefix}/engines/${engine.workerId}`).value(
    JSON.stringify({
      worker_id: engine.workerId,
      model: engine.model,
      engine_url: engine.url,
      scheduler_url: engine.url,
      block_size: engine.blockSize ?? 16,
      kv_total_blocks: engine.kvTotalBlocks ?? 100_000,
      max_num_seqs: 256,
      max_num_batched_tokens: 8192,
    }),
  );
  return lease;
}

export async function launch(cluster: TestCluster, extra: readonly string[] = []): Promise<LaunchedIngress> {
  const launched = await launchIngress({
    argv: [
      "--port",
      "0",
      "--nats-url",
      cluster.nats.url,
      "--etcd-endpoints",
      cluster.etcdServer.endpoints.join(","),
      "--etcd-prefix",
      cluster.prefix,
      "--log-level",
      process.env.SLUICE_LOG_LEVEL ?? "silent",
      "--shutdown-timeout",
      "3s",
      ...extra,
    ],
  });
  assert.ok(typeof launched !== "number", `ingress exited during start-up with ${String(launched)}`);
  return launched;
}

/** Waits until `check` holds, polling; fails with `what` after `timeoutMs`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Value of one Prometheus series from an admin server (`name{labels}` or `name`). */
export async function metricValue(adminUrl: string, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

export interface FakeEngineBehaviour {
  /** SSE chunks of a streamed answer. */
  chunks: number;
  /** Delay between chunks. */
  chunkDelayMs: number;
  /** Fraction of requests that fail: half answer 500, half cut the connection mid-stream. */
  failRate: number;
}

export interface FakeEngine {
  url: string;
  /** Headers of the last request received. */
  lastHeaders: http.IncomingHttpHeaders | undefined;
  /** Requests whose connection is open now. */
  open(): number;
  behaviour: FakeEngineBehaviour;
  close(): Promise<void>;
}

/**
 * A minimal OpenAI-shaped upstream with scriptable faults (the real mock engine has no fault
 * injection); the ingress cannot tell it from an engine.
 */
export async function startFakeEngine(behaviour: Partial<FakeEngineBehaviour> = {}): Promise<FakeEngine> {
  const state: FakeEngine = {
    url: "",
    lastHeaders: undefined,
    open: () => open,
    behaviour: { chunks: 5, chunkDelayMs: 2, failRate: 0, ...behaviour },
    close: async () => {},
  };
  let open = 0;
  let counter = 0;
  const server = http.createServer((req, res) => {
    open++;
    res.on("close", () => open--);
    state.lastHeaders = req.headers;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as {
        stream?: boolean;
        model?: string;
      };
      counter++;
      const { failRate, chunks: n, chunkDelayMs } = state.behaviour;
      const fail = failRate > 0 && Math.random() < failRate;
      if (fail && counter % 2 === 0) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ error: { message: "injected", type: "server_error", param: null, code: "x" } }),
        );
        return;
      }
      if (body.stream !== true) {
        res.writeHead(200, {
          "content-type": "application/json",
          "x-upstream": "fake",
          "keep-alive": "timeout=5",
        });
        res.end(
          JSON.stringify({
            id: "cmpl-1",
            object: "text_completion",
            created: 0,
            model: body.model,
            choices: [{ index: 0, text: "ok", finish_reason: "stop", logprobs: null }],
            usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
          }),
        );
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      let sent = 0;
      const tick = () => {
        if (res.destroyed) return;
        if (fail && sent === Math.floor(n / 2)) {
          res.socket?.destroy();
          return;
        }
        if (sent === n) {
          res.end("data: [DONE]\n\n");
          return;
        }
        sent++;
        res.write(
          `data: ${JSON.stringify({ id: "c", object: "text_completion", created: 0, model: body.model, choices: [{ index: 0, text: `t${sent}`, finish_reason: null, logprobs: null }] })}\n\n`,
        );
        setTimeout(tick, chunkDelayMs);
      };
      tick();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

export interface IngressChild {
  url: string;
  adminUrl: string;
  id: string;
  child: import("node:child_process").ChildProcess;
  /** Its JSON log lines so far. */
  logs: string[];
}

/** `sluice ingress` in its own OS process (so a test can SIGKILL it), from the TypeScript sources. */
export async function spawnIngress(
  cluster: TestCluster,
  id: string,
  extra: readonly string[] = [],
): Promise<IngressChild> {
  const { spawn } = await import("node:child_process");
  const { createInterface } = await import("node:readline");
  const argv = [
    "--id",
    id,
    "--port",
    "0",
    "--nats-url",
    cluster.nats.url,
    "--etcd-endpoints",
    cluster.etcdServer.endpoints.join(","),
    "--etcd-prefix",
    cluster.prefix,
    "--log-level",
    "info",
    ...extra,
  ];
  const script = `import { ingressCommand } from "@sluice/ingress"; process.exitCode = await ingressCommand.run(${JSON.stringify(argv)});`;
  const child = spawn(
    process.execPath,
    ["--conditions=sluice-src", "--import", "tsx", "--input-type=module", "-e", script],
    {
      cwd: new URL("..", import.meta.url).pathname,
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const logs: string[] = [];
  lines.on("line", (line) => logs.push(line));
  return new Promise<IngressChild>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("child ingress did not start within 30 s")), 30_000);
    child.once("exit", (code) => reject(new Error(`child ingress exited with ${code}`)));
    lines.on("line", (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string; admin?: string };
        if (entry.msg === "ingress listening" && entry.url && entry.admin) {
          clearTimeout(timer);
          resolve({ url: entry.url, adminUrl: entry.admin, id, child, logs });
        }
      } catch {
        // not a log line
      }
    });
  });
}
