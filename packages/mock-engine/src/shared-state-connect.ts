// LOCAL ADAPTER (mock-engine) for the NATS connection and the etcd lease. `@sluice/runtime`'s
// `connectNats` / `openEtcdSession` resolve only once NATS / etcd answer and cannot be cancelled before
// that, so an engine started while either is down would neither serve at once nor exit on SIGTERM.
// The engine must serve regardless (DESIGN §9), so it connects in the background here: the first NATS
// connect is retried on unref'd timers (nats.js reconnects by itself after that) and the lease is
// re-granted and every registration re-written after a loss. Key and subject names, the etcd client's
// fault handling and the instance document come from the runtime.
import { createEtcdClient, type InstanceRegistration } from "@sluice/runtime";
import type { Lease } from "etcd3";
import { connect, type NatsConnection } from "nats";
import type { Publisher } from "./kv-events.js";

export interface SharedStateConfig {
  readonly id: string;
  readonly natsUrl: string;
  readonly etcdEndpoints: readonly string[];
  readonly leaseTtlMs: number;
}

interface SharedStateLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface SharedState {
  /** The NATS connection to publish on, or undefined before the first connect / after close. */
  publisher: () => Publisher | undefined;
  /** True while NATS is connected. */
  natsConnected(): boolean;
  /**
   * Keeps `key` (a full etcd key) = JSON of `value()` under this process's lease, re-written whenever
   * a new lease is granted after an outage.
   */
  register(key: string, value: () => object): void;
  /** Resolves once every registration is written under the current lease (tests, start-up logs). */
  registered(): Promise<void>;
  /** Revokes the lease (registrations vanish at once) and closes the etcd client. */
  releaseLease(): Promise<void>;
  /** Flushes pending publishes and closes NATS. */
  closeNats(): Promise<void>;
}

const RETRY_MS = 1_000;
/** Outage retries back off exponentially up to this, so a long outage logs a line every 10 s, not every 1 s. */
const MAX_RETRY_MS = 10_000;

function backoffMs(attempt: number): number {
  return Math.min(MAX_RETRY_MS, RETRY_MS * 2 ** Math.min(attempt, 10));
}
const REVOKE_TIMEOUT_MS = 2_000;
const ETCD_DIAL_TIMEOUT_MS = 2_000;

