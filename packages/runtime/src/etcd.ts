// The process's one etcd session: one lease (keep-alive at TTL/3) and everything written under it.
// Two entry points over one implementation:
//
//   const etcd = createEtcdSession({ endpoints, prefix, leaseTtlSec, logger }); // returns at once
//   void etcd.register(role, id, { addresses, version });  // written as soon as a lease exists
//   void etcd.putUnderLease(etcd.keys.engine(workerId), json); // same, for any key
//   await etcd.ready(signal);     // optional: lease held and every key so far written (abortable)
//   await etcd.close();           // any time, also before the first grant; revokes, bounded wait
//
//   const etcd = await openEtcdSession({ endpoints, signal }); // = createEtcdSession + ready()
//
// While etcd is unreachable the lease grant, and every write, is retried in the background with
// backoff (unref'd timers: a stopping process is never held up). Every key given to `register` /
// `putUnderLease` is remembered and written again under the new lease whenever one is lost (etcd
// unreachable for longer than the TTL, or revoked behind our back), so membership comes back by
// itself after an outage (DESIGN §9). `register` / `putUnderLease` resolve once the key is written
// and reject only on close (`ConnectionClosedError`) or a non-retryable etcd error; they are safe
// to `void` (a rejection nobody awaits is not reported as unhandled).
import { setTimeout as sleep } from "node:timers/promises";
import { ConsecutiveBreaker, circuitBreaker, handleWhen, retry } from "cockatiel";
import {
  ClientClosedError,
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  EtcdRoleNotGrantedError,
  GRPCInvalidArgumentError,
  GRPCUnauthenticatedError,
  isRecoverableError,
  type Lease,
} from "etcd3";
import { ConnectionClosedError } from "./errors.js";
import { type EtcdSecurity, etcdClientSecurityOptions } from "./etcd-auth.js";
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
  /** First delay between attempts to grant a lease or write a key while etcd is unreachable. Default 500 ms. */
  readonly regrantDelayMs?: number;
  /** The retry delay doubles up to this, so a long outage is not hammered. Default 5000 ms. */
  readonly maxRegrantDelayMs?: number;
  /** close() waits at most this long for the lease revoke (etcd may be down; the TTL then cleans up). Default 1000 ms. */
  readonly revokeTimeoutMs?: number;
  /** etcd user and TLS; default none. Files are read when the session is created. */
  readonly security?: EtcdSecurity;
  readonly logger?: Logger;
}

export const DEFAULT_LEASE_TTL_SEC = 5;
export const DEFAULT_ETCD_DIAL_TIMEOUT_MS = 2_000;
export const DEFAULT_REGRANT_DELAY_MS = 500;
export const DEFAULT_MAX_REGRANT_DELAY_MS = 5_000;
export const DEFAULT_ETCD_REVOKE_TIMEOUT_MS = 1_000;

export function etcdSessionOptionsWithDefaults(options: EtcdSessionOptions): Required<
  Omit<EtcdSessionOptions, "logger" | "security">
> & {
  security: EtcdSecurity | undefined;
  logger: Logger | undefined;
} {
  const resolved = {
    endpoints: options.endpoints.map((e) => e.trim()).filter((e) => e.length > 0),
    prefix: options.prefix ?? DEFAULT_KEY_PREFIX,
    leaseTtlSec: options.leaseTtlSec ?? DEFAULT_LEASE_TTL_SEC,
    dialTimeoutMs: options.dialTimeoutMs ?? DEFAULT_ETCD_DIAL_TIMEOUT_MS,
    regrantDelayMs: options.regrantDelayMs ?? DEFAULT_REGRANT_DELAY_MS,
    maxRegrantDelayMs: options.maxRegrantDelayMs ?? DEFAULT_MAX_REGRANT_DELAY_MS,
    revokeTimeoutMs: options.revokeTimeoutMs ?? DEFAULT_ETCD_REVOKE_TIMEOUT_MS,
    security: options.security,
    logger: options.logger,
  };
  if (resolved.endpoints.length === 0) throw new RangeError("etcd endpoints list is empty");
  if (!Number.isInteger(resolved.leaseTtlSec) || resolved.leaseTtlSec < 2) {
    throw new RangeError(
      `leaseTtlSec must be an integer >= 2 (keep-alive runs at TTL/3), got ${resolved.leaseTtlSec}`,
    );
  }
  if (!(resolved.regrantDelayMs > 0) || !(resolved.maxRegrantDelayMs >= resolved.regrantDelayMs)) {
    throw new RangeError(
      `etcd retry delays must satisfy 0 < regrantDelayMs (${resolved.regrantDelayMs}) <= maxRegrantDelayMs (${resolved.maxRegrantDelayMs})`,
    );
  }
  if (!(resolved.revokeTimeoutMs > 0)) {
    throw new RangeError(`revokeTimeoutMs must be > 0, got ${resolved.revokeTimeoutMs}`);
  }
  return resolved;
}

