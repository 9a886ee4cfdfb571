// The process's one NATS connection. Two entry points over one implementation:
//
//   const nats = createNatsClient({ servers, name, logger });  // returns at once, never throws on I/O
//   nats.publish(subject, bytes);             // false (and counted) while not connected
//   const off = nats.subscribe(subject, (msg) => …); // survives the first connect and reconnects
//   await nats.ready(signal);                 // optional: wait for the first connect (abortable)
//   await nats.close();                       // any time, also before the first connect; prompt
//
//   const handle = await connectNats({ servers, name, signal }); // waits for the first connect
//   handle.connection.request(…);             // `connection` is defined on this variant
//
// Prefer `publish()` / `subscribe()` over `connection.*`: they work before the first connect and
// keep the drop count; `connection` is there for what the wrapper does not cover (request, JetStream).
//
// The first connect is retried here on unref'd timers (so a missing NATS never keeps a stopping
// process alive); after it nats.js reconnects by itself, forever (DESIGN §9).
//
// Publishing while disconnected: DROPPED AND COUNTED (`droppedPublishes`), never buffered by us.
// nats.js discards its own outbound buffer at every reconnect attempt anyway, so a buffer would
// only hide loss; load snapshots and heartbeats are re-sent by their publishers, and subscribers
// resync from sequence numbers.
import {
  connect,
  DebugEvents,
  Events,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from "nats";
import { ConnectionClosedError } from "./errors.js";
import type { Logger } from "./logger.js";
import { type NatsAuth, type NatsTlsFiles, natsAuthenticator, natsTlsOptions } from "./nats-auth.js";

/** What a process can act on: NATS reachable or not, and why. */
export type NatsStatusEvent =
  | { readonly type: "connected"; readonly server: string }
  | { readonly type: "disconnected"; readonly server: string }
  | { readonly type: "reconnecting" }
  | { readonly type: "reconnected"; readonly server: string }
  /** Async server error (e.g. permissions); the connection stays up. */
  | { readonly type: "error"; readonly message: string }
  /** Server asks clients to move (lame duck mode) before it shuts down. */
  | { readonly type: "lame-duck" }
  /** A first-connect attempt failed (server down); the next one follows in `retryInMs`. */
  | { readonly type: "connect-failed"; readonly error: Error; readonly retryInMs: number }
  /** Closed for good (close() or a fatal error); no more events follow. */
  | { readonly type: "closed"; readonly error: Error | undefined };

export type NatsStatusListener = (event: NatsStatusEvent) => void;

export interface NatsConnectOptions {
  /** One URL, a comma-separated list, or an array. */
  readonly servers: string | readonly string[];
  /** Connection name shown by the server (`sluice-router-1`). */
  readonly name: string;
  /** First reconnect delay. Default 250 ms; grows with the outage up to `maxReconnectDelayMs`. */
  readonly reconnectDelayMs?: number;
  /** Longest reconnect delay. Default 5000 ms. */
  readonly maxReconnectDelayMs?: number;
  /** Random extra delay (0…this) so frontends do not reconnect in lockstep. Default 250 ms. */
  readonly reconnectJitterMs?: number;
  /** Client pings; a dead link is detected after `pingIntervalMs × maxPingsOut`. Default 5000 ms. */
  readonly pingIntervalMs?: number;
  /** Default 3. */
  readonly maxPingsOut?: number;
  /** Per-attempt connect timeout. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** close() drains at most this long (a drain cannot finish while NATS is down), then closes. Default 5000 ms. */
  readonly drainTimeoutMs?: number;
  /** How to authenticate; default none (or credentials embedded in the URL). See nats-auth.ts. */
  readonly auth?: NatsAuth;
  /** TLS files; when given, TLS is required (a server without TLS is refused, no silent downgrade). */
  readonly tls?: NatsTlsFiles;
  readonly logger?: Logger;
}

export const DEFAULT_NATS_RECONNECT_DELAY_MS = 250;
export const DEFAULT_NATS_MAX_RECONNECT_DELAY_MS = 5_000;
export const DEFAULT_NATS_RECONNECT_JITTER_MS = 250;
export const DEFAULT_NATS_PING_INTERVAL_MS = 5_000;
export const DEFAULT_NATS_MAX_PINGS_OUT = 3;
export const DEFAULT_NATS_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_NATS_DRAIN_TIMEOUT_MS = 5_000;

type ResolvedNatsOptions = Required<Omit<NatsConnectOptions, "logger" | "servers" | "auth" | "tls">> & {
  servers: string[];
  auth: NatsAuth | undefined;
  tls: NatsTlsFiles | undefined;
  logger: Logger | undefined;
};

export function natsOptionsWithDefaults(options: NatsConnectOptions): ResolvedNatsOptions {
  const servers = (typeof options.servers === "string" ? options.servers.split(",") : [...options.servers])
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (servers.length === 0) throw new RangeError("NATS servers list is empty");
  const resolved: ResolvedNatsOptions = {
    servers,
    name: options.name,
    reconnectDelayMs: options.reconnectDelayMs ?? DEFAULT_NATS_RECONNECT_DELAY_MS,
    maxReconnectDelayMs: options.maxReconnectDelayMs ?? DEFAULT_NATS_MAX_RECONNECT_DELAY_MS,
    reconnectJitterMs: options.reconnectJitterMs ?? DEFAULT_NATS_RECONNECT_JITTER_MS,
    pingIntervalMs: options.pingIntervalMs ?? DEFAULT_NATS_PING_INTERVAL_MS,
    maxPingsOut: options.maxPingsOut ?? DEFAULT_NATS_MAX_PINGS_OUT,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_NATS_CONNECT_TIMEOUT_MS,
    drainTimeoutMs: options.drainTimeoutMs ?? DEFAULT_NATS_DRAIN_TIMEOUT_MS,
    auth: options.auth,
    tls: options.tls,
    logger: options.logger,
  };
  if ((resolved.tls?.certFile === undefined) !== (resolved.tls?.keyFile === undefined)) {
    throw new RangeError("NATS TLS client certificate and key must be given together");
  }
  if (resolved.reconnectDelayMs <= 0 || resolved.maxReconnectDelayMs < resolved.reconnectDelayMs) {
    throw new RangeError(
      `NATS reconnect delays must satisfy 0 < reconnectDelayMs (${resolved.reconnectDelayMs}) <= maxReconnectDelayMs (${resolved.maxReconnectDelayMs})`,
    );
  }
  return resolved;
}

/**
 * Reconnect delay after `outageMs` of being disconnected: doubles with the outage length (so a
 * long outage is not hammered) and is capped; jitter spreads many clients apart.
 */
export function natsReconnectDelayMs(
  outageMs: number,
  opts: Pick<ResolvedNatsOptions, "reconnectDelayMs" | "maxReconnectDelayMs" | "reconnectJitterMs">,
  random: () => number = Math.random,
): number {
  const base = Math.min(opts.maxReconnectDelayMs, Math.max(opts.reconnectDelayMs, outageMs / 2));
  return Math.round(base + random() * opts.reconnectJitterMs);
}

export interface NatsSubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  readonly queue?: string;
}

