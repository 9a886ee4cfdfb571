import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from "etcd3";
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
  readonly logger?: Logger;
}

export interface PrefixWatch {
  /** Highest revision reflected in `entries()`. */
  readonly revision: number;
  /** The current view of the prefix. */
  entries(): ReadonlyMap<string, WatchEntry>;
  close(): Promise<void>;
}

export const DEFAULT_WATCH_RETRY_DELAY_MS = 200;

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
 */
export async function watchPrefix(
  client: Etcd3,
  prefix: string,
  handlers: PrefixWatchHandlers,
  options: PrefixWatchOptions = {},
): Promise<PrefixWatch> {
  const retryDelayMs = options.retryDelayMs ?? DEFAULT_WATCH_RETRY_DELAY_MS;
  const state = new Map<string, WatchEntry>();
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

  const readRange = async (): Promise<{ entries: WatchEntry[]; revision: number }> => {
    const res = await client.getAll().prefix(prefix).exec();
    return { entries: res.kvs.map(toEntry), revision: Number(res.header.revision) };
  };

  const onData = (res: IWatchResponse): void => {
    for (const event of res.events) {
      const revision = Number(event.kv.mod_revision);
      if (revision <= lastRevision) continue; // replayed after a resume
      const key = event.kv.key.toString("utf8");
      if (event.type === "Put") {
        const entry = toEntry(event.kv);
        state.set(key, entry);
        safely("onPut", () => handlers.onPut(entry));
      } else {
        state.delete(key);
        safely("onDelete", () => handlers.onDelete(key, revision));
      }
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
    const { entries, revision } = await readRange();
    if (closed) return;
    const fresh = new Map(entries.map((e) => [e.key, e]));
    for (const key of [...state.keys()]) {
      if (!fresh.has(key)) {
        state.delete(key);
        safely("onDelete", () => handlers.onDelete(key, revision));
      }
    }
    for (const entry of entries) {
      if (state.get(entry.key)?.modRevision !== entry.modRevision) {
        state.set(entry.key, entry);
        safely("onPut", () => handlers.onPut(entry));
      }
    }
    lastRevision = revision;
    handlers.onStatus?.({ type: "resynced", revision, reason });
    startWatcher();
  };

  const initial = await readRange();
  for (const entry of initial.entries) state.set(entry.key, entry);
  lastRevision = initial.revision;
  handlers.onSnapshot(initial.entries, initial.revision);
  startWatcher();

  return {
    get revision() {
      return lastRevision;
    },
    entries: () => state,
    close: async () => {
      closed = true;
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      const w = watcher;
      watcher = undefined;
      if (w !== undefined) {
        w.removeAllListeners();
        w.on("error", () => undefined);
        await w.cancel().catch(() => undefined);
      }
    },
  };
}