/** Retry delay after `failures` consecutive failures: doubles, capped. */
export function etcdRetryDelayMs(
  failures: number,
  opts: { readonly regrantDelayMs: number; readonly maxRegrantDelayMs: number },
): number {
  return Math.min(opts.maxRegrantDelayMs, opts.regrantDelayMs * 2 ** Math.min(failures, 20));
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
  /** A lease grant failed (etcd unreachable); the next attempt follows after a backoff. */
  | { readonly type: "regrant-failed"; readonly error: Error };

export type EtcdSessionListener = (event: EtcdSessionEvent) => void;

export interface EtcdSession {
  readonly client: Etcd3;
  readonly keys: SluiceKeys;
  readonly leaseTtlSec: number;
  /** True while a granted lease is believed alive (false before the first grant and while replacing a lost one). */
  readonly hasLease: boolean;
  /** True once close() was called. */
  readonly isClosed: boolean;
  /**
   * Id of the current lease (decimal string), waiting for the first grant or while a lost one is
   * being replaced. Rejects with `ConnectionClosedError` when the session closes first.
   */
  leaseId(): Promise<string>;
  /**
   * Resolves once a lease is held and every key registered so far has been written under it.
   * Rejects with `ConnectionClosedError` on close, or with `signal.reason` when aborted.
   */
  ready(signal?: AbortSignal): Promise<void>;
  /**
   * Runs `write` with the current lease id (waiting for one). If etcd says that lease no longer
   * exists (revoked or expired before keep-alive noticed), starts the replacement at once and runs
   * `write` again with the new lease. Errors of `write` are not retried otherwise.
   */
  withLease<T>(write: (leaseId: string) => Promise<T>): Promise<T>;
  /**
   * Keeps this process's registration `{prefix}/instances/{role}/{id}` under the lease, across lease
   * loss. Remembered at once; resolves with the key once written (retrying while etcd is unreachable).
   */
  register(
    role: string,
    id: string,
    details: { addresses: Record<string, string>; version: string },
  ): Promise<string>;
  /** Like `register`, for any key: remembered at once, written as soon as possible, re-written after lease loss. */
  putUnderLease(key: string, value: string): Promise<void>;
  /** Forgets `key` and deletes it (one attempt; the lease's TTL removes it if etcd is down). */
  deleteUnderLease(key: string): Promise<void>;
  onEvent(listener: EtcdSessionListener): () => void;
  /**
   * Revokes the lease (every registration disappears at once; at most `revokeTimeoutMs`, after that
   * the TTL removes them) and closes the client. Idempotent; prompt before the first grant.
   */
  close(): Promise<void>;
}

/**
 * The etcd3 client with fault handling tuned for a TTL of seconds (the default breaker opens for 5 s).
 * `security` files are read now. @throws SecretFileError when one cannot be read
 */
export function createEtcdClient(
  endpoints: readonly string[],
  dialTimeoutMs: number,
  security: EtcdSecurity = {},
): Etcd3 {
  return new Etcd3({
    hosts: [...endpoints],
    dialTimeout: dialTimeoutMs,
    ...etcdClientSecurityOptions(security),
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

/**
 * Errors a retry cannot fix (bad request, auth). Everything else — unavailable, deadline, an open
 * circuit breaker, a lease that vanished — is an outage symptom and is retried.
 */
function isPermanentWriteError(err: unknown): boolean {
  return (
    err instanceof GRPCInvalidArgumentError ||
    err instanceof GRPCUnauthenticatedError ||
    err instanceof EtcdPermissionDeniedError ||
    err instanceof EtcdAuthenticationFailedError ||
    err instanceof EtcdRoleNotGrantedError ||
    err instanceof ClientClosedError
  );
}

const PROCESS_STARTED_AT = new Date(Date.now() - process.uptime() * 1000).toISOString();

/** Marks a promise as handled (the caller may `void` it) while still rejecting for whoever awaits it. */
function safeToVoid<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/**
 * Creates the process's one etcd session and returns at once; the lease is granted in the
 * background (see the header of this file).
 */
export function createEtcdSession(options: EtcdSessionOptions): EtcdSession {
  const opts = etcdSessionOptionsWithDefaults(options);
  const client = createEtcdClient(opts.endpoints, opts.dialTimeoutMs, opts.security);
  const keys = sluiceKeys(opts.prefix);
  const remembered = new Map<string, string>();
  const listeners = new Set<EtcdSessionListener>();
  /** Per-key writes still in progress, so ready() can wait for them. */
  const writing = new Set<Promise<void>>();
  const closeController = new AbortController();
  const closedError = (): ConnectionClosedError => new ConnectionClosedError("etcd session closed");
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

  /** Waits before a retry; ends early (rejecting) when the session closes. Never holds the process open. */
  const backoff = async (failures: number): Promise<void> => {
    try {
      await sleep(etcdRetryDelayMs(failures, opts), undefined, {
        signal: closeController.signal,
        ref: false,
      });
    } catch {
      throw closedError();
    }
  };

  let lease: Lease | undefined;
  let leaseIdNow = "";
  let current: Promise<string>;

  /** Grants a lease, retrying with backoff until it works or the session closes. */
  const grantLease = async (): Promise<string> => {
    for (let failures = 0; ; failures++) {
      if (closed) throw closedError();
      const candidate = client.lease(opts.leaseTtlSec);
      candidate.on("lost", (err) => onLost(candidate, err));
      try {
        const id = await candidate.grant();
        if (closed) {
          // close() ran while this grant was in flight: nobody will keep it alive or revoke it.
          void candidate.revoke().catch(() => undefined);
          throw closedError();
        }
        lease = candidate;
        leaseIdNow = id;
        opts.logger?.info({ leaseId: id }, "etcd lease granted");
        emit({ type: "lease-granted", leaseId: id });
        return id;
      } catch (err) {
        candidate.release();
        if (closed) throw closedError();
        const error = err instanceof Error ? err : new Error(String(err));
        if (isPermanentWriteError(error)) {
          opts.logger?.error(
            { err: error },
            "etcd refused this process's credentials or permissions; check the etcd-* auth settings and its role; retrying",
          );
        } else opts.logger?.warn({ err: error }, "etcd lease grant failed; serving without it, retrying");
        emit({ type: "regrant-failed", error });
        await backoff(failures);
      }
    }
  };

  const rewriteAll = async (leaseId: string): Promise<void> => {
    // All at once: after an outage every view holds the old keys only for a grace period
    // (etcd-watch.ts), and on a loaded machine one round trip per key in turn ate most of it.
    const entries = [...remembered];
    await Promise.all(entries.map(([key, value]) => client.put(key).value(value).lease(leaseId).exec()));
    const written = entries.map(([key]) => key);
    opts.logger?.info({ leaseId, keys: written }, "re-registered under new etcd lease");
    emit({ type: "reregistered", leaseId, keys: written });
  };

  const onLost = (which: Lease, err: Error): void => {
    if (closed || which !== lease || leaseIdNow === "") return; // a failed candidate, or an old lease
    const lostId = leaseIdNow;
    leaseIdNow = "";
    which.release();
    opts.logger?.warn({ err, leaseId: lostId }, "etcd lease lost; granting a new one");
    emit({ type: "lease-lost", leaseId: lostId, error: err });
    current = safeToVoid(
      (async () => {
        for (let failures = 0; ; failures++) {
          const id = await grantLease();
          try {
            await rewriteAll(id);
            return id;
          } catch (rewriteErr) {
            // etcd went away again mid-way: drop this lease and start over rather than leave keys missing.
            opts.logger?.warn({ err: rewriteErr }, "re-registration failed; granting again");
            lease?.release();
            leaseIdNow = "";
            if (closed) throw closedError();
            await backoff(failures);
          }
        }
      })(),
    );
  };

  const withLease = async <T>(write: (leaseId: string) => Promise<T>): Promise<T> => {
    const id = await current;
    try {
      return await write(id);
    } catch (err) {
      if (!(err instanceof EtcdLeaseInvalidError)) throw err;
      // Another write may have noticed first; only the first report of this lease replaces it.
      if (id === leaseIdNow && lease !== undefined) onLost(lease, err);
      return write(await current);
    }
  };

  /** Writes the remembered value of `key` under the lease, retrying while etcd is unreachable. */
  const writeRemembered = (key: string): Promise<void> => {
    const done = (async () => {
      for (let failures = 0; ; failures++) {
        if (closed) throw closedError();
        const value = remembered.get(key);
        if (value === undefined) return; // forgotten meanwhile
        try {
          await withLease((leaseId) => client.put(key).value(value).lease(leaseId).exec());
          return;
        } catch (err) {
          if (closed) throw closedError();
          if (isPermanentWriteError(err)) throw err;
          opts.logger?.warn({ err, key }, "etcd write failed; retrying");
          await backoff(failures);
        }
      }
    })();
    writing.add(done);
    void done.then(
      () => writing.delete(done),
      () => writing.delete(done),
    );
    return safeToVoid(done);
  };

  current = safeToVoid(grantLease());

  return {
    client,
    keys,
    leaseTtlSec: opts.leaseTtlSec,
    get hasLease() {
      return leaseIdNow !== "" && !closed;
    },
    get isClosed() {
      return closed;
    },
    leaseId: () => current,
    ready: (signal) =>
      safeToVoid(
        abortable(
          (async () => {
            await current;
            await Promise.allSettled([...writing]);
            if (closed) throw closedError();
          })(),
          signal,
        ),
      ),
    withLease,
    register: (role, id, details) => {
      const key = keys.instance(role, id);
      const registration: InstanceRegistration = {
        role,
        id,
        addresses: details.addresses,
        version: details.version,
        started_at: PROCESS_STARTED_AT,
        pid: process.pid,
      };
      remembered.set(key, JSON.stringify(registration));
      return safeToVoid(writeRemembered(key).then(() => key));
    },
    putUnderLease: (key, value) => {
      remembered.set(key, value);
      return writeRemembered(key);
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
      closeController.abort();
      const held = leaseIdNow !== "" ? lease : undefined;
      leaseIdNow = "";
      if (held !== undefined) {
        let timer: NodeJS.Timeout | undefined;
        const revoked = await Promise.race([
          held.revoke().then(
            () => true,
            (err: unknown) => {
              // Unreachable etcd: the TTL removes the keys instead; closing must still finish.
              opts.logger?.warn({ err }, "etcd lease revoke failed; keys expire with the TTL");
              return true;
            },
          ),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), opts.revokeTimeoutMs);
          }),
        ]);
        clearTimeout(timer);
        if (!revoked) opts.logger?.warn({}, "etcd lease revoke timed out; keys expire with the TTL");
      }
      listeners.clear();
      client.close();
    },
  };
}

/**
 * `createEtcdSession` + `ready()`: resolves once the first lease is granted. `signal` bounds the
 * wait; on abort the session is closed and the promise rejects with the signal's reason.
 */
export async function openEtcdSession(
  options: EtcdSessionOptions & { readonly signal?: AbortSignal },
): Promise<EtcdSession> {
  const session = createEtcdSession(options);
  try {
    await session.ready(options.signal);
  } catch (err) {
    await session.close();
    throw err;
  }
  return session;
}
