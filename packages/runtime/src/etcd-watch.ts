import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from "etcd3";
import { ConnectionClosedError } from "./errors.js";
import { acquireEtcdReachability, DEFAULT_ETCD_PROBE_INTERVAL_MS } from "./etcd-reachability.js";
import type { Logger } from "./logger.js";

/** One key's state as delivered to watchers. Revisions are numbers: 2^53 writes is out of reach. */
export interface WatchEntry {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
  /** Revision that created the key (election order). */
  readonly createRevision: number;
}

export interface PrefixWatchHandlers {
  /** The initial consistent view: every key under the prefix at `revision`. */
  onSnapshot(entries: readonly WatchEntry[], revision: number): void;
  onPut(entry: WatchEntry): void;
  /** `revision` is the revision of the delete (or of the re-snapshot that found the key gone). */
  onDelete(key: string, revision: number): void;
  /** Watch lost / resumed / re-snapshotted; for logs and metrics, nothing to do. */
  onStatus?(status: PrefixWatchStatus): void;
}

export type PrefixWatchStatus =
  | { readonly type: "disconnected"; readonly error: Error; readonly lastRevision: number }
  | { readonly type: "resumed"; readonly fromRevision: number }
  /** Resume was impossible (history compacted / watch cancelled): state rebuilt by a diff against a new range read. */
  | { readonly type: "resynced"; readonly revision: number; readonly reason: string };

export interface PrefixWatchOptions {
  /** Delay before resuming after a disconnect or failed range read. Default 200 ms. */
  readonly retryDelayMs?: number;
  /**
   * `startPrefixWatch` only: the first snapshot read is retried after `retryDelayMs`, doubling up to
   * this while etcd stays unreachable. Default 5000 ms.
   */
  readonly maxInitialRetryDelayMs?: number;
  /**
   * Leased deletes after an outage: a delete of a key written under a lease, delivered while etcd is
   * unreachable from this process or within this long after it was, reaches `onDelete` only if the
   * key is not put again within this long (a re-registration cancels it). 0 turns it off. Default
   * 5000 ms (the default lease TTL). See "Leased deletes after an outage" below.
   */
  readonly leasedDeleteGraceMs?: number;
  /**
   * How often etcd's reachability is probed for the above: one read per client, at the interval of
   * the first watch on it. Default 1000 ms.
   */
  readonly reachabilityProbeIntervalMs?: number;
  readonly logger?: Logger;
}

export interface PrefixWatch {
  /** Highest revision reflected in `entries()`. */
  readonly revision: number;
  /** The current view of the prefix, as etcd has it (a held-back delete has already left it). */
  entries(): ReadonlyMap<string, WatchEntry>;
  close(): Promise<void>;
}

/** A watch whose first snapshot is read in the background (`startPrefixWatch`). */
export interface BackgroundPrefixWatch extends PrefixWatch {
  /** True once the first snapshot was delivered. */
  readonly hasSnapshot: boolean;
  /**
   * Resolves once the first snapshot was delivered (at once if it was). Rejects with
   * `ConnectionClosedError` if the watch closes first, or with `signal.reason` when aborted.
   */
  ready(signal?: AbortSignal): Promise<void>;
}

export const DEFAULT_WATCH_RETRY_DELAY_MS = 200;
export const DEFAULT_WATCH_MAX_INITIAL_RETRY_DELAY_MS = 5_000;
export const DEFAULT_LEASED_DELETE_GRACE_MS = 5_000;

const toEntry = (kv: IKeyValue): WatchEntry => ({
  key: kv.key.toString("utf8"),
  value: kv.value.toString("utf8"),
  modRevision: Number(kv.mod_revision),
  createRevision: Number(kv.create_revision),
});

/**
 * Delivers a consistent snapshot of `prefix` (one range read at revision R), then every change
 * from R+1, exactly once and in order. After a disconnect (etcd restart, network) it resumes from
 * the last delivered revision so writes made meanwhile arrive; if that history was compacted it
 * reads the prefix again and delivers the difference as puts and deletes.
 *
 * Resume is done here, not by etcd3's watch manager, because the manager restarts from the
 * header revision of the last response, which can skip events of a catching-up watcher.
 *
 * Leased deletes after an outage: when etcd is unreachable for longer than a lease TTL, etcd expires
 * the leases of every process that could not reach it, and once it is reachable again the watch
 * delivers all those deletes at once — while the processes, alive, only re-register a few hundred
 * ms later. Delivered as they come, every view would briefly lose every engine and peer. So a delete
 * of a leased key seen while etcd is unreachable from this process, or within `leasedDeleteGraceMs`
 * after it was (a shared probe tells, see etcd-reachability.ts), is held back: the key leaves
 * `entries()` (etcd's view) at once, but `onDelete` fires only if no put of the key arrives within
 * `leasedDeleteGraceMs`; a put cancels it and is delivered as usual. A process that really died
 * meanwhile thus leaves the views `leasedDeleteGraceMs` after etcd is back. Outside outages deletes
 * are delivered at once, so a process killed in normal operation still leaves within its lease TTL.
 * Keys without a lease (policies) are never held back.
 */
