// Revisions of one policy key, newest first, read from etcd's MVCC history: the current value,
// then `get` at `mod_revision - 1` for the value before it, and so on back to the key's creation
// (version 1). etcd keeps only history newer than its last compaction, so the walk may stop
// earlier; the result says why it stopped.

import type { IKeyValue } from "etcd3";
import { PolicyCommandError } from "./errors.js";
import type { EtcdAccess } from "./etcd-access.js";

export interface KeyRevision {
  /** Revision that wrote this value (mod_revision). */
  readonly revision: number;
  /** Per-key write counter of this lifetime of the key: 1 = created. */
  readonly version: number;
  readonly createRevision: number;
  readonly value: string;
}

export type HistoryEnd =
  /** Reached the write that created the key (an earlier, deleted lifetime is not followed). */
  | "created"
  /** Older revisions were compacted away by etcd. */
  | "compacted"
  /** `limit` revisions were read. */
  | "limit"
  /** The key does not exist now (deleted or never written). */
  | "absent";

export interface KeyHistory {
  readonly key: string;
  readonly revisions: readonly KeyRevision[];
  readonly end: HistoryEnd;
}

const toRevision = (kv: IKeyValue): KeyRevision => ({
  revision: Number(kv.mod_revision),
  version: Number(kv.version),
  createRevision: Number(kv.create_revision),
  value: kv.value.toString("utf8"),
});

export function isCompactedError(err: unknown): boolean {
  return err instanceof Error && /compacted/i.test(err.message);
}

/** The key's value as of `revision`, or undefined if it did not exist then. */
export async function readAt(
  etcd: EtcdAccess,
  key: string,
  revision: number | undefined,
): Promise<KeyRevision | undefined> {
  try {
    const res = await etcd.call(`a read of ${key}`, () => {
      const get = etcd.client.get(key);
      return (revision === undefined ? get : get.revision(revision)).exec();
    });
    const kv = res.kvs[0];
    return kv === undefined ? undefined : toRevision(kv);
  } catch (err) {
    if (isCompactedError(err)) {
      throw new PolicyCommandError(
        `revision ${revision} of ${key} is no longer available: etcd compacted its history (${(err as Error).message})`,
        { cause: err },
      );
    }
    throw err;
  }
}

export async function readHistory(etcd: EtcdAccess, key: string, limit: number): Promise<KeyHistory> {
  const revisions: KeyRevision[] = [];
  let entry = await readAt(etcd, key, undefined);
  if (entry === undefined) return { key, revisions, end: "absent" };
  for (;;) {
    revisions.push(entry);
    if (entry.version <= 1) return { key, revisions, end: "created" };
    if (revisions.length >= limit) return { key, revisions, end: "limit" };
    let previous: KeyRevision | undefined;
    try {
      previous = await readAt(etcd, key, entry.revision - 1);
    } catch (err) {
      if (err instanceof PolicyCommandError && isCompactedError(err.cause)) {
        return { key, revisions, end: "compacted" };
      }
      throw err;
    }
    // version > 1 means the key existed just before this write; absence would be a torn read.
    if (previous === undefined) return { key, revisions, end: "created" };
    entry = previous;
  }
}
