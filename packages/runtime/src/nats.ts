import { connect, DebugEvents, Events, type NatsConnection } from "nats";
import type { Logger } from "./logger.js";

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
  readonly logger?: Logger;
}

export const DEFAULT_NATS_RECONNECT_DELAY_MS = 250;
export const DEFAULT_NATS_MAX_RECONNECT_DELAY_MS = 5_000;
export const DEFAULT_NATS_RECONNECT_JITTER_MS = 250;
export const DEFAULT_NATS_PING_INTERVAL_MS = 5_000;
export const DEFAULT_NATS_MAX_PINGS_OUT = 3;
export const DEFAULT_NATS_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_NATS_DRAIN_TIMEOUT_MS = 5_000;

type ResolvedNatsOptions = Required<Omit<NatsConnectOptions, "logger" | "servers">> & {
  servers: string[];
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
    logger: options.logger,
  };
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

export interface NatsHandle {
  readonly connection: NatsConnection;
  /** True between a (re)connect and the next disconnect. */
  readonly isConnected: boolean;
  /**
   * Registers a listener, which is called at once with the current state (`connected` or
   * `disconnected`) and then with every change; returns the function that removes it. Listener
   * errors are logged, not thrown.
   */
  onStatus(listener: NatsStatusListener): () => void;
  /** Status events as an async iterable that ends after `closed`. */
  statusEvents(): AsyncIterable<NatsStatusEvent>;
  /** Drains subscriptions and pending publishes, then closes. Idempotent. */
  close(): Promise<void>;
}

/**
 * Connects with reconnect forever (an outage must never end a process) and a typed status
 * stream. Resolves once the first connection is up: a process started before NATS waits here.
 */
export async function connectNats(options: NatsConnectOptions): Promise<NatsHandle> {
  const opts = natsOptionsWithDefaults(options);
  let disconnectedAt: number | undefined;
  const connection = await connect({
    servers: opts.servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
    reconnect: true,
    reconnectDelayHandler: () =>
      natsReconnectDelayMs(disconnectedAt === undefined ? 0 : Date.now() - disconnectedAt, opts),
    pingInterval: opts.pingIntervalMs,
    maxPingOut: opts.maxPingsOut,
    timeout: opts.connectTimeoutMs,
  });

  const listeners = new Set<NatsStatusListener>();
  let connected = true;
  const emit = (event: NatsStatusEvent): void => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (err) {
        opts.logger?.error({ err, event: event.type }, "NATS status listener threw");
      }
    }
  };

  let server = String(connection.getServer());
  void (async () => {
    for await (const status of connection.status()) {
      const data = typeof status.data === "string" ? status.data : String(status.data);
      switch (status.type) {
        case Events.Disconnect:
          connected = false;
          disconnectedAt ??= Date.now();
          opts.logger?.warn({ server: data }, "NATS disconnected");
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
  void connection.closed().then((err) => {
    connected = false;
    if (err !== undefined) opts.logger?.error({ err }, "NATS connection closed with error");
    emit({ type: "closed", error: err instanceof Error ? err : undefined });
    listeners.clear();
  });

  // A new listener first hears the current state, so "connected" is never missed by
  // subscribing after connectNats() resolved.
  const subscribe = (listener: NatsStatusListener): (() => void) => {
    if (connection.isClosed()) return () => undefined;
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
    connection,
    get isConnected() {
      return connected;
    },
    onStatus: (listener) => subscribe(listener),
    statusEvents: () => statusIterable(subscribe, connection.isClosed()),
    close: () => {
      closing ??= (async () => {
        if (!connection.isClosed()) {
          let timer: NodeJS.Timeout | undefined;
          const drained = await Promise.race([
            connection.drain().then(
              () => true,
              () => false, // already closing, or the link is down: closing is what we want anyway
            ),
            new Promise<boolean>((resolve) => {
              timer = setTimeout(() => resolve(false), opts.drainTimeoutMs);
            }),
          ]);
          clearTimeout(timer);
          if (!drained && !connection.isClosed()) await connection.close();
        }
        await connection.closed();
      })();
      return closing;
    },
  };
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
