import { ConsecutiveBreaker, circuitBreaker, handleWhen, retry } from "cockatiel";
import { Etcd3, EtcdLeaseInvalidError, isRecoverableError, type Lease } from "etcd3";
import { DEFAULT_KEY_PREFIX, type SluiceKeys, sluiceKeys } from "./keys.js";
import type { Logger } from "./logger.js";

export interface EtcdSessionOptions {
  readonly endpoints: readonly string[];
  /** Key prefix. Default `/sluice/v1`. */
  readonly prefix?: string;
  /** Lease TTL; a crashed process vanishes from every view within it. Default 5 s. Keep-alive runs at TTL/3. */
  readonly leaseTtlSec?: number;
  /** Per-call dial timeout. Default 2000 ms. */
  readonly dialTimeoutMs?: number;
  /** Delay between attempts to grant a replacement lease after a loss. Default 500 ms. */
  readonly regrantDelayMs?: number;
  readonly logger?: Logger;
}

export const DEFAULT_LEASE_TTL_SEC = 5;
export const DEFAULT_ETCD_DIAL_TIMEOUT_MS = 2_000;
export const DEFAULT_REGRANT_DELAY_MS = 500;

export function etcdSessionOptionsWithDefaults(
  options: EtcdSessionOptions,
): Required<Omit<EtcdSessionOptions, "logger">> & { logger: Logger | undefined } {
  const resolved = {
    endpoints: options.endpoints.map((e) => e.trim()).filter((e) => e.length > 0),
    prefix: options.prefix ?? DEFAULT_KEY_PREFIX,
    leaseTtlSec: options.leaseTtlSec ?? DEFAULT_LEASE_TTL_SEC,
    dialTimeoutMs: options.dialTimeoutMs ?? DEFAULT_ETCD_DIAL_TIMEOUT_MS,
    regrantDelayMs: options.regrantDelayMs ?? DEFAULT_REGRANT_DELAY_MS,
    logger: options.logger,
  };
  if (resolved.endpoints.length === 0) throw new RangeError("etcd endpoints list is empty");
  if (!Number.isInteger(resolved.leaseTtlSec) || resolved.leaseTtlSec < 2) {
    throw new RangeError(
      `leaseTtlSec must be an integer >= 2 (keep-alive runs at TTL/3), got ${resolved.leaseTtlSec}`,
    );
  }
  return resolved;
}

/** The registration document under `{prefix}/instances/{role}/{id}`. */
export interface InstanceRegistration {
  readonly role: string;
  readonly id: string;
  /** Named addresses, e.g. `{ grpc: "10.0.0.5:7000", admin: "10.0.0.5:9090" }`. */
  readonly addresses: Readonly<Record<string, string>>;
  readonly version: string;
  /** ISO-8601 process start time. */
  readonly started_at: string;
  readonly pid: number;
}

export type EtcdSessionEvent =
  | { readonly type: "lease-granted"; readonly leaseId: string }
  | { readonly type: "lease-lost"; readonly leaseId: string; readonly error: Error }
  /** Everything put under the lost lease was written again under the new one. */
  | { readonly type: "reregistered"; readonly leaseId: string; readonly keys: readonly string[] }
  | { readonly type: "regrant-failed"; readonly error: Error };

export type EtcdSessionListener = (event: EtcdSessionEvent) => void;

export interface EtcdSession {
  readonly client: Etcd3;
  readonly keys: SluiceKeys;
  readonly leaseTtlSec: number;
  /** Id of the current lease (decimal string), waiting while a lost one is being replaced. */
  leaseId(): Promise<string>;
  /**
   * Runs `write` with the current lease id. If etcd says that lease no longer exists (revoked or
   * expired before keep-alive noticed), starts the replacement at once and runs `write` again
   * with the new lease.
   */
  withLease<T>(write: (leaseId: string) => Promise<T>): Promise<T>;
  /** Writes this process's registration under the lease and keeps it there across lease loss. */
  register(
    role: string,
    id: string,
    details: { addresses: Record<string, string>; version: string },
  ): Promise<string>;
  /**
   * Puts `key` under the session lease and remembers it, so it is written again if the lease is
   * lost and re-granted. If the put itself fails the key stays remembered; the error is thrown.
   */
  putUnderLease(key: string, value: string): Promise<void>;
  /** Forgets `key` and deletes it. */
  deleteUnderLease(key: string): Promise<void>;
  onEvent(listener: EtcdSessionListener): () => void;
  /** Revokes the lease (every registration disappears at once) and closes the client. Idempotent. */
  close(): Promise<void>;
}

/** The etcd3 client with fault handling tuned for a TTL of seconds (the default breaker opens for 5 s). */
export function createEtcdClient(endpoints: readonly string[], dialTimeoutMs: number): Etcd3 {
  return new Etcd3({
    hosts: [...endpoints],
    dialTimeout: dialTimeoutMs,
    faultHandling: {
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: 300,
          breaker: new ConsecutiveBreaker(3),
        }),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: 3 }),
    },
  });
}

