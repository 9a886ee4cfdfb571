// Live policies for a process: a snapshot of `{prefix}/policies/` then every change. Each change
// builds a new immutable table and swaps it in with one assignment, so a decision reading
// `current(model)` sees either the old or the new policy, never a mix, and the read allocates
// nothing. An invalid stored document never replaces a good one: it is logged, counted and reported
// through `onRejected` (the process publishes the `policy_rejected` event; this file stays free of
// NATS).

import type { ResolvedPolicy } from "@sluice/core";
import { withPolicyDefaults } from "@sluice/core";
import type { Etcd3 } from "etcd3";
import { type PrefixWatch, type WatchEntry, watchPrefix } from "./etcd-watch.js";
import { DEFAULT_KEY_PREFIX, DEFAULT_POLICY_KEY } from "./keys.js";
import { type Logger, noopLogger } from "./logger.js";
import { type Metrics, noopMetrics } from "./metrics.js";
import { type ParsedPolicy, parseStoredPolicy } from "./policy-document.js";
import { PolicyDocumentError } from "./policy-errors.js";
import { type PolicyKeyRef, type PolicyKind, policyKeys } from "./policy-keys.js";

/** Where the effective policy of a model came from. */
export type EffectivePolicySource = "model" | "default" | "built-in";

/** The policy in force for a model. Immutable; the same object is returned until a change. */
export interface EffectivePolicy {
  readonly policy: ResolvedPolicy;
  readonly source: EffectivePolicySource;
  /** etcd key it was read from; undefined for the built-in defaults. */
  readonly key: string | undefined;
  /** etcd mod revision of that key; 0 for the built-in defaults. */
  readonly revision: number;
}

export interface PolicyApplied {
  readonly kind: PolicyKind;
  /** Key name: a model or `_default`. */
  readonly model: string;
  readonly key: string;
  /** Revision of the put or delete. */
  readonly revision: number;
  /** The new document, or undefined when the key was deleted (its model falls back). */
  readonly policy: ParsedPolicy | undefined;
}

export interface PolicyRejected {
  readonly kind: PolicyKind;
  readonly model: string;
  readonly key: string;
  /** Revision of the refused document. */
  readonly revision: number;
  readonly error: PolicyDocumentError;
  /** Path of the first invalid field, e.g. `ingress.kvOvercommit`. */
  readonly field: string;
  /** Revision of the document of this key that stays in force, undefined when there is none. */
  readonly keptRevision: number | undefined;
}

export interface WatchPoliciesOptions {
  readonly client: Etcd3;
  /** Key prefix. Default `/sluice/v1`. */
  readonly prefix?: string;
  /** After a new table is in force; also once per key of the initial snapshot. */
  onApplied?(change: PolicyApplied): void;
  /** A stored document was refused; the process publishes a `policy_rejected` event from here. */
  onRejected?(rejection: PolicyRejected): void;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
  /** Passed to the prefix watch. Default 200 ms. */
  readonly retryDelayMs?: number;
}

export interface PolicyWatcher {
  /** Policy in force for `model`: its own, else `_default`, else the built-in defaults. No allocation. */
  current(model: string): EffectivePolicy;
  /** Shadow candidate for `model` (its own, else the `_default` one), or undefined when none is stored. */
  shadow(model: string): EffectivePolicy | undefined;
  /** Highest etcd revision reflected. */
  readonly revision: number;
  close(): Promise<void>;
}

export const POLICY_REJECTED_METRIC = "sluice_policy_rejected_total";
export const POLICY_REVISION_METRIC = "sluice_policy_revision";

/** The built-in defaults, resolved once. */
export const BUILT_IN_POLICY: EffectivePolicy = Object.freeze({
  policy: withPolicyDefaults({}),
  source: "built-in",
  key: undefined,
  revision: 0,
});

interface Table {
  readonly enforcing: ReadonlyMap<string, EffectivePolicy>;
  readonly fallback: EffectivePolicy;
  readonly shadow: ReadonlyMap<string, EffectivePolicy>;
  readonly shadowFallback: EffectivePolicy | undefined;
}

interface Good {
  readonly parsed: ParsedPolicy;
  /** Built once per revision, so a table rebuilt for another key's change hands out the same object. */
  readonly effective: EffectivePolicy;
  readonly revision: number;
}

