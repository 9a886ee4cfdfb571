// Several ingress frontends, one global limit (DESIGN §4), as pure state: the shell feeds it its own
// admissions / releases, peers' `ingress.state` snapshots, lease losses and bus connectivity, and
// reads the load to put into the L1 view. No I/O, no timers: time is passed in.
//
// Global load seen by instance i:
//   own exact counts  +  Σ over live peers j ( j's last snapshot  +  mirror_ij )
// where mirror_ij = i's own admissions since the snapshot of i's that j acknowledged in the snapshot
// i holds (every snapshot carries `ackedSeqs`: the latest seq it had received from each peer).
// Those are exactly the admissions of i that j cannot have seen when it took that snapshot; i
// assumes j admitted as many in the same interval, as a synchronized burst would. Only admissions
// count (releases do not shrink the mirror), so the error is always on the safe side, and it
// vanishes once j acknowledges a snapshot taken after them (one round trip).
//
// Burst bound. The L1 decision charges each admission once per live instance (N), so instance i
// admits only while  own + Σ_j (snapshot_j + mirror_ij) + N ≤ limit. From a common stale view with
// global load G, each admission raises i's own count by 1 and every mirror by 1, i.e. its view by
// N, so i admits at most ⌊(limit − G) / N⌋ — its quota of the remaining headroom — before it hears
// from its peers again, and N instances together at most limit − G: the global total never exceeds
// the limit. Acks make the same hold for views that are stale by different amounts: a peer's
// snapshot only retires mirrored admissions that the peer had itself seen. frontend-sync.spec.ts
// checks the bound with N simulated instances on a delayed, reordering-free bus (NATS preserves
// per-publisher order; out-of-order seqs are ignored anyway).
//
// What the shell must do for the bound to be useful, not just safe: carry `ackedSeqs` on the wire
// (sluice.v1.IngressState has no such field yet; without it every own admission stays mirrored
// forever and the instance starves), and publish soon (≥ 1 ms debounce) after its counts change
// AND after it receives a peer snapshot with a newer seq, so acks travel within one round trip
// rather than one heartbeat.
//
// Liveness: a peer leaves the view when its lease is gone (`peerLeaseLost`) or when no snapshot has
// been received from it for `maxSnapshotAgeMs` (on this instance's clock, so host clock skew does
// not matter). Its in-flight requests leave the global count with it, as DESIGN §3 requires.
//
// Bus down (`setBusConnected(false)`): peers' state cannot be trusted, so the view reports
// `globalStateAvailable: false`, own exact counts only, and the last instance count seen while
// connected; the L1 decision then applies the policy's fail mode (static: limit ÷ that count).
// The same holds at start-up while leased peers (`setLeasedPeers`) have not been heard from yet,
// so a new instance does not take the whole headroom believing it is alone — and whenever a peer
// that still holds its lease has gone silent for `maxSnapshotAgeMs`: silence with a live lease is
// not absence. An instance whose own event loop lags (its peers' snapshots wait unread in its
// socket) sees every peer go silent at once; dropping them would let it admit against the whole
// limit exactly when it is overloaded (measured: 66–87 % overshoot in bench/ingress-sync.ts), so
// it falls back to its fail-static share until it hears from them again or their leases go.
// Without lease information (`setLeasedPeers` never called) a silent peer simply leaves the view.

import { FrontendSyncConfigError, InvalidPeerSnapshotError } from "./errors.js";

/** One instance's `ingress.state` message as core sees it (the shell converts the wire message). */
export interface IngressStateSnapshot {
  /** Publisher's instance id (its etcd registration id). */
  readonly instanceId: string;
  /** Publisher sequence number, +1 per snapshot, starting at 1. */
  readonly seq: number;
  /** When the publisher took it (publisher's clock; informational). */
  readonly atMs: number;
  /** Admitted, unfinished requests per class; absent classes are 0. */
  readonly inflightByClass: Readonly<Record<string, number>>;
  /** KV blocks of those requests per class. */
  readonly kvBlocksByClass: Readonly<Record<string, number>>;
  /** Latest seq the publisher had received from each peer, by instance id, when it took this. */
  readonly ackedSeqs: Readonly<Record<string, number>>;
}

export interface FrontendSyncOptions {
  /** This instance's id (its etcd registration id). */
  instanceId: string;
  /** A peer whose last snapshot arrived longer ago than this leaves the view (~3 heartbeats). */
  maxSnapshotAgeMs: number;
  /** Own published seqs remembered to resolve peers' acks; an ack older than that counts all admissions. */
  ackHistoryLength: number;
}

