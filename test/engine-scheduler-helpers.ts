// Shared set-up of the engine-scheduler cross-process tests: a real mock engine and a real sidecar,
// both in this process through their command entry points, against real nats-server and etcd.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { type LaunchedEngineScheduler, launchEngineScheduler } from "@sluice/engine-scheduler";
import { type LaunchedMockEngine, launchMockEngine } from "@sluice/mock-engine";
import { Etcd3 } from "etcd3";

export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export interface Stack {
  engine: LaunchedMockEngine;
  sidecar: LaunchedEngineScheduler;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function startStack(opts: {
  natsUrl: string;
  etcdEndpoints: readonly string[];
  workerId: string;
  engineArgs?: string[];
  sidecarArgs?: string[];
  /** Written as `policies/_default` (proto3 JSON) before the sidecar starts. */
  policy?: object;
}): Promise<Stack> {
  if (opts.policy !== undefined) {
    const client = new Etcd3({ hosts: [...opts.etcdEndpoints] });
    try {
      await client.put("/sluice/v1/policies/_default").value(JSON.stringify(opts.policy));
    } finally {
      client.close();
    }
  }
  const common = [
    "--admin-port=0",
    "--log-level=silent",
    `--nats-url=${opts.natsUrl}`,
    `--etcd-endpoints=${opts.etcdEndpoints.join(",")}`,
    "--namespace=es",
    "--lease-ttl=2s",
  ];
  const engine = await launchMockEngine({
    argv: [
      ...common,
      "--port=0",
      `--id=${opts.workerId}-engine`,
      // The sidecar registers engines/<worker> and publishes its load; the engine keeps its own id.
      `--worker-id=${opts.workerId}-engine`,
      "--register-engine=false",
      "--shutdown-timeout=0s",
      ...(opts.engineArgs ?? []),
    ],
    env: {},
  });
  assert.ok(typeof engine !== "number", "mock engine started");
  const sidecar = await launchEngineScheduler({
    argv: [
      ...common,
      "--port=0",
      `--id=${opts.workerId}-sidecar`,
      `--worker-id=${opts.workerId}`,
      `--engine-url=${engine.url}`,
      "--scrape-interval=100ms",
      "--shutdown-timeout=2s",
      ...(opts.sidecarArgs ?? []),
    ],
    env: {},
  });
  if (typeof sidecar === "number") {
    await engine.stop();
    assert.fail(`sidecar exited with ${sidecar}`);
  }
  return {
    engine,
    sidecar,
    async [Symbol.asyncDispose]() {
      await sidecar.stop();
      await engine.stop();
    },
  };
}

export function post(
  url: string,
  body: object,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

/** A prompt of `n` token ids (the mock engine takes token arrays as given). */
export const tokens = (n: number, seed = 1) =>
  Array.from({ length: n }, (_, i) => 100 + ((i * 7 + seed) % 5000));