/** A NATS client whose connection comes up in the background (see the header of this file). */
export interface NatsClient {
  /** The nats.js connection once the first connect succeeded (it survives reconnects); before that undefined. */
  readonly connection: NatsConnection | undefined;
  /** True between a (re)connect and the next disconnect. */
  readonly isConnected: boolean;
  /** True once close() was called or the connection closed for good. */
  readonly isClosed: boolean;
  /** Publishes dropped because NATS was not connected (or the client was closed). */
  readonly droppedPublishes: number;
  /** Sends now, or drops and counts when not connected; returns whether it was handed to nats.js. */
  publish(subject: string, data?: Uint8Array, options?: { readonly headers?: MsgHdrs }): boolean;
  /**
   * Subscribes now if connected, else at the first connect (nats.js re-subscribes after reconnects).
   * Handler errors are logged, never thrown into nats.js. Returns the function that unsubscribes.
   */
  subscribe(subject: string, onMessage: (msg: Msg) => void, options?: NatsSubscribeOptions): () => void;
  /**
   * Resolves once the first connection is up (at once if it already was). Rejects with
   * `ConnectionClosedError` if the client closes first, or with `signal.reason` when aborted.
   */
  ready(signal?: AbortSignal): Promise<void>;
  /**
   * Registers a listener, which is called at once with the current state (`connected` or
   * `disconnected`) and then with every change; returns the function that removes it. Listener
   * errors are logged, not thrown.
   */
  onStatus(listener: NatsStatusListener): () => void;
  /** Status events as an async iterable that ends after `closed`. */
  statusEvents(): AsyncIterable<NatsStatusEvent>;
  /**
   * Drains subscriptions and pending publishes (at most `drainTimeoutMs`) when connected, closes at
   * once when not (a drain cannot finish during an outage). Idempotent; works before the first connect.
   */
  close(): Promise<void>;
}

