import "./dispose.js";
import { createServer, type Socket, connect as tcpConnect } from "node:net";

/** Which way bytes flow: `upstream` = client → target, `downstream` = target → client. */
export type ProxyDirection = "upstream" | "downstream";

export interface FaultProxyOptions {
  /** Where to forward: `host:port`, or a URL such as `nats://127.0.0.1:4222` / `http://127.0.0.1:2379`. */
  readonly target: string;
  /** Interface to listen on. Default `127.0.0.1`. */
  readonly host?: string;
  /** Port to listen on. Default: a free port chosen by the kernel. */
  readonly port?: number;
}

export interface FaultProxy extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** `host:port` of the proxy. */
  readonly address: string;
  /** The proxy's address with a scheme, e.g. `url("nats")` → `nats://127.0.0.1:40123`. */
  url(scheme: string): string;
  /** Number of proxied connection pairs currently open. */
  readonly connectionCount: number;
  /**
   * Stops forwarding in both directions without closing anything: a network partition. Bytes
   * wait in socket buffers (TCP flow control), so both ends see a silent peer, not an error.
   */
  suspend(): void;
  /** Forwards again in both directions, delivering whatever was held. */
  resume(): void;
  /** Stops one direction only (e.g. requests arrive but responses never come back). */
  pause(direction: ProxyDirection): void;
  /** Undoes pause() for one direction. */
  unpause(direction: ProxyDirection): void;
  /** Destroys every open connection (both ends see a reset); new connections are still accepted. */
  resetConnections(): void;
  /** Stops listening and destroys every connection. Idempotent. */
  close(): Promise<void>;
}

function parseTarget(target: string): { host: string; port: number } {
  const withScheme = target.includes("://") ? target : `tcp://${target}`;
  const url = new URL(withScheme);
  const port = Number(url.port);
  if (!Number.isInteger(port) || port <= 0) {
    throw new RangeError(`fault proxy target ${JSON.stringify(target)} has no valid port`);
  }
  return { host: url.hostname.replace(/^\[|\]$/g, ""), port };
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
}

/**
 * A TCP proxy for fault injection (after etcd3's `src/test/util.ts` Proxy): tests connect through
 * it and then partition the link, stall one direction or reset connections, without root.
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = parseTarget(options.target);
  const host = options.host ?? "127.0.0.1";
  const pairs = new Set<Pair>();
  const blocked: Record<ProxyDirection, boolean> = { upstream: false, downstream: false };

  const applyFlow = (pair: Pair): void => {
    // Pausing the *reading* side is what holds the bytes: the writer's kernel buffer fills up.
    if (blocked.upstream) pair.client.pause();
    else pair.client.resume();
    if (blocked.downstream) pair.upstream.pause();
    else pair.upstream.resume();
  };
  const applyAll = (): void => {
    for (const pair of pairs) applyFlow(pair);
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    const upstream = tcpConnect({ host: target.host, port: target.port });
    upstream.pause();
    const pair: Pair = { client, upstream };
    pairs.add(pair);
    const teardown = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => {
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!client.write(chunk)) upstream.pause();
    });
    upstream.on("drain", () => {
      if (!blocked.upstream) client.resume();
    });
    client.on("drain", () => {
      if (!blocked.downstream) upstream.resume();
    });
    client.on("close", teardown);
    upstream.on("close", teardown);
    client.on("error", teardown);
    upstream.on("error", teardown);
    upstream.once("connect", () => applyFlow(pair));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port: options.port ?? 0 }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  if (bound === null || typeof bound === "string")
    throw new Error("fault proxy could not read its bound address");
  const port = bound.port;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
    });
    return closed;
  };

  return {
    host,
    port,
    address: `${host}:${port}`,
    url: (scheme) => `${scheme}://${host}:${port}`,
    get connectionCount() {
      return pairs.size;
    },
    suspend: () => {
      blocked.upstream = true;
      blocked.downstream = true;
      applyAll();
    },
    resume: () => {
      blocked.upstream = false;
      blocked.downstream = false;
      applyAll();
    },
    pause: (direction) => {
      blocked[direction] = true;
      applyAll();
    },
    unpause: (direction) => {
      blocked[direction] = false;
      applyAll();
    },
    resetConnections: () => {
      for (const pair of pairs) {
        pair.client.resetAndDestroy();
        pair.upstream.resetAndDestroy();
      }
      pairs.clear();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
