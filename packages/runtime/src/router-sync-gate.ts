// Who may change the shared predicted load: `router.sync` deltas are applied only from router
// replicas registered live in etcd (`instances/router/{id}`), and an add is applied only if it fits
// on an engine. Without this, anyone on the bus — a misconfigured tool, a replica of another cluster
// sharing the namespace, a fuzzer — could add load no live replica will ever free, and one absurd
// add (2^32 − 1 prefill tokens) kept every ingress rejecting with predicted_ttft until it aged out
// (60 s). Used by the routers and the aggregator alike, so their pictures agree.
//
// Ordering: a new replica's first deltas can arrive before this process's etcd watch shows its
// registration (NATS is faster than an etcd watch, and the replica routes as soon as an ingress
// sees it). Deltas of an unknown replica are therefore held, in arrival order, for
// `registrationWaitMs`: its registration arriving meanwhile applies them; otherwise they are refused.
// A replica whose registration went is still accepted for `departedKeepMs`, so the frees it sent just
// before stopping (they race its lease revoke) still apply.
import type { RoutedAdd, RouterSyncDelta } from "@sluice/core";
import type { Logger } from "./logger.js";

export type RouterSyncRefusal = "unregistered_replica" | "absurd_value";

/** What an add is checked against: one engine's KV capacity (its etcd registration). */
export interface SyncWorkerCapacity {
  readonly kvTotalBlocks: number;
  readonly blockSize: number;
}

/** The final fate of one delta (reported once per delta, at once or after it was held). */
export type RouterSyncFate<Outcome> =
  | { readonly kind: "applied"; readonly outcome: Outcome }
  /** `apply` threw: the delta is malformed (a field out of range). */
  | { readonly kind: "malformed"; readonly error: unknown }
  | { readonly kind: "refused"; readonly reason: RouterSyncRefusal; readonly message: string };

export interface RouterSyncGateOptions<Outcome> {
  /** Applies an accepted delta; a throw makes the delta's fate `malformed`. */
  apply(delta: RouterSyncDelta): Outcome;
  /** Every delta's fate, once: applied (with `apply`'s result) or refused. */
  onFate(delta: RouterSyncDelta, fate: RouterSyncFate<Outcome>): void;
  /** Registered capacity of a worker, undefined when it has no registration here. */
  capacityOf(workerId: string): SyncWorkerCapacity | undefined;
  /** The largest registered capacity (an add for an unknown worker is bounded by it); undefined when none. */
  largestCapacity(): SyncWorkerCapacity | undefined;
  /** How long deltas of a replica without a registration wait for one. Default 3000 ms. */
  readonly registrationWaitMs?: number;
  /** How long a replica stays accepted after its registration went. Default 3000 ms. */
  readonly departedKeepMs?: number;
  /** Deltas held per unknown replica; beyond it the oldest are refused. Default 4096. */
  readonly maxHeldPerReplica?: number;
  /** Unknown replicas held at once; deltas of further ones are refused at once. Default 16. */
  readonly maxHeldReplicas?: number;
  /** Refusals are logged at most once per this interval (with the count since). Default 10000 ms. */
  readonly warnIntervalMs?: number;
  readonly logger?: Logger;
  /** Injected clock. Default `Date.now`. */
  readonly nowMs?: () => number;
}

export const DEFAULT_SYNC_REGISTRATION_WAIT_MS = 3_000;
export const DEFAULT_SYNC_DEPARTED_KEEP_MS = 3_000;
export const DEFAULT_SYNC_MAX_HELD_PER_REPLICA = 4_096;
export const DEFAULT_SYNC_MAX_HELD_REPLICAS = 16;
export const DEFAULT_SYNC_WARN_INTERVAL_MS = 10_000;

export interface RouterSyncGate {
  /**
   * A delta arrived: judged now (`judged`: applied, malformed or absurd — see its fate), held for its
   * replica's registration, or refused as unregistered. Never throws.
   */
  receive(delta: RouterSyncDelta): "judged" | "held" | "refused";
  /** The replica's registration is in etcd: it is live, and its held deltas are applied now, in order. */
  replicaRegistered(replicaId: string): void;
  /** The replica's registration went. */
  replicaDeregistered(replicaId: string): void;
  /** Refuses held deltas whose wait ended and forgets departed replicas. Call about once a second. */
  sweep(): void;
  isLive(replicaId: string): boolean;
  /** Deltas currently held. */
  heldCount(): number;
}

interface Held {
  readonly sinceMs: number;
  readonly deltas: RouterSyncDelta[];
}

/** Why an add cannot be real, or undefined when it fits on `capacity`. */
export function absurdAddReason(add: RoutedAdd, capacity: SyncWorkerCapacity): string | undefined {
  // A registration without these (older or foreign engines) bounds nothing.
  if (!(capacity.kvTotalBlocks >= 1 && capacity.blockSize >= 1)) return undefined;
  const kvTokens = capacity.kvTotalBlocks * capacity.blockSize;
  if (add.prefillTokens > kvTokens) {
    return `prefill_tokens ${add.prefillTokens} exceeds the engine's KV capacity of ${kvTokens} tokens`;
  }
  for (const [name, value] of [
    ["blocks", add.blocks],
    ["overlap_blocks", add.overlapBlocks],
    ["block_hashes", add.blockHashes.length],
  ] as const) {
    if (value > capacity.kvTotalBlocks) {
      return `${name} ${value} exceeds the engine's ${capacity.kvTotalBlocks} KV blocks`;
    }
  }
  return undefined;
}