/** A requested subscription; `active` is set once it exists on the connection. */
interface WantedSubscription {
  readonly subject: string;
  readonly queue: string | undefined;
  readonly onMessage: (msg: Msg) => void;
  active: Subscription | undefined;
}

/** A client whose first connection is known to be up: what `connectNats` resolves with. */
export interface NatsHandle extends NatsClient {
  readonly connection: NatsConnection;
}

/**
 * Returns at once; connects in the background with reconnect forever (an outage must never end a
 * process) and a typed status stream.
 */
export function createNatsClient(options: NatsConnectOptions): NatsClient {
  const opts = natsOptionsWithDefaults(options);
  const startedAt = Date.now();
  let disconnectedAt: number | undefined;
  let connection: NatsConnection | undefined;
  let connected = false;
  let closed = false;
  let dropped = 0;
  let server = opts.servers[0] ?? "";
  let retryTimer: NodeJS.Timeout | undefined;
  const listeners = new Set<NatsStatusListener>();
  const readyWaiters = new Set<{ resolve: () => void; reject: (err: unknown) => void }>();
  const wanted = new Set<WantedSubscription>();

  const emit = (event: NatsStatusEvent): void => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (err) {
        opts.logger?.error({ err, event: event.type }, "NATS status listener threw");
      }
    }
  };

  const activate = (nc: NatsConnection, sub: WantedSubscription): void => {
    sub.active = nc.subscribe(sub.subject, {
      ...(sub.queue === undefined ? {} : { queue: sub.queue }),
      callback: (err, msg) => {
        if (err !== null) {
          opts.logger?.warn({ err, subject: sub.subject }, "NATS subscription error");
          return;
        }
        try {
          sub.onMessage(msg);
        } catch (handlerErr) {
          opts.logger?.error({ err: handlerErr, subject: msg.subject }, "NATS message handler threw");
        }
      },
    });
  };

  const finishClosed = (err: Error | undefined): void => {
    closed = true;
    connected = false;
    for (const waiter of readyWaiters)
      waiter.reject(new ConnectionClosedError("NATS client closed before it connected"));
    readyWaiters.clear();
    emit({ type: "closed", error: err });
    listeners.clear();
  };

  const watch = (nc: NatsConnection): void => {
    void (async () => {
      for await (const status of nc.status()) {
        const data = typeof status.data === "string" ? status.data : String(status.data);
        switch (status.type) {
          case Events.Disconnect:
            connected = false;
            disconnectedAt ??= Date.now();
            opts.logger?.warn({ server: data }, "NATS disconnected; publishes are dropped until it is back");
            emit({ type: "disconnected", server: data });
            break;
          case Events.Reconnect:
            connected = true;
            disconnectedAt = undefined;
            server = data;
            opts.logger?.info({ server: data }, "NATS reconnected");
            emit({ type: "reconnected", server: data });
            break;
          case DebugEvents.Reconnecting:
            emit({ type: "reconnecting" });
            break;
          case Events.Error:
            opts.logger?.warn({ error: data }, "NATS async error");
            emit({ type: "error", message: data });
            break;
          case Events.LDM:
            emit({ type: "lame-duck" });
            break;
          default:
            break;
        }
      }
    })().catch((err: unknown) => opts.logger?.error({ err }, "NATS status loop failed"));
    void nc.closed().then((err) => {
      if (err !== undefined) opts.logger?.error({ err }, "NATS connection closed with error");
      finishClosed(err instanceof Error ? err : undefined);
    });
  };

  const adopt = (nc: NatsConnection): void => {
    connection = nc;
    connected = true;
    server = String(nc.getServer());
    opts.logger?.info({ server }, "NATS connected");
    watch(nc);
    for (const sub of wanted) activate(nc, sub);
    emit({ type: "connected", server });
    for (const waiter of readyWaiters) waiter.resolve();
    readyWaiters.clear();
  };

  // nats.js's own first-connect wait (`waitOnFirstConnect`) cannot be cancelled, so the first
  // connect is retried here instead.
  const attempt = (): void => {
    retryTimer = undefined;
    if (closed) return;
    connect({
      servers: opts.servers,
      name: opts.name,
      maxReconnectAttempts: -1,
      reconnect: true,
      reconnectDelayHandler: () =>
        natsReconnectDelayMs(disconnectedAt === undefined ? 0 : Date.now() - disconnectedAt, opts),
      pingInterval: opts.pingIntervalMs,
      maxPingOut: opts.maxPingsOut,
      timeout: opts.connectTimeoutMs,
      // nats.js gives up after two auth errors in a row; a process must keep trying (a rotated
      // credential may be fixed by the next reconnect) and say so in its logs instead.
      ignoreAuthErrorAbort: true,
      ...(opts.auth === undefined ? {} : { authenticator: natsAuthenticator(opts.auth) }),
      ...(opts.tls === undefined ? {} : { tls: natsTlsOptions(opts.tls) }),
    }).then(
      (nc) => {
        if (closed) {
          void nc.close().catch(() => undefined); // close() ran while this attempt was in flight
          return;
        }
        adopt(nc);
      },
      (err: unknown) => {
        if (closed) return;
        const error = err instanceof Error ? err : new Error(String(err));
        const retryInMs = natsReconnectDelayMs(Date.now() - startedAt, opts);
        if (isNatsAuthError(error)) {
          opts.logger?.error(
            { err: error, retryInMs },
            "NATS refused this process's credentials; check the nats-* auth settings; retrying",
          );
        } else {
          opts.logger?.warn({ err: error, retryInMs }, "NATS unreachable; serving without it, retrying");
        }
        emit({ type: "connect-failed", error, retryInMs });
        retryTimer = setTimeout(attempt, retryInMs);
        retryTimer.unref();
      },
    );
  };
  attempt();

  // A new listener first hears the current state, so "connected" is never missed by subscribing late.
  const listen = (listener: NatsStatusListener): (() => void) => {
    if (closed) return () => undefined;
    listeners.add(listener);
    const now: NatsStatusEvent = connected ? { type: "connected", server } : { type: "disconnected", server };
    try {
      listener(now);
    } catch (err) {
      opts.logger?.error({ err, event: now.type }, "NATS status listener threw");
    }
    return () => listeners.delete(listener);
  };

  let closing: Promise<void> | undefined;
  return {
    get connection() {
      return connection;
    },
    get isConnected() {
      return connected;
    },
    get isClosed() {
      return closed;
    },
    get droppedPublishes() {
      return dropped;
    },
    publish: (subject, data, publishOptions) => {
      if (!connected || closed || connection === undefined) {
        dropped += 1;
        return false;
      }
      try {
        connection.publish(subject, data, publishOptions);
        return true;
      } catch (err) {
        // Closed under us, or a bad subject (a programming error worth a log line).
        dropped += 1;
        opts.logger?.warn({ err, subject }, "NATS publish failed");
        return false;
      }
    },
    subscribe: (subject, onMessage, subscribeOptions) => {
      const sub = {
        subject,
        queue: subscribeOptions?.queue,
        onMessage,
        active: undefined as Subscription | undefined,
      };
      if (closed) return () => undefined;
      wanted.add(sub);
      if (connection !== undefined && !connection.isClosed()) activate(connection, sub);
      return () => {
        wanted.delete(sub);
        sub.active?.unsubscribe();
      };
    },
    ready: (signal) => {
      if (connection !== undefined) return Promise.resolve();
      if (closed) return Promise.reject(new ConnectionClosedError("NATS client is closed"));
      if (signal?.aborted) return Promise.reject(signal.reason);
      return new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          readyWaiters.delete(waiter);
          reject(signal?.reason);
        };
        const waiter = {
          resolve: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
          reject: (err: unknown) => {
            signal?.removeEventListener("abort", onAbort);
            reject(err);
          },
        };
        readyWaiters.add(waiter);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    onStatus: (listener) => listen(listener),
    statusEvents: () => statusIterable(listen, closed),
    close: () => {
      closing ??= (async () => {
        const nc = connection;
        if (retryTimer !== undefined) clearTimeout(retryTimer);
        if (nc === undefined) {
          finishClosed(undefined);
          return;
        }
        closed = true;
        if (!nc.isClosed()) {
          let drained = false;
          if (connected) {
            let timer: NodeJS.Timeout | undefined;
            drained = await Promise.race([
              nc.drain().then(
                () => true,
                () => false, // already closing, or the link just went down: closing is what we want anyway
              ),
              new Promise<boolean>((resolve) => {
                timer = setTimeout(() => resolve(false), opts.drainTimeoutMs);
              }),
            ]);
            clearTimeout(timer);
          }
          if (!drained && !nc.isClosed()) await nc.close();
        }
        await nc.closed();
      })();
      return closing;
    },
  };
}