export async function watchPolicies(options: WatchPoliciesOptions): Promise<PolicyWatcher> {
  const keys = policyKeys(options.prefix ?? DEFAULT_KEY_PREFIX);
  const logger = options.logger ?? noopLogger;
  const metrics = options.metrics ?? noopMetrics;
  const rejectedTotal = metrics.counter({
    name: POLICY_REJECTED_METRIC,
    help: "Stored policy revisions refused as invalid (the last good policy stayed in force).",
    labelNames: ["model", "kind"],
  });
  const revisionGauge = metrics.gauge({
    name: POLICY_REVISION_METRIC,
    help: "etcd revision of the policy in force per policy key (0 = built-in defaults).",
    labelNames: ["model", "kind"],
  });

  const good: Record<PolicyKind, Map<string, Good>> = { enforcing: new Map(), shadow: new Map() };
  let table: Table = {
    enforcing: new Map(),
    fallback: BUILT_IN_POLICY,
    shadow: new Map(),
    shadowFallback: undefined,
  };

  const effective = (parsed: ParsedPolicy, key: string, revision: number): EffectivePolicy =>
    Object.freeze({
      policy: parsed.resolved,
      source: parsed.model === DEFAULT_POLICY_KEY ? "default" : "model",
      key,
      revision,
    });

  const rebuild = (): void => {
    const build = (kind: PolicyKind) => new Map([...good[kind]].map(([model, g]) => [model, g.effective]));
    const enforcing = build("enforcing");
    const shadow = build("shadow");
    table = {
      enforcing,
      fallback: enforcing.get(DEFAULT_POLICY_KEY) ?? BUILT_IN_POLICY,
      shadow,
      shadowFallback: shadow.get(DEFAULT_POLICY_KEY),
    };
  };

  const notify = <T>(what: string, fn: ((arg: T) => void) | undefined, arg: T): void => {
    if (fn === undefined) return;
    try {
      fn(arg);
    } catch (err) {
      logger.error({ err }, `policy watch ${what} callback threw`);
    }
  };

  /** Applies one put; returns the notification to send once the new table is in force. */
  const put = (ref: PolicyKeyRef, entry: WatchEntry): (() => void) => {
    const map = good[ref.kind];
    try {
      const parsed = parseStoredPolicy(entry.value, { model: ref.model });
      map.set(ref.model, {
        parsed,
        effective: effective(parsed, entry.key, entry.modRevision),
        revision: entry.modRevision,
      });
      revisionGauge.set(entry.modRevision, { model: ref.model, kind: ref.kind });
      logger.info({ key: entry.key, revision: entry.modRevision, kind: ref.kind }, "policy applied");
      const change: PolicyApplied = { ...ref, key: entry.key, revision: entry.modRevision, policy: parsed };
      return () => notify("onApplied", options.onApplied, change);
    } catch (err) {
      const error =
        err instanceof PolicyDocumentError
          ? err
          : new PolicyDocumentError([{ path: "(document)", message: String(err) }], { cause: err });
      const kept = map.get(ref.model)?.revision;
      rejectedTotal.inc(1, { model: ref.model, kind: ref.kind });
      logger.warn(
        {
          key: entry.key,
          revision: entry.modRevision,
          field: error.field,
          error: error.message,
          keptRevision: kept ?? null,
        },
        kept === undefined
          ? "stored policy is invalid and ignored; no earlier good revision of this key, the fallback stays in force"
          : "stored policy is invalid and ignored; the last good revision stays in force",
      );
      const rejection: PolicyRejected = {
        ...ref,
        key: entry.key,
        revision: entry.modRevision,
        error,
        field: error.field,
        keptRevision: kept,
      };
      return () => notify("onRejected", options.onRejected, rejection);
    }
  };

  const remove = (ref: PolicyKeyRef, key: string, revision: number): (() => void) | undefined => {
    if (!good[ref.kind].delete(ref.model)) return undefined;
    revisionGauge.set(0, { model: ref.model, kind: ref.kind });
    logger.info({ key, revision, kind: ref.kind }, "policy deleted; the model falls back");
    const change: PolicyApplied = { ...ref, key, revision, policy: undefined };
    return () => notify("onApplied", options.onApplied, change);
  };

  const commit = (notifications: ReadonlyArray<(() => void) | undefined>): void => {
    rebuild();
    for (const n of notifications) n?.();
  };

  const watch: PrefixWatch = await watchPrefix(
    options.client,
    keys.policies,
    {
      onSnapshot: (entries) => {
        const pending: Array<() => void> = [];
        for (const entry of entries) {
          const ref = keys.parse(entry.key);
          if (ref !== undefined) pending.push(put(ref, entry));
        }
        commit(pending);
      },
      onPut: (entry) => {
        const ref = keys.parse(entry.key);
        if (ref === undefined) {
          logger.debug({ key: entry.key }, "key under the policies prefix is not a policy; ignored");
          return;
        }
        commit([put(ref, entry)]);
      },
      onDelete: (key, revision) => {
        const ref = keys.parse(key);
        if (ref !== undefined) commit([remove(ref, key, revision)]);
      },
      onStatus: (status) => logger.info({ status: status.type }, "policy watch status"),
    },
    { logger, ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }) },
  );

  return {
    current: (model) => {
      const t = table;
      return t.enforcing.get(model) ?? t.fallback;
    },
    shadow: (model) => {
      const t = table;
      return t.shadow.get(model) ?? t.shadowFallback;
    },
    get revision() {
      return watch.revision;
    },
    close: () => watch.close(),
  };
}