export async function watchPrefix(
  client: Etcd3,
  prefix: string,
  handlers: PrefixWatchHandlers,
  options: PrefixWatchOptions = {},
): Promise<PrefixWatch> {
  const { watch, loadSnapshot } = createPrefixWatch(client, prefix, handlers, options);
  try {
    await loadSnapshot(false);
  } catch (err) {
    await watch.close();
    throw err;
  }
  return watch;
}

/**
 * `watchPrefix` without waiting: returns at once and reads the first snapshot in the background,
 * retrying with backoff while etcd is unreachable (a process started during an etcd outage serves on
 * its defaults meanwhile, DESIGN §9). `onSnapshot` fires once that read succeeds; after it everything
 * behaves as `watchPrefix`. Failed attempts are reported as `disconnected` statuses.
 */
export function startPrefixWatch(
  client: Etcd3,
  prefix: string,
  handlers: PrefixWatchHandlers,
  options: PrefixWatchOptions = {},
): BackgroundPrefixWatch {
  const { watch, loadSnapshot } = createPrefixWatch(client, prefix, handlers, options);
  const retryDelayMs = options.retryDelayMs ?? DEFAULT_WATCH_RETRY_DELAY_MS;
  const maxRetryDelayMs = Math.max(
    retryDelayMs,
    options.maxInitialRetryDelayMs ?? DEFAULT_WATCH_MAX_INITIAL_RETRY_DELAY_MS,
  );
  let closed = false;
  let hasSnapshot = false;
  let retryTimer: NodeJS.Timeout | undefined;
  const waiters = new Set<{ resolve: () => void; reject: (err: unknown) => void }>();

  const attempt = (failures: number): void => {
    retryTimer = undefined;
    if (closed) return;
    loadSnapshot(true).then(
      () => {
        if (closed) return;
        hasSnapshot = true;
        for (const waiter of waiters) waiter.resolve();
        waiters.clear();
      },
      (err: unknown) => {
        if (closed) return;
        const error = err instanceof Error ? err : new Error(String(err));
        const delayMs = Math.min(maxRetryDelayMs, retryDelayMs * 2 ** Math.min(failures, 20));
        options.logger?.warn({ err: error, prefix, retryInMs: delayMs }, "etcd prefix read failed; retrying");
        handlers.onStatus?.({ type: "disconnected", error, lastRevision: 0 });
        retryTimer = setTimeout(() => attempt(failures + 1), delayMs);
        retryTimer.unref();
      },
    );
  };
  attempt(0);

  return {
    get revision() {
      return watch.revision;
    },
    get hasSnapshot() {
      return hasSnapshot;
    },
    entries: () => watch.entries(),
    ready: (signal) => {
      if (hasSnapshot) return Promise.resolve();
      if (closed) return Promise.reject(new ConnectionClosedError("etcd prefix watch closed"));
      if (signal?.aborted) return Promise.reject(signal.reason);
      return new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          waiters.delete(waiter);
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
        waiters.add(waiter);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    close: async () => {
      closed = true;
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      for (const waiter of waiters) waiter.reject(new ConnectionClosedError("etcd prefix watch closed"));
      waiters.clear();
      await watch.close();
    },
  };
}

/** The shared machinery: state, resume and resync; `loadSnapshot` does the first read and starts watching. */
function createPrefixWatch(
  client: Etcd3,
  prefix: string,
  handlers: PrefixWatchHandlers,
  options: PrefixWatchOptions,
): { watch: PrefixWatch; loadSnapshot: (guardHandler: boolean) => Promise<void> } {
  const retryDelayMs = options.retryDelayMs ?? DEFAULT_WATCH_RETRY_DELAY_MS;
  const graceMs = options.leasedDeleteGraceMs ?? DEFAULT_LEASED_DELETE_GRACE_MS;
  if (!(graceMs >= 0)) throw new RangeError(`leasedDeleteGraceMs must be >= 0, got ${graceMs}`);
  const state = new Map<string, WatchEntry>();
  /** Keys in `state` or held back whose last put carried a lease. */
  const leased = new Set<string>();
  /** Held-back deletes (see "Leased deletes after an outage"), by key. */
  const heldBack = new Map<string, NodeJS.Timeout>();
  const reachability =
    graceMs > 0
      ? acquireEtcdReachability(client, prefix, {
          probeIntervalMs: options.reachabilityProbeIntervalMs ?? DEFAULT_ETCD_PROBE_INTERVAL_MS,
        })
      : undefined;
  let lastRevision = 0;
  let watcher: Watcher | undefined;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;

  const safely = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      options.logger?.error({ err, prefix }, `watch handler ${what} threw`);
    }
  };

  const readRange = async (): Promise<{ kvs: IKeyValue[]; entries: WatchEntry[]; revision: number }> => {
    const res = await client.getAll().prefix(prefix).exec();
    return { kvs: res.kvs, entries: res.kvs.map(toEntry), revision: Number(res.header.revision) };
  };

  /** Records whether `kv` was written under a lease; a put of a held-back key cancels its delete. */
  const noteLease = (key: string, kv: IKeyValue): void => {
    if (kv.lease !== "0" && kv.lease !== "") leased.add(key);
    else leased.delete(key);
    const timer = heldBack.get(key);
    if (timer !== undefined) {
      clearTimeout(timer);
      heldBack.delete(key);
      options.logger?.info(
        { prefix, key },
        "a key whose lease expired during the etcd outage was written again",
      );
    }
  };

  const deliverPut = (kv: IKeyValue): void => {
    const entry = toEntry(kv);
    noteLease(entry.key, kv);
    state.set(entry.key, entry);
    safely("onPut", () => handlers.onPut(entry));
  };

  const deliverDelete = (key: string, revision: number): void => {
    state.delete(key);
    if (heldBack.has(key)) return;
    if (reachability !== undefined && leased.has(key) && reachability.unreachableWithin(graceMs)) {
      options.logger?.info(
        { prefix, key, graceMs },
        "etcd was unreachable: holding back a leased key's delete until its owner re-registers or the grace ends",
      );
      const timer = setTimeout(() => {
        heldBack.delete(key);
        if (closed || state.has(key)) return;
        leased.delete(key);
        options.logger?.warn({ prefix, key, graceMs }, "not written again after the etcd outage: deleted");
        safely("onDelete", () => handlers.onDelete(key, revision));
      }, graceMs);
      timer.unref();
      heldBack.set(key, timer);
      return;
    }
    leased.delete(key);
    safely("onDelete", () => handlers.onDelete(key, revision));
  };

  const onData = (res: IWatchResponse): void => {
    for (const event of res.events) {
      const revision = Number(event.kv.mod_revision);
      if (revision <= lastRevision) continue; // replayed after a resume
      if (event.type === "Put") deliverPut(event.kv);
      else deliverDelete(event.kv.key.toString("utf8"), revision);
      lastRevision = revision;
    }
    // A progress notification (no events) says everything up to its header revision was sent.
    if (res.events.length === 0) lastRevision = Math.max(lastRevision, Number(res.header.revision));
  };

  const schedule = (fn: () => Promise<void>): void => {
    if (closed) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      fn().catch((err: unknown) => {
        options.logger?.warn({ err, prefix }, "etcd watch restart failed; retrying");
        schedule(fn);
      });
    }, retryDelayMs);
  };

  const detach = (w: Watcher): void => {
    w.removeAllListeners();
    w.on("error", () => undefined);
    void w.cancel().catch(() => undefined);
  };

  const startWatcher = (): void => {
    if (closed) return;
    const fromRevision = lastRevision + 1;
    const w = client.watch().prefix(prefix).startRevision(String(fromRevision)).watcher();
    watcher = w;
    w.on("data", (res) => {
      if (watcher === w) onData(res);
    });
    w.on("disconnected", (err: Error) => {
      if (watcher !== w) return;
      detach(w);
      watcher = undefined;
      handlers.onStatus?.({ type: "disconnected", error: err, lastRevision });
      schedule(async () => {
        startWatcher();
        handlers.onStatus?.({ type: "resumed", fromRevision: lastRevision + 1 });
      });
    });
    w.on("error", (err: Error) => {
      // etcd cancelled the watch, typically because `fromRevision` was compacted away.
      if (watcher !== w) return;
      detach(w);
      watcher = undefined;
      schedule(() => resync(err.message));
    });
  };

  const resync = async (reason: string): Promise<void> => {
    const { kvs, revision } = await readRange();
    if (closed) return;
    const fresh = new Set(kvs.map((kv) => kv.key.toString("utf8")));
    for (const key of [...state.keys()]) {
      if (!fresh.has(key)) deliverDelete(key, revision);
    }
    for (const kv of kvs) {
      if (state.get(kv.key.toString("utf8"))?.modRevision !== Number(kv.mod_revision)) deliverPut(kv);
    }
    lastRevision = revision;
    handlers.onStatus?.({ type: "resynced", revision, reason });
    startWatcher();
  };

  const loadSnapshot = async (guardHandler: boolean): Promise<void> => {
    const initial = await readRange();
    if (closed) return;
    for (const [i, entry] of initial.entries.entries()) {
      state.set(entry.key, entry);
      noteLease(entry.key, initial.kvs[i] as IKeyValue);
    }
    lastRevision = initial.revision;
    // watchPrefix lets a throwing onSnapshot reach its caller; in the background it is only logged.
    if (guardHandler) safely("onSnapshot", () => handlers.onSnapshot(initial.entries, initial.revision));
    else handlers.onSnapshot(initial.entries, initial.revision);
    startWatcher();
  };

  const watch: PrefixWatch = {
    get revision() {
      return lastRevision;
    },
    entries: () => state,
    close: async () => {
      closed = true;
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      for (const timer of heldBack.values()) clearTimeout(timer);
      heldBack.clear();
      reachability?.release();
      const w = watcher;
      watcher = undefined;
      if (w !== undefined) {
        w.removeAllListeners();
        w.on("error", () => undefined);
        await w.cancel().catch(() => undefined);
      }
    },
  };
  return { watch, loadSnapshot };
}