/**
 * `createNatsClient` + `ready()`: resolves once the first connection is up, so `connection` is
 * defined. `signal` bounds the wait; on abort the client is closed and the promise rejects with the
 * signal's reason.
 */
export async function connectNats(
  options: NatsConnectOptions & { readonly signal?: AbortSignal },
): Promise<NatsHandle> {
  const client = createNatsClient(options);
  try {
    await client.ready(options.signal);
  } catch (err) {
    await client.close();
    throw err;
  }
  // ready() resolved, so the first connection exists, and `connection` never reverts to undefined.
  return client as NatsHandle;
}

function statusIterable(
  subscribe: (listener: NatsStatusListener) => () => void,
  alreadyClosed: boolean,
): AsyncIterable<NatsStatusEvent> {
  return {
    [Symbol.asyncIterator]: () => {
      const queue: NatsStatusEvent[] = [];
      let wake: (() => void) | undefined;
      let done = alreadyClosed;
      const unsubscribe = subscribe((event) => {
        queue.push(event);
        if (event.type === "closed") done = true;
        wake?.();
      });
      return {
        next: async (): Promise<IteratorResult<NatsStatusEvent>> => {
          while (queue.length === 0 && !done) await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          const event = queue.shift();
          if (event === undefined) {
            unsubscribe();
            return { done: true, value: undefined };
          }
          return { done: false, value: event };
        },
        return: async (): Promise<IteratorResult<NatsStatusEvent>> => {
          done = true;
          unsubscribe();
          wake?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/** The server rejected the credentials (as opposed to being unreachable). */
export function isNatsAuthError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === "AUTHORIZATION_VIOLATION" || code === "AUTHENTICATION_EXPIRED";
}
