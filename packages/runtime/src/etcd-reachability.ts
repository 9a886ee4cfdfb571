// Whether this process could reach etcd lately, from a tiny periodic read (one per etcd client,
// shared by every watch on it). The watches need it because an etcd outage is invisible to them:
// behind a partition the watch stream does not fail, it stalls, and when etcd is back it delivers
// at once every lease expiry of the outage — including those of processes that are alive and about
// to re-register (etcd-watch.ts, "leased deletes after an outage").
//
// A probe is a read of one key with no deadline: while etcd is unreachable it either fails (refused
// connection, open circuit) or hangs, and a probe outstanding for longer than `stallAfterMs` counts
// as unreachable. A deadline would be simpler but a failed call makes etcd3 reset the host's
// channels, which would cut the process's own lease keep-alive and watches as a side effect.
import {
  ClientClosedError,
  type Etcd3,
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  EtcdRoleNotGrantedError,
  GRPCInvalidArgumentError,
  GRPCUnauthenticatedError,
} from "etcd3";

export interface EtcdReachabilityOptions {
  /** Time between probes (a new one starts only when the last answered). Default 1000 ms. */
  readonly probeIntervalMs?: number;
  /** A probe unanswered this long means etcd is unreachable. Default 2 × `probeIntervalMs`. */
  readonly stallAfterMs?: number;
  /** Injected clock (tests). Default `Date.now`. */
  readonly nowMs?: () => number;
}

export const DEFAULT_ETCD_PROBE_INTERVAL_MS = 1_000;

export interface EtcdReachability {
  /** True while etcd is unreachable, or when it was at any moment of the last `withinMs`. */
  unreachableWithin(withinMs: number): boolean;
  /** Drops this holder's interest; the probe stops with the last holder. Idempotent. */
  release(): void;
}

/** Errors that are an answer from etcd (it is reachable, just unwilling). */
function isAnswer(err: unknown): boolean {
  return (
    err instanceof EtcdPermissionDeniedError ||
    err instanceof EtcdAuthenticationFailedError ||
    err instanceof EtcdRoleNotGrantedError ||
    err instanceof GRPCInvalidArgumentError ||
    err instanceof GRPCUnauthenticatedError
  );
}

interface Monitor {
  holders: number;
  unreachableWithin(withinMs: number): boolean;
  stop(): void;
}

const monitors = new WeakMap<Etcd3, Monitor>();

function startMonitor(
  client: Etcd3,
  probeKey: string,
  options: EtcdReachabilityOptions,
  onStop: () => void,
): Monitor {
  const nowMs = options.nowMs ?? Date.now;
  const intervalMs = options.probeIntervalMs ?? DEFAULT_ETCD_PROBE_INTERVAL_MS;
  const stallAfterMs = options.stallAfterMs ?? 2 * intervalMs;
  if (!(intervalMs > 0) || !(stallAfterMs > 0)) {
    throw new RangeError(
      `etcd probe interval (${intervalMs}) and stall bound (${stallAfterMs}) must be > 0 ms`,
    );
  }
  let probeStartedAtMs: number | undefined;
  /** Set when a probe failed for want of etcd; cleared by the next answer. */
  let failing = false;
  /** When etcd last answered after having been unreachable. */
  let recoveredAtMs = Number.NEGATIVE_INFINITY;
  let stopped = false;

  const unreachableNow = (now: number): boolean =>
    failing || (probeStartedAtMs !== undefined && now - probeStartedAtMs > stallAfterMs);

  const answered = (): void => {
    const now = nowMs();
    if (unreachableNow(now)) recoveredAtMs = now;
    failing = false;
    probeStartedAtMs = undefined;
  };

  const probe = (): void => {
    if (stopped || probeStartedAtMs !== undefined) return;
    probeStartedAtMs = nowMs();
    let pending: Promise<unknown>;
    try {
      pending = client.get(probeKey).exec();
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(answered, (err: unknown) => {
      if (err instanceof ClientClosedError) {
        stop();
        return;
      }
      if (isAnswer(err)) {
        answered();
        return;
      }
      failing = true;
      probeStartedAtMs = undefined;
    });
  };
  const timer = setInterval(probe, intervalMs);
  timer.unref();
  probe();

  function stop(): void {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    onStop();
  }

  return {
    holders: 0,
    unreachableWithin(withinMs) {
      const now = nowMs();
      return unreachableNow(now) || now - recoveredAtMs < withinMs;
    },
    stop,
  };
}

/**
 * The reachability of etcd through `client`, shared by every holder of the same client (the first
 * holder's `probeKey` and options are used; a key under the holder's own prefix, so etcd auth allows
 * reading it). Call `release()` when done.
 */
export function acquireEtcdReachability(
  client: Etcd3,
  probeKey: string,
  options: EtcdReachabilityOptions = {},
): EtcdReachability {
  let monitor = monitors.get(client);
  if (monitor === undefined) {
    const created = startMonitor(client, probeKey, options, () => {
      if (monitors.get(client) === created) monitors.delete(client);
    });
    monitor = created;
    monitors.set(client, created);
  }
  const held = monitor;
  held.holders++;
  let released = false;
  return {
    unreachableWithin: (withinMs) => held.unreachableWithin(withinMs),
    release() {
      if (released) return;
      released = true;
      held.holders--;
      if (held.holders === 0) held.stop();
    },
  };
}
