// One @sluice/core `GlobalInflightView` per model (policies, and so limits, are per model), kept in
// step with the single `IngressState` stream: every published snapshot advances every model's seq
// together, so a peer's `acked_seqs` entry means the same publication in every view. A view created
// later is fast-forwarded to the current seq (it had no admissions before, which is what its history
// then says).

import { create } from "@bufbuild/protobuf";
import {
  createGlobalInflightView,
  type GlobalInflightView,
  type IngressStateSnapshot,
  type SyncedLoad,
} from "@sluice/core";
import { ClassInflightSchema, type IngressState, IngressStateSchema } from "@sluice/proto";

export interface ModelSyncOptions {
  instanceId: string;
  /** Peers silent for longer leave the view (~3 heartbeats). */
  maxSnapshotAgeMs: number;
}

export interface ModelSync {
  readonly instanceId: string;
  /** The model's view (created on first use). */
  view(model: string): GlobalInflightView;
  /** L1 load of a model (global when available, else own + the fail mode's instance count). */
  load(model: string, nowMs: number): Readonly<SyncedLoad>;
  /** The next `IngressState` to publish (advances every view's seq). */
  snapshot(nowMs: number, heartbeatMs: number): IngressState;
  /**
   * Applies a peer's message. `changed` is true when the peer's in-flight load differs from its last
   * snapshot: the shell then publishes soon, so the peer's mirror of its own new admissions is retired
   * within one round trip. Ack-only messages (same load) do not answer back, so two peers never
   * ping-pong. @throws on malformed content
   */
  receive(state: IngressState, nowMs: number): { applied: boolean; changed: boolean };
  setLeasedPeers(ids: ReadonlySet<string>, nowMs: number): void;
  setBusConnected(connected: boolean): void;
  /**
   * Recomputes every model's load: core records the instance count fail-static divides by only when a
   * load is computed while the bus is up, so this runs periodically, not just on requests.
   */
  refresh(nowMs: number): void;
  /** Live peer ids (across models). */
  livePeers(nowMs: number): string[];
  /** Age of the oldest live peer snapshot. */
  maxPeerAgeMs(nowMs: number): number;
  /** Global in-flight totals over all models (own + live peers, without mirrors), for metrics. */
  globalTotal(nowMs: number): { requests: number; kvBlocks: number };
}

export function createModelSync(options: ModelSyncOptions): ModelSync {
  const views = new Map<string, GlobalInflightView>();
  let seq = 0;
  let leased: ReadonlySet<string> = new Set();
  let leasedAtMs = 0;
  let busConnected = true;
  // Peers seen on the bus with their last receive time (liveness for metrics, across models).
  const heardAt = new Map<string, number>();
  const lastLoadSignature = new Map<string, string>();

  const view = (model: string): GlobalInflightView => {
    let v = views.get(model);
    if (v === undefined) {
      v = createGlobalInflightView({
        instanceId: options.instanceId,
        maxSnapshotAgeMs: options.maxSnapshotAgeMs,
      });
      for (let i = 0; i < seq; i++) v.snapshot(0);
      v.setLeasedPeers(leased, leasedAtMs);
      v.setBusConnected(busConnected);
      views.set(model, v);
    }
    return v;
  };

  const live = (now: number) =>
    [...heardAt]
      .filter(([id, at]) => leased.has(id) && now - at <= options.maxSnapshotAgeMs)
      .map(([id]) => id);

  return {
    instanceId: options.instanceId,
    view,
    load: (model, now) => view(model).load(now),
    snapshot(now, heartbeatMs) {
      seq += 1;
      const inflight = [];
      // Views created after a peer was heard have not seen it: the ack is the highest seq any view holds.
      const acked: Record<string, number> = {};
      for (const [model, v] of views) {
        const s = v.snapshot(now);
        for (const [id, peerSeq] of Object.entries(s.ackedSeqs))
          acked[id] = Math.max(acked[id] ?? 0, peerSeq);
        for (const [requestClass, requests] of Object.entries(s.inflightByClass)) {
          const kvBlocks = s.kvBlocksByClass[requestClass] ?? 0;
          if (requests === 0 && kvBlocks === 0) continue;
          inflight.push(
            create(ClassInflightSchema, {
              model,
              requestClass,
              inflightRequests: requests,
              inflightKvBlocks: kvBlocks,
            }),
          );
        }
      }
      const ackedSeqs: Record<string, bigint> = {};
      for (const [id, s] of Object.entries(acked)) ackedSeqs[id] = BigInt(s);
      return create(IngressStateSchema, {
        instanceId: options.instanceId,
        seq: BigInt(seq),
        timestampMs: Date.now(),
        inflight,
        heartbeatIntervalMs: heartbeatMs,
        ackedSeqs,
      });
    },
    receive(state, now) {
      if (state.instanceId === options.instanceId) return { applied: false, changed: false };
      const byModel = new Map<string, { requests: Record<string, number>; kv: Record<string, number> }>();
      for (const c of state.inflight) {
        let entry = byModel.get(c.model);
        if (!entry) {
          entry = { requests: {}, kv: {} };
          byModel.set(c.model, entry);
        }
        entry.requests[c.requestClass] = (entry.requests[c.requestClass] ?? 0) + c.inflightRequests;
        entry.kv[c.requestClass] = (entry.kv[c.requestClass] ?? 0) + c.inflightKvBlocks;
      }
      for (const model of byModel.keys()) view(model);
      const ackedSeqs: Record<string, number> = {};
      for (const [id, s] of Object.entries(state.ackedSeqs)) ackedSeqs[id] = Number(s);
      let applied = false;
      for (const [model, v] of views) {
        const entry = byModel.get(model);
        const snapshot: IngressStateSnapshot = {
          instanceId: state.instanceId,
          seq: Number(state.seq),
          atMs: state.timestampMs,
          inflightByClass: entry?.requests ?? {},
          kvBlocksByClass: entry?.kv ?? {},
          ackedSeqs,
        };
        if (v.receive(snapshot, now) === "applied") applied = true;
      }
      if (applied || views.size === 0) heardAt.set(state.instanceId, now);
      const signature = state.inflight
        .map((c) => `${c.model}\u0000${c.requestClass}\u0000${c.inflightRequests}\u0000${c.inflightKvBlocks}`)
        .join("\u0001");
      const changed = applied && lastLoadSignature.get(state.instanceId) !== signature;
      lastLoadSignature.set(state.instanceId, signature);
      return { applied, changed };
    },
    setLeasedPeers(ids, now) {
      leased = ids;
      leasedAtMs = now;
      for (const id of heardAt.keys()) {
        if (!ids.has(id)) {
          heardAt.delete(id);
          lastLoadSignature.delete(id);
        }
      }
      for (const v of views.values()) v.setLeasedPeers(ids, now);
    },
    setBusConnected(connected) {
      busConnected = connected;
      for (const v of views.values()) v.setBusConnected(connected);
    },
    refresh(now) {
      for (const v of views.values()) v.load(now);
    },
    livePeers: live,
    maxPeerAgeMs(now) {
      let age = 0;
      for (const id of live(now)) age = Math.max(age, now - (heardAt.get(id) ?? now));
      return age;
    },
    globalTotal(now) {
      const sum = { requests: 0, kvBlocks: 0 };
      for (const v of views.values()) {
        for (const c of Object.values(v.globalByClass(now))) {
          sum.requests += c.requests;
          sum.kvBlocks += c.kvBlocks;
        }
      }
      return sum;
    },
  };
}
