// A live map of the keys under one etcd prefix: read once, then kept current by a watch starting at
// the read's revision, so no put or delete between the read and the watch is missed. Leased keys
// vanish when their owner dies, which is how dead engines and peers leave the view.

import type { Etcd3, Watcher } from "etcd3";

export interface PrefixViewLogger {
  warn(fields: object, message: string): void;
}

export interface PrefixView<T> {
  /** Current entries by key suffix (the part after the prefix). */
  readonly entries: ReadonlyMap<string, T>;
  close(): Promise<void>;
}

export interface PrefixViewOptions<T> {
  etcd: Etcd3;
  /** Full key prefix, ending in `/`. */
  prefix: string;
  /** Decodes one value; undefined (or a throw) drops the key and is logged, never crashes the view. */
  parse(suffix: string, value: string, modRevision: number): T | undefined;
  onChange?: () => void;
  logger: PrefixViewLogger;
}

export async function watchPrefixView<T>(options: PrefixViewOptions<T>): Promise<PrefixView<T>> {
  const { etcd, prefix, logger } = options;
  const entries = new Map<string, T>();
  const apply = (key: string, value: string | undefined, modRevision = 0) => {
    const suffix = key.slice(prefix.length);
    let parsed: T | undefined;
    if (value !== undefined) {
      try {
        parsed = options.parse(suffix, value, modRevision);
      } catch (error) {
        logger.warn({ err: error, key }, "ignoring malformed etcd value");
      }
      if (parsed === undefined) logger.warn({ key }, "ignoring malformed etcd value");
    }
    if (parsed === undefined) entries.delete(suffix);
    else entries.set(suffix, parsed);
    options.onChange?.();
  };

  const initial = await etcd.getAll().prefix(prefix).exec();
  for (const kv of initial.kvs) apply(kv.key.toString(), kv.value.toString(), Number(kv.mod_revision));
  const revision = BigInt(initial.header.revision) + 1n;
  const watcher: Watcher = await etcd.watch().prefix(prefix).startRevision(revision.toString()).create();
  watcher.on("put", (kv) => apply(kv.key.toString(), kv.value.toString(), Number(kv.mod_revision)));
  watcher.on("delete", (kv) => apply(kv.key.toString(), undefined));
  watcher.on("error", (error) => logger.warn({ err: error, prefix }, "etcd watch error (it reconnects)"));
  return {
    entries,
    async close() {
      await watcher.cancel();
    },
  };
}