function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be > 0, got ${value}`);
  return value;
}

export function createRouterSyncGate<Outcome>(options: RouterSyncGateOptions<Outcome>): RouterSyncGate {
  const nowMs = options.nowMs ?? Date.now;
  const waitMs = positive(
    "registrationWaitMs",
    options.registrationWaitMs ?? DEFAULT_SYNC_REGISTRATION_WAIT_MS,
  );
  const departedKeepMs = positive("departedKeepMs", options.departedKeepMs ?? DEFAULT_SYNC_DEPARTED_KEEP_MS);
  const maxHeldPerReplica = positive(
    "maxHeldPerReplica",
    options.maxHeldPerReplica ?? DEFAULT_SYNC_MAX_HELD_PER_REPLICA,
  );
  const maxHeldReplicas = positive(
    "maxHeldReplicas",
    options.maxHeldReplicas ?? DEFAULT_SYNC_MAX_HELD_REPLICAS,
  );
  const warnIntervalMs = positive("warnIntervalMs", options.warnIntervalMs ?? DEFAULT_SYNC_WARN_INTERVAL_MS);
  const live = new Set<string>();
  /** Replicas whose registration went, with when. */
  const departed = new Map<string, number>();
  const held = new Map<string, Held>();
  let heldTotal = 0;
  let lastWarnMs = Number.NEGATIVE_INFINITY;
  let refusedSinceWarn = 0;

  const refuse = (delta: RouterSyncDelta, reason: RouterSyncRefusal, message: string): void => {
    options.onFate(delta, { kind: "refused", reason, message });
    refusedSinceWarn++;
    const now = nowMs();
    if (now - lastWarnMs >= warnIntervalMs) {
      options.logger?.warn(
        { replicaId: delta.replicaId, reason, refused: refusedSinceWarn, detail: message },
        "refused router.sync deltas (counted in the metrics); only replicas registered in etcd may change the predicted load",
      );
      lastWarnMs = now;
      refusedSinceWarn = 0;
    }
  };

  const apply = (delta: RouterSyncDelta): void => {
    if (delta.event.case === "add") {
      const add = delta.event.value;
      const capacity = options.capacityOf(add.workerId) ?? options.largestCapacity();
      const absurd = capacity === undefined ? undefined : absurdAddReason(add, capacity);
      if (absurd !== undefined) {
        refuse(delta, "absurd_value", `add ${add.requestId} on ${add.workerId}: ${absurd}`);
        return;
      }
    }
    let outcome: Outcome;
    try {
      outcome = options.apply(delta);
    } catch (error) {
      options.onFate(delta, { kind: "malformed", error });
      return;
    }
    options.onFate(delta, { kind: "applied", outcome });
  };

  const accepted = (replicaId: string): boolean => {
    if (live.has(replicaId)) return true;
    const leftAt = departed.get(replicaId);
    return leftAt !== undefined && nowMs() - leftAt <= departedKeepMs;
  };

  const unregistered = (delta: RouterSyncDelta, why: string): void =>
    refuse(delta, "unregistered_replica", `replica ${JSON.stringify(delta.replicaId)} ${why}`);

  return {
    receive(delta) {
      if (accepted(delta.replicaId)) {
        apply(delta);
        return "judged";
      }
      let entry = held.get(delta.replicaId);
      if (entry === undefined) {
        if (delta.replicaId === "" || held.size >= maxHeldReplicas) {
          unregistered(delta, "is not registered in etcd");
          return "refused";
        }
        entry = { sinceMs: nowMs(), deltas: [] };
        held.set(delta.replicaId, entry);
      }
      entry.deltas.push(delta);
      heldTotal++;
      if (entry.deltas.length > maxHeldPerReplica) {
        heldTotal--;
        unregistered(
          entry.deltas.shift() as RouterSyncDelta,
          "sent more deltas than are held before its registration",
        );
      }
      return "held";
    },

    replicaRegistered(replicaId) {
      live.add(replicaId);
      departed.delete(replicaId);
      const entry = held.get(replicaId);
      if (entry === undefined) return;
      held.delete(replicaId);
      heldTotal -= entry.deltas.length;
      for (const delta of entry.deltas) apply(delta);
    },

    replicaDeregistered(replicaId) {
      if (live.delete(replicaId)) departed.set(replicaId, nowMs());
    },

    sweep() {
      const now = nowMs();
      for (const [replicaId, leftAt] of departed) {
        if (now - leftAt > departedKeepMs) departed.delete(replicaId);
      }
      for (const [replicaId, entry] of held) {
        if (now - entry.sinceMs <= waitMs) continue;
        held.delete(replicaId);
        heldTotal -= entry.deltas.length;
        for (const delta of entry.deltas) {
          unregistered(delta, `has no registration in etcd (waited ${waitMs} ms for one)`);
        }
      }
    },

    isLive: (replicaId) => live.has(replicaId),
    heldCount: () => heldTotal,
  };
}