export const DEFAULT_FRONTEND_SYNC_OPTIONS: Readonly<Omit<FrontendSyncOptions, "instanceId">> = Object.freeze(
  {
    maxSnapshotAgeMs: 3000,
    ackHistoryLength: 4096,
  },
);

export function frontendSyncOptionsWithDefaults(
  options: Partial<FrontendSyncOptions> & { instanceId: string },
): FrontendSyncOptions {
  const o = { ...DEFAULT_FRONTEND_SYNC_OPTIONS, ...stripUndefined(options) } as FrontendSyncOptions;
  if (typeof o.instanceId !== "string" || o.instanceId.length === 0) {
    throw new FrontendSyncConfigError("instanceId must be a non-empty string");
  }
  if (!(o.maxSnapshotAgeMs > 0) || !Number.isFinite(o.maxSnapshotAgeMs)) {
    throw new FrontendSyncConfigError(`maxSnapshotAgeMs must be finite and > 0, got ${o.maxSnapshotAgeMs}`);
  }
  if (!Number.isInteger(o.ackHistoryLength) || o.ackHistoryLength < 1) {
    throw new FrontendSyncConfigError(`ackHistoryLength must be an integer ≥ 1, got ${o.ackHistoryLength}`);
  }
  return o;
}

/** The load part of the L1 `IngressView`, refreshed in place by `load()`. */
export interface SyncedLoad {
  globalStateAvailable: boolean;
  inflightRequests: number;
  inflightKvBlocks: number;
  liveInstances: number;
}

export type ReceiveOutcome = "applied" | "stale_seq" | "own";

export interface PeerStatus {
  readonly instanceId: string;
  readonly seq: number;
  readonly receivedAgoMs: number;
  readonly inflightRequests: number;
  readonly inflightKvBlocks: number;
  /** Own admissions this peer has not acknowledged yet (counted against it). */
  readonly unacknowledgedRequests: number;
}

export interface GlobalInflightView {
  readonly instanceId: string;
  /** Call once per request the L1 decision admitted. */
  admitted(className: string, kvBlocks: number): void;
  /** Call exactly once per admitted request when it ends (completed, failed, cancelled). */
  released(className: string, kvBlocks: number): void;
  /** Takes the next snapshot to publish (advances seq and remembers it for acks). */
  snapshot(nowMs: number): IngressStateSnapshot;
  /** Applies a peer's snapshot. @throws InvalidPeerSnapshotError on malformed content. */
  receive(snapshot: IngressStateSnapshot, nowMs: number): ReceiveOutcome;
  /** The peer's etcd lease is gone: forget it now. A later snapshot from it brings it back. */
  peerLeaseLost(instanceId: string): void;
  /**
   * The ingress instances currently holding an etcd lease (this one may be included). Peers listed
   * here that have not sent a snapshot yet make the view incomplete: until they do (or for at most
   * `maxSnapshotAgeMs`), the view reports global state unavailable so the fail mode applies, instead
   * of believing this instance is alone. Peers not listed are forgotten, as with `peerLeaseLost`.
   */
  setLeasedPeers(instanceIds: Iterable<string>, nowMs: number): void;
  /** Sync bus (NATS) connectivity as the shell observes it. */
  setBusConnected(connected: boolean): void;
  /** Load for the L1 view; returns the same object every call (no allocation). */
  load(nowMs: number): Readonly<SyncedLoad>;
  /** This instance's exact in-flight counts. */
  local(): { requests: number; kvBlocks: number };
  /** Global in-flight per class (own + live peers' snapshots, without mirrors), for metrics. */
  globalByClass(nowMs: number): Record<string, { requests: number; kvBlocks: number }>;
  /** Live peers, for metrics and debugging. */
  peers(nowMs: number): PeerStatus[];
}

interface PeerState {
  seq: number;
  receivedAtMs: number;
  snapshot: IngressStateSnapshot;
  requests: number;
  kvBlocks: number;
  /** Own cumulative admissions at the seq this peer acknowledged. */
  ackedAdmittedRequests: number;
  ackedAdmittedKvBlocks: number;
}

function sumValues(instanceId: string, field: string, record: Readonly<Record<string, number>>): number {
  if (typeof record !== "object" || record === null) {
    throw new InvalidPeerSnapshotError(instanceId, `${field} must be an object`);
  }
  let total = 0;
  for (const [name, v] of Object.entries(record)) {
    if (!Number.isInteger(v) || v < 0) {
      throw new InvalidPeerSnapshotError(
        instanceId,
        `${field}.${name} must be an integer ≥ 0, got ${String(v)}`,
      );
    }
    total += v;
  }
  return total;
}