const PROCESS_STARTED_AT = new Date(Date.now() - process.uptime() * 1000).toISOString();

/**
 * Opens the process's one etcd session: one lease (keep-alive at TTL/3), re-granted with every
 * remembered key re-written whenever it is lost (etcd unreachable for longer than the TTL, or
 * revoked behind our back).
 */
export async function openEtcdSession(options: EtcdSessionOptions): Promise<EtcdSession> {
  const opts = etcdSessionOptionsWithDefaults(options);
  const client = createEtcdClient(opts.endpoints, opts.dialTimeoutMs);
  const keys = sluiceKeys(opts.prefix);
  const remembered = new Map<string, string>();
  const listeners = new Set<EtcdSessionListener>();
  let closed = false;

  const emit = (event: EtcdSessionEvent): void => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (err) {
        opts.logger?.error({ err, event: event.type }, "etcd session listener threw");
      }
    }
  };

  let lease: Lease;
  let leaseIdNow = "";
  let current: Promise<string>;

  /** Grants a lease, retrying until it works or the session closes. */
  const grantLease = async (): Promise<string> => {
    for (;;) {
      const candidate = client.lease(opts.leaseTtlSec);
      candidate.on("lost", (err) => onLost(candidate, err));
      try {
        const id = await candidate.grant();
        if (closed) {
          // close() ran while this grant was in flight: nobody will keep it alive or revoke it.
          await candidate.revoke().catch(() => undefined);
          throw new Error("etcd session closed");
        }
        lease = candidate;
        leaseIdNow = id;
        emit({ type: "lease-granted", leaseId: id });
        return id;
      } catch (err) {
        candidate.release();
        if (closed) throw err;
        const error = err instanceof Error ? err : new Error(String(err));
        opts.logger?.warn({ err: error }, "etcd lease grant failed; retrying");
        emit({ type: "regrant-failed", error });
        await new Promise((resolve) => setTimeout(resolve, opts.regrantDelayMs));
      }
    }
  };

  const rewriteAll = async (leaseId: string): Promise<void> => {
    const written: string[] = [];
    for (const [key, value] of remembered) {
      await client.put(key).value(value).lease(leaseId).exec();
      written.push(key);
    }
    opts.logger?.info({ leaseId, keys: written }, "re-registered under new etcd lease");
    emit({ type: "reregistered", leaseId, keys: written });
  };

  const onLost = (which: Lease, err: Error): void => {
    if (closed || which !== lease) return; // a failed candidate, or an old lease after replacement
    const lostId = leaseIdNow;
    leaseIdNow = "";
    opts.logger?.warn({ err, leaseId: lostId }, "etcd lease lost; granting a new one");
    emit({ type: "lease-lost", leaseId: lostId, error: err });
    current = (async () => {
      for (;;) {
        const id = await grantLease();
        try {
          await rewriteAll(id);
          return id;
        } catch (rewriteErr) {
          // etcd went away again mid-way: drop this lease and start over rather than leave keys missing.
          opts.logger?.warn({ err: rewriteErr }, "re-registration failed; granting again");
          lease.release();
          if (closed) throw rewriteErr;
        }
      }
    })();
    current.catch(() => undefined);
  };

  const withLease = async <T>(write: (leaseId: string) => Promise<T>): Promise<T> => {
    const id = await current;
    try {
      return await write(id);
    } catch (err) {
      if (!(err instanceof EtcdLeaseInvalidError)) throw err;
      // Another write may have noticed first; only the first report of this lease replaces it.
      if (id === leaseIdNow) {
        lease.release();
        onLost(lease, err);
      }
      return write(await current);
    }
  };

  current = grantLease();
  await current;

  return {
    client,
    keys,
    leaseTtlSec: opts.leaseTtlSec,
    leaseId: () => current,
    withLease,
    register: async (role, id, details) => {
      const key = keys.instance(role, id);
      const registration: InstanceRegistration = {
        role,
        id,
        addresses: details.addresses,
        version: details.version,
        started_at: PROCESS_STARTED_AT,
        pid: process.pid,
      };
      const value = JSON.stringify(registration);
      remembered.set(key, value);
      await withLease((leaseId) => client.put(key).value(value).lease(leaseId).exec());
      return key;
    },
    putUnderLease: async (key, value) => {
      remembered.set(key, value);
      await withLease((leaseId) => client.put(key).value(value).lease(leaseId).exec());
    },
    deleteUnderLease: async (key) => {
      remembered.delete(key);
      await client.delete().key(key).exec();
    },
    onEvent: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        await lease.revoke();
      } catch (err) {
        // Unreachable etcd: the TTL removes the keys instead; closing must still finish.
        opts.logger?.warn({ err }, "etcd lease revoke failed; keys expire with the TTL");
      }
      listeners.clear();
      client.close();
    },
  };
}