export function connectSharedState(config: SharedStateConfig, logger: SharedStateLogger): SharedState {
  let nats: NatsConnection | undefined;
  let natsUp = false;
  let natsClosed = false;
  let natsRetry: NodeJS.Timeout | undefined;
  let natsAttempts = 0;

  async function watchNats(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") {
        natsUp = false;
        logger.warn({ server: status.data }, "NATS disconnected; publishes are buffered until it is back");
      } else if (status.type === "reconnect") {
        natsUp = true;
        logger.info({ server: status.data }, "NATS reconnected");
      }
    }
  }

  // The first connection is retried here (with an unref'd timer, so a missing NATS never keeps a
  // stopping process alive); after it, nats.js reconnects by itself, forever.
  function connectNats(): void {
    natsRetry = undefined;
    if (natsClosed) return;
    connect({
      servers: config.natsUrl.split(",").map((s) => s.trim()),
      name: `mock-engine-${config.id}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    }).then(
      (nc) => {
        if (natsClosed) {
          void nc.close();
          return;
        }
        nats = nc;
        natsUp = true;
        natsAttempts = 0;
        logger.info({ server: nc.getServer() }, "NATS connected");
        void watchNats(nc);
      },
      (error: unknown) => {
        logger.warn({ err: error }, "NATS unreachable; serving without publishing, retrying");
        natsRetry = setTimeout(connectNats, backoffMs(natsAttempts));
        natsAttempts += 1;
        natsRetry.unref();
      },
    );
  }
  connectNats();

  const etcd = createEtcdClient(config.etcdEndpoints, ETCD_DIAL_TIMEOUT_MS);
  const ttlSeconds = Math.max(1, Math.ceil(config.leaseTtlMs / 1000));
  const registrations = new Map<string, () => object>();
  let lease: Lease | undefined;
  let leaseClosed = false;
  let written: Promise<void> = Promise.resolve();
  let leaseAttempts = 0;

  async function writeAll(target: Lease): Promise<void> {
    for (const [key, value] of registrations) await writeOne(target, key, value);
  }

  async function writeOne(target: Lease, key: string, value: () => object): Promise<void> {
    let attempt = 0;
    while (!leaseClosed && lease === target) {
      try {
        await target.put(key).value(JSON.stringify(value()));
        return;
      } catch (error) {
        logger.warn({ err: error, key }, "etcd registration failed; retrying");
        await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt++)).unref());
      }
    }
  }

  function grantLease(): void {
    if (leaseClosed) return;
    const next = etcd.lease(ttlSeconds, { autoKeepAlive: true });
    lease = next;
    next.on("lost", (error) => {
      if (lease !== next || leaseClosed) return;
      lease = undefined;
      logger.warn({ err: error }, "etcd lease lost; granting a new one and re-registering");
      setTimeout(grantLease, backoffMs(leaseAttempts)).unref();
      leaseAttempts += 1;
    });
    next.on("keepaliveSucceeded", () => {
      leaseAttempts = 0;
    });
    written = writeAll(next);
  }
  grantLease();

  return {
    publisher: () => (nats !== undefined && !nats.isClosed() ? nats : undefined),
    natsConnected: () => natsUp,
    register(key, value) {
      registrations.set(key, value);
      const current = lease;
      if (current !== undefined) written = written.then(() => writeOne(current, key, value));
    },
    registered: () => written,
    async releaseLease() {
      leaseClosed = true;
      const current = lease;
      lease = undefined;
      if (current !== undefined) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          current.revoke().catch((error: unknown) => logger.warn({ err: error }, "etcd lease revoke failed")),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, REVOKE_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timer);
      }
      etcd.close();
    },
    async closeNats() {
      natsClosed = true;
      if (natsRetry !== undefined) clearTimeout(natsRetry);
      const nc = nats;
      nats = undefined;
      natsUp = false;
      if (nc === undefined || nc.isClosed()) return;
      try {
        await nc.drain();
      } catch {
        await nc.close();
      }
    },
  };
}

export interface InstanceRegistrationInput {
  id: string;
  url: string;
  adminUrl: string;
  version: string;
  startedAtMs: number;
}

/** `instances/mock-engine/{id}`: the runtime's `InstanceRegistration` document. */
export function instanceRegistrationValue(input: InstanceRegistrationInput): InstanceRegistration {
  return {
    role: "mock-engine",
    id: input.id,
    addresses: { http: input.url, admin: input.adminUrl },
    version: input.version,
    started_at: new Date(input.startedAtMs).toISOString(),
    pid: process.pid,
  };
}

export interface EngineRegistrationInput {
  workerId: string;
  model: string;
  url: string;
  blockSize: number;
  kvTotalBlocks: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  startedAtMs: number;
}

/**
 * `engines/{worker_id}`: proto3 JSON (proto field names) of `sluice.v1.EngineRegistration`. Without an
 * engine-scheduler sidecar the engine itself is what ingresses forward to, so `scheduler_url` is the
 * engine's URL too.
 */
export function engineRegistrationValue(input: EngineRegistrationInput): object {
  return {
    worker_id: input.workerId,
    model: input.model,
    engine_url: input.url,
    scheduler_url: input.url,
    block_size: input.blockSize,
    kv_total_blocks: input.kvTotalBlocks,
    max_num_seqs: input.maxNumSeqs,
    max_num_batched_tokens: input.maxNumBatchedTokens,
    started_at_ms: input.startedAtMs,
  };
}
