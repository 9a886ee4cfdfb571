// A policy key as stored in etcd, validated the way processes validate it.

import type { ResolvedPolicy } from "@sluice/core";
import { BUILT_IN_POLICY, type ParsedPolicy, PolicyDocumentError, parseStoredPolicy } from "@sluice/runtime";
import type { EtcdAccess } from "./etcd-access.js";
import { type KeyRevision, readAt } from "./history.js";

export interface StoredPolicy extends KeyRevision {
  readonly key: string;
  /** Set when the stored document is valid. */
  readonly parsed: ParsedPolicy | undefined;
  /** Set when it is not: processes ignore it and keep their last good revision. */
  readonly error: PolicyDocumentError | undefined;
}

export function checkStored(key: string, model: string, rev: KeyRevision): StoredPolicy {
  try {
    return { ...rev, key, parsed: parseStoredPolicy(rev.value, { model }), error: undefined };
  } catch (err) {
    if (!(err instanceof PolicyDocumentError)) throw err;
    return { ...rev, key, parsed: undefined, error: err };
  }
}

export async function readStored(
  etcd: EtcdAccess,
  key: string,
  model: string,
  revision?: number,
): Promise<StoredPolicy | undefined> {
  const rev = await readAt(etcd, key, revision);
  return rev === undefined ? undefined : checkStored(key, model, rev);
}

export interface Effective {
  readonly source: "model" | "default" | "built-in";
  readonly key: string | undefined;
  readonly revision: number;
  readonly policy: ResolvedPolicy;
}

/**
 * What a process starting now would enforce for the model: a valid model policy, else a valid
 * `_default`, else the built-in defaults. (A running process that saw an earlier good revision of an
 * invalid key keeps that one instead.)
 */
export function effectiveOf(own: StoredPolicy | undefined, fallback: StoredPolicy | undefined): Effective {
  for (const [s, source] of [
    [own, own?.parsed?.model === "_default" ? "default" : "model"],
    [fallback, "default"],
  ] as const) {
    if (s?.parsed !== undefined)
      return { source, key: s.key, revision: s.revision, policy: s.parsed.resolved };
  }
  return { source: "built-in", key: undefined, revision: 0, policy: BUILT_IN_POLICY.policy };
}

/** JSON view of a stored key for --json output. */
export function storedJson(s: StoredPolicy | undefined): object | null {
  if (s === undefined) return null;
  return {
    key: s.key,
    revision: s.revision,
    version: s.version,
    createRevision: s.createRevision,
    valid: s.error === undefined,
    document: s.parsed?.json ?? safeJson(s.value),
    ...(s.error === undefined ? {} : { issues: s.error.issues }),
  };
}

function safeJson(value: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}
