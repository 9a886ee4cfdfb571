import "./dispose.js";
import { setTimeout as sleep } from "node:timers/promises";
import { ServerStartError } from "./errors.js";
import { probeHttp } from "./http-probe.js";
import { DEFAULT_HOST, type ServerLaunchOptions } from "./managed-server.js";
import { type NatsServer, startNats } from "./nats-server.js";
import { freePort } from "./ports.js";

export interface NatsClusterOptions
  extends Pick<ServerLaunchOptions, "host" | "binary" | "env" | "readyTimeoutMs" | "stopTimeoutMs"> {
  /** Number of nodes. Default 2. */
  readonly nodes?: number;
  /**
   * Enable JetStream on every node. Default false: a clustered JetStream needs a quorum of its
   * meta group, which a 2-node cluster loses with either node, and core NATS is what fails over.
   */
  readonly jetstream?: boolean;
}

export interface NatsCluster extends AsyncDisposable {
  /** Every node, each with its own lifecycle (kill one to lose a node, start() to rejoin it). */
  readonly nodes: readonly NatsServer[];
  /** Client URL of every node. */
  readonly urls: readonly string[];
  /** The client URLs comma-separated, as `--nats-url` and nats.js `servers` take them. */
  readonly url: string;
  /**
   * Resolves once every running node has a route to every other running node (a node that was
   * restarted has rejoined); rejects after `timeoutMs`.
   */
  waitForRoutes(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes their temp dirs. Idempotent. */
  dispose(): Promise<void>;
}

export const DEFAULT_NATS_CLUSTER_NODES = 2;
export const DEFAULT_ROUTES_TIMEOUT_MS = 20_000;
const START_ATTEMPTS = 3;
const PROBE_TIMEOUT_MS = 1_000;
const ROUTES_POLL_MS = 50;

interface NodePorts {
  readonly port: number;
  readonly monitorPort: number;
  readonly clusterPort: number;
}

/**
 * Starts a real `nats-server` cluster (every node routes to every other) on free ports and
 * resolves once the routes are up. Never uses an external server: the point is to stop nodes.
 * Built on `startNats`, with the cluster flags passed as extra arguments.
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const count = options.nodes ?? DEFAULT_NATS_CLUSTER_NODES;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`nodes must be an integer >= 1, got ${count}`);
  }
  const host = options.host ?? DEFAULT_HOST;
  for (let attempt = 1; ; attempt++) {
    // Every node names every other's route port, so ports are picked up front; a port taken in
    // between fails the start, and the whole cluster is tried again on fresh ports.
    const ports: NodePorts[] = [];
    for (let i = 0; i < count; i++) {
      ports.push({
        port: await freePort(host),
        monitorPort: await freePort(host),
        clusterPort: await freePort(host),
      });
    }
    const clusterName = `sluice-test-${process.pid}`;
    const routes = ports.map((p) => `nats://${host}:${p.clusterPort}`).join(",");
    const started = await Promise.allSettled(
      ports.map((p, i) =>
        startNats({
          host,
          ...(options.binary !== undefined ? { binary: options.binary } : {}),
          ...(options.env !== undefined ? { env: options.env } : {}),
          ...(options.readyTimeoutMs !== undefined ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
          ...(options.stopTimeoutMs !== undefined ? { stopTimeoutMs: options.stopTimeoutMs } : {}),
          allowExternal: false,
          port: p.port,
          monitorPort: p.monitorPort,
          jetstream: options.jetstream ?? false,
          // A node lists every route, itself included: nats-server skips the route to itself.
          extraArgs: [
            "--server_name",
            `n${i}`,
            "--cluster_name",
            clusterName,
            "--cluster",
            `nats://${host}:${p.clusterPort}`,
            "--routes",
            routes,
          ],
        }),
      ),
    );
    const nodes = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const failure = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure === undefined) {
      const cluster = clusterHandle(nodes);
      try {
        await cluster.waitForRoutes(options.readyTimeoutMs ?? DEFAULT_ROUTES_TIMEOUT_MS);
      } catch (err) {
        await cluster.dispose();
        throw err;
      }
      return cluster;
    }
    await Promise.allSettled(nodes.map((n) => n.dispose()));
    const clash =
      failure.reason instanceof ServerStartError && /address already in use/i.test(failure.reason.logTail);
    if (!clash || attempt >= START_ATTEMPTS) throw failure.reason;
  }
}

/** Number of routes a node reports on its monitoring port; undefined when it does not answer. */
async function routeCount(node: NatsServer): Promise<number | undefined> {
  if (node.monitorUrl === undefined) return undefined;
  const res = await probeHttp(`${node.monitorUrl}/routez`, PROBE_TIMEOUT_MS);
  if (res?.status !== 200) return undefined;
  try {
    return (JSON.parse(res.body) as { num_routes?: number }).num_routes ?? 0;
  } catch {
    return undefined;
  }
}

function clusterHandle(nodes: readonly NatsServer[]): NatsCluster {
  let disposed: Promise<void> | undefined;
  const dispose = (): Promise<void> => {
    disposed ??= Promise.allSettled(nodes.map((n) => n.dispose())).then(() => undefined);
    return disposed;
  };
  const urls = nodes.map((n) => n.url);
  return {
    nodes,
    urls,
    url: urls.join(","),
    waitForRoutes: async (timeoutMs = DEFAULT_ROUTES_TIMEOUT_MS) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const running = nodes.filter((n) => n.running);
        const counts = await Promise.all(running.map(routeCount));
        if (counts.every((c) => c !== undefined && c >= running.length - 1)) return;
        if (Date.now() > deadline) {
          throw new Error(
            `NATS cluster routes not up within ${timeoutMs} ms (routes per running node: ${counts.join(", ")})`,
          );
        }
        await sleep(ROUTES_POLL_MS);
      }
    },
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}