export function createGlobalInflightView(
  options: Partial<FrontendSyncOptions> & { instanceId: string },
): GlobalInflightView {
  const { instanceId, maxSnapshotAgeMs, ackHistoryLength } = frontendSyncOptionsWithDefaults(options);

  const ownRequests = new Map<string, number>();
  const ownKvBlocks = new Map<string, number>();
  let localRequests = 0;
  let localKvBlocks = 0;
  // Cumulative admissions, never decreasing: the mirror is a difference of two of these.
  let admittedRequests = 0;
  let admittedKvBlocks = 0;

  // Ring of own published seqs and the cumulative admissions at each.
  let seq = 0;
  const historySeq = new Float64Array(ackHistoryLength);
  const historyRequests = new Float64Array(ackHistoryLength);
  const historyKvBlocks = new Float64Array(ackHistoryLength);

  const peers = new Map<string, PeerState>();
  // Highest seq ever seen per peer, kept across lease loss so replays of old seqs stay ignored.
  const highestSeq = new Map<string, number>();
  // Leased peers not heard from yet, with when their lease was first seen.
  const awaited = new Map<string, number>();
  // Every peer holding an etcd lease, as last told by `setLeasedPeers`; undefined until then.
  let leasedPeers: Set<string> | undefined;
  let busConnected = true;
  let lastKnownInstances = 1;
  const loadOut: SyncedLoad = {
    globalStateAvailable: true,
    inflightRequests: 0,
    inflightKvBlocks: 0,
    liveInstances: 1,
  };

  function admittedAt(ackedSeq: number): [number, number] {
    if (ackedSeq >= 1 && ackedSeq <= seq) {
      const slot = ackedSeq % ackHistoryLength;
      if (historySeq[slot] === ackedSeq) return [historyRequests[slot]!, historyKvBlocks[slot]!];
    }
    // Never acknowledged, too old to remember, or from before a restart with the same id (seq ahead
    // of ours): count every admission (safe side).
    return [0, 0];
  }

  function isLive(p: PeerState, nowMs: number): boolean {
    return nowMs - p.receivedAtMs <= maxSnapshotAgeMs;
  }

  function checkCount(what: string, className: string, v: number): void {
    if (!Number.isInteger(v) || v < 0) {
      throw new RangeError(`${what}(${JSON.stringify(className)}, ${v}): kvBlocks must be an integer ≥ 0`);
    }
  }

  return {
    instanceId,

    admitted(className, kvBlocks) {
      checkCount("admitted", className, kvBlocks);
      ownRequests.set(className, (ownRequests.get(className) ?? 0) + 1);
      ownKvBlocks.set(className, (ownKvBlocks.get(className) ?? 0) + kvBlocks);
      localRequests += 1;
      localKvBlocks += kvBlocks;
      admittedRequests += 1;
      admittedKvBlocks += kvBlocks;
    },

    released(className, kvBlocks) {
      checkCount("released", className, kvBlocks);
      const requests = ownRequests.get(className) ?? 0;
      const blocks = ownKvBlocks.get(className) ?? 0;
      // A double release is a bug in the shell; refusing it keeps the counts from going negative
      // and hiding in-flight work from every frontend.
      if (requests < 1 || blocks < kvBlocks) {
        throw new RangeError(
          `released(${JSON.stringify(className)}, ${kvBlocks}) without a matching admission (in flight: ${requests} requests, ${blocks} blocks)`,
        );
      }
      ownRequests.set(className, requests - 1);
      ownKvBlocks.set(className, blocks - kvBlocks);
      localRequests -= 1;
      localKvBlocks -= kvBlocks;
    },

    snapshot(nowMs) {
      seq += 1;
      const slot = seq % ackHistoryLength;
      historySeq[slot] = seq;
      historyRequests[slot] = admittedRequests;
      historyKvBlocks[slot] = admittedKvBlocks;
      const ackedSeqs: Record<string, number> = {};
      for (const [id, p] of peers) ackedSeqs[id] = p.seq;
      return {
        instanceId,
        seq,
        atMs: nowMs,
        inflightByClass: Object.fromEntries(ownRequests),
        kvBlocksByClass: Object.fromEntries(ownKvBlocks),
        ackedSeqs,
      };
    },

    receive(snapshot, nowMs) {
      const id = snapshot.instanceId;
      if (typeof id !== "string" || id.length === 0) {
        throw new InvalidPeerSnapshotError(String(id), "instanceId must be a non-empty string");
      }
      if (id === instanceId) return "own";
      if (!Number.isInteger(snapshot.seq) || snapshot.seq < 1) {
        throw new InvalidPeerSnapshotError(id, `seq must be an integer ≥ 1, got ${String(snapshot.seq)}`);
      }
      const requests = sumValues(id, "inflightByClass", snapshot.inflightByClass);
      const kvBlocks = sumValues(id, "kvBlocksByClass", snapshot.kvBlocksByClass);
      if (typeof snapshot.ackedSeqs !== "object" || snapshot.ackedSeqs === null) {
        throw new InvalidPeerSnapshotError(id, "ackedSeqs must be an object");
      }
      const acked = snapshot.ackedSeqs[instanceId] ?? 0;
      if (!Number.isInteger(acked) || acked < 0) {
        throw new InvalidPeerSnapshotError(
          id,
          `ackedSeqs.${instanceId} must be an integer ≥ 0, got ${acked}`,
        );
      }
      if (snapshot.seq <= (highestSeq.get(id) ?? 0)) return "stale_seq";
      highestSeq.set(id, snapshot.seq);
      const [ackedAdmittedRequests, ackedAdmittedKvBlocks] = admittedAt(acked);
      awaited.delete(id);
      peers.set(id, {
        seq: snapshot.seq,
        receivedAtMs: nowMs,
        snapshot,
        requests,
        kvBlocks,
        ackedAdmittedRequests,
        ackedAdmittedKvBlocks,
      });
      return "applied";
    },

    peerLeaseLost(id) {
      peers.delete(id);
      awaited.delete(id);
      leasedPeers?.delete(id);
    },

    setLeasedPeers(instanceIds, nowMs) {
      const leased = new Set(instanceIds);
      leased.delete(instanceId);
      leasedPeers = leased;
      for (const id of peers.keys()) if (!leased.has(id)) peers.delete(id);
      for (const id of awaited.keys()) if (!leased.has(id)) awaited.delete(id);
      for (const id of leased) if (!peers.has(id) && !awaited.has(id)) awaited.set(id, nowMs);
    },

    setBusConnected(connected) {
      busConnected = connected;
    },

    load(nowMs) {
      let awaitedLive = 0;
      for (const [id, sinceMs] of awaited) {
        if (nowMs - sinceMs <= maxSnapshotAgeMs || leasedPeers?.has(id) === true) awaitedLive += 1;
        else awaited.delete(id);
      }
      // One pass over the peers (this runs on every admission decision): live peers' counts, and
      // peers heard from once, silent since, lease still alive — counted like a peer not heard yet.
      let requests = localRequests;
      let kvBlocks = localKvBlocks;
      let live = 0;
      for (const [id, p] of peers) {
        if (!isLive(p, nowMs)) {
          if (leasedPeers?.has(id) === true) awaitedLive += 1;
          continue;
        }
        live += 1;
        requests += p.requests + (admittedRequests - p.ackedAdmittedRequests);
        kvBlocks += p.kvBlocks + (admittedKvBlocks - p.ackedAdmittedKvBlocks);
      }
      const available = busConnected && awaitedLive === 0;
      // While the bus is down the peers' state cannot be counted on, so the last count seen stands.
      if (busConnected) lastKnownInstances = 1 + live + awaitedLive;
      loadOut.globalStateAvailable = available;
      loadOut.inflightRequests = available ? requests : localRequests;
      loadOut.inflightKvBlocks = available ? kvBlocks : localKvBlocks;
      loadOut.liveInstances = lastKnownInstances;
      return loadOut;
    },

    local() {
      return { requests: localRequests, kvBlocks: localKvBlocks };
    },

    globalByClass(nowMs) {
      const out: Record<string, { requests: number; kvBlocks: number }> = {};
      const add = (name: string, requests: number, kvBlocks: number): void => {
        const e = out[name] ?? { requests: 0, kvBlocks: 0 };
        e.requests += requests;
        e.kvBlocks += kvBlocks;
        out[name] = e;
      };
      for (const [name, n] of ownRequests) add(name, n, ownKvBlocks.get(name) ?? 0);
      if (busConnected) {
        for (const p of peers.values()) {
          if (!isLive(p, nowMs)) continue;
          for (const [name, n] of Object.entries(p.snapshot.inflightByClass)) add(name, n, 0);
          for (const [name, n] of Object.entries(p.snapshot.kvBlocksByClass)) add(name, 0, n);
        }
      }
      return out;
    },

    peers(nowMs) {
      const out: PeerStatus[] = [];
      for (const [id, p] of peers) {
        if (!isLive(p, nowMs)) continue;
        out.push({
          instanceId: id,
          seq: p.seq,
          receivedAgoMs: nowMs - p.receivedAtMs,
          inflightRequests: p.requests,
          inflightKvBlocks: p.kvBlocks,
          unacknowledgedRequests: admittedRequests - p.ackedAdmittedRequests,
        });
      }
      return out;
    },
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
