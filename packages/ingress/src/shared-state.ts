// LOCAL ADAPTER (ingress): `@sluice/runtime` has no NATS/etcd helpers (nats.ts, etcd.ts) yet, so the
// ingress talks to nats.js and etcd3 directly here, with the behaviour DESIGN §3/§9 asks of every
// process: one lease kept alive at TTL/3 carrying the registrations, re-granted and re-written after
// an outage; NATS reconnecting forever; neither outage stops serving. Replace with the runtime
// helpers once they exist (mirrors packages/mock-engine/src/shared-state-connect.ts).

import { Etcd3, type Lease } from "etcd3";
import { connect, type NatsConnection } from "nats";

export interface SharedStateConfig {
  readonly id: string;
  readonly role: string;
  readonly natsUrl: string;
  readonly etcdEndpoints: readonly string[];
  readonly etcdPrefix: string;
  readonly leaseTtlMs: number;
}

export interface SharedStateLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface SharedState {
  readonly etcd: Etcd3;
  /** The NATS connection, or undefined before the first connect / after close. */
  nats(): NatsConnection | undefined;
  /** True while NATS is connected. */
  natsConnected(): boolean;
  /** Called with the connection once connected (at once if it already is). */
  onNatsConnect(handler: (nc: NatsConnection) => void): void;
  /** Called on every connected ↔ disconnected change. */
  onNatsStatus(handler: (connected: boolean) => void): void;
  /** Keeps `<prefix>/<key>` = JSON of `value()` under this process's lease, re-written after lease loss. */
  register(key: string, value: () => object): void;
  registered(): Promise<void>;
  releaseLease(): Promise<void>;
  closeNats(): Promise<void>;
}

const RETRY_MS = 500;
const MAX_RETRY_MS = 10_000;
const REVOKE_TIMEOUT_MS = 2_000;
const DRAIN_TIMEOUT_MS = 2_000;

function backoffMs(attempt: number): number {
  return Math.min(MAX_RETRY_MS, RETRY_MS * 2 ** Math.min(attempt, 10));
}

export function connectSharedState(config: SharedStateConfig, logger: SharedStateLogger): SharedState {
  let nats: NatsConnection | undefined;
  let natsUp = false;
  let natsClosed = false;
  let natsRetry: NodeJS.Timeout | undefined;
  let natsAttempts = 0;
  const connectHandlers: ((nc: NatsConnection) => void)[] = [];
  const statusHandlers: ((connected: boolean) => void)[] = [];
  const setUp = (up: boolean) => {
    if (natsUp === up) return;
    natsUp = up;
    for (const h of statusHandlers) h(up);
  };

  async function watchNats(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") {
        setUp(false);
        logger.warn({ server: status.data }, "NATS disconnected; applying the fail mode until it is back");
      } else if (status.type === "reconnect") {
        setUp(true);
        logger.info({ server: status.data }, "NATS reconnected");
      }
    }
  }

  function connectNats(): void {
    natsRetry = undefined;
    if (natsClosed) return;
    connect({
      servers: config.natsUrl.split(",").map((s) => s.trim()),
      name: `${config.role}-${config.id}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 2_000,
      maxPingOut: 2,
    }).then(
      (nc) => {
        if (natsClosed) {
          void nc.close();
          return;
        }
        nats = nc;
        natsAttempts = 0;
        logger.info({ server: nc.getServer() }, "NATS connected");
        for (const h of connectHandlers) h(nc);
        setUp(true);
        void watchNats(nc);
      },
      (error: unknown) => {
        logger.warn({ err: error }, "NATS unreachable; serving with the fail mode, retrying");
        natsRetry = setTimeout(connectNats, backoffMs(natsAttempts));
        natsAttempts += 1;
        natsRetry.unref();
      },
    );
  }

  const etcd = new Etcd3({ hosts: [...config.etcdEndpoints] });
  const ttlSeconds = Math.max(1, Math.ceil(config.leaseTtlMs / 1000));
  const registrations = new Map<string, () => object>();
  let lease: Lease | undefined;
  let leaseClosed = false;
  let written: Promise<void> = Promise.resolve();
  let leaseAttempts = 0;

  async function writeOne(target: Lease, key: string, value: () => object): Promise<void> {
    let attempt = 0;
    while (!leaseClosed && lease === target) {
      try {
        await target.put(`${config.etcdPrefix}/${key}`).value(JSON.stringify(value()));
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
    written = (async () => {
      for (const [key, value] of registrations) await writeOne(next, key, value);
    })();
  }

  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    connectNats();
    grantLease();
  };
  // Handlers are attached synchronously after creation; connecting starts on the next tick.
  queueMicrotask(start);

  return {
    etcd,
    nats: () => (nats !== undefined && !nats.isClosed() ? nats : undefined),
    natsConnected: () => natsUp,
    onNatsConnect(handler) {
      connectHandlers.push(handler);
      // Registered after the first connect: deliver the current connection now.
      if (nats !== undefined && !nats.isClosed()) handler(nats);
    },
    onNatsStatus: (h) => statusHandlers.push(h),
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
      if (nc === undefined || nc.isClosed()) return;
      // Draining needs a live server; while disconnected (or if draining hangs) close outright, or the
      // reconnect loop would keep the process alive.
      const wasUp = natsUp;
      setUp(false);
      if (wasUp) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          nc.drain().catch(() => {}),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, DRAIN_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timer);
      }
      if (!nc.isClosed()) await nc.close();
    },
  };
}
