// The keys under one etcd prefix, decoded: a thin layer over the runtime's `startPrefixWatch` (which
// owns the consistent snapshot, the resume after outages and the background first read) that keeps
// each value parsed once per put. Leased keys vanish when their owner dies, which is how dead engines
// and peers leave the view.

import { type BackgroundPrefixWatch, type Logger, startPrefixWatch } from "@sluice/runtime";
import type { Etcd3 } from "etcd3";

export interface ParsedPrefixView<T> {
  /** Current entries by key suffix (the part after the prefix). Empty until the first snapshot. */
  readonly entries: ReadonlyMap<string, T>;
  /** Resolves once the first snapshot is in (see `BackgroundPrefixWatch.ready`). */
  ready(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export interface ParsedPrefixViewOptions<T> {
  client: Etcd3;
  /** Full key prefix, ending in `/`. */
  prefix: string;
  /** Decodes one value; undefined (or a throw) drops the key and is logged, never breaks the view. */
  parse(suffix: string, value: string): T | undefined;
  onChange?: () => void;
  logger: Logger;
}

export function startParsedPrefixView<T>(options: ParsedPrefixViewOptions<T>): ParsedPrefixView<T> {
  const { prefix, logger } = options;
  const entries = new Map<string, T>();
  const put = (key: string, value: string) => {
    const suffix = key.slice(prefix.length);
    let parsed: T | undefined;
    try {
      parsed = options.parse(suffix, value);
    } catch (error) {
      logger.warn({ err: error, key }, "ignoring malformed etcd value");
    }
    if (parsed === undefined) entries.delete(suffix);
    else entries.set(suffix, parsed);
  };
  const changed = () => {
    try {
      options.onChange?.();
    } catch (error) {
      logger.error({ err: error, prefix }, "prefix view change handler threw");
    }
  };
  const watch: BackgroundPrefixWatch = startPrefixWatch(
    options.client,
    prefix,
    {
      onSnapshot(snapshot) {
        entries.clear();
        for (const entry of snapshot) put(entry.key, entry.value);
        changed();
      },
      onPut(entry) {
        put(entry.key, entry.value);
        changed();
      },
      onDelete(key) {
        entries.delete(key.slice(prefix.length));
        changed();
      },
      onStatus(status) {
        logger.info({ prefix, status: status.type }, "etcd watch status");
      },
    },
    { logger },
  );
  return {
    entries,
    ready: (signal) => watch.ready(signal),
    close: () => watch.close(),
  };
}
