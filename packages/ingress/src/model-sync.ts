// One @sluice/core `GlobalInflightView` per model (policies, and so limits, are per model), kept in
// step with the single `IngressState` stream: every published snapshot advances every model's seq
// together, so a peer's `acked_seqs` entry means the same publication in every view. A view created
// later is fast-forwarded to the current seq (it had no admissions before, which is what its history
// then says).
//
// Per-tenant limits ride on the same stream: a tenant with a `max_inflight` gets its own view per
// model (admissions counted in one bucket, no KV), published as `tenant_inflight` entries and
// advanced with the same seq, so acks, mirrors, liveness and the fail mode work for tenants exactly as
// for models. A view created after peers were heard is fed each live peer's last message at once, so
// it does not believe it is alone until their next heartbeat.

import { create } from "@bufbuild/protobuf";
import {
  createGlobalInflightView,
  type GlobalInflightView,
  type IngressStateSnapshot,
  type SyncedLoad,
} from "@sluice/core";
import {
  ClassInflightSchema,
  type IngressState,
  IngressStateSchema,
  TenantInflightSchema,
} from "@sluice/proto";

/** The single bucket a tenant view counts in (tenant views carry requests only, no KV blocks). */
export const TENANT_BUCKET = "requests";

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
  /**
   * One tenant's view within a model (created on first use); count its admissions as
   * `admitted(TENANT_BUCKET, 0)`. Only tenants with a per-tenant limit should get one.
   */
  tenantView(model: string, tenant: string): GlobalInflightView;
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
  /**
   * False while any model decides on its fail mode: bus down, or a leased peer not heard from (yet,
   * or for longer than the snapshot age).
   */
  globalStateAvailable(nowMs: number): boolean;
}

export function createModelSync(options: ModelSyncOptions): ModelSync {
  const views = new Map<string, GlobalInflightView>();
  const tenantViews = new Map<string, { model: string; tenant: string; view: GlobalInflightView }>();
  // Each peer's last message and when it arrived, replayed into views created later.
  const lastStates = new Map<string, { state: IngressState; atMs: number }>();
  let seq = 0;
  let leased: ReadonlySet<string> = new Set();
  let leasedAtMs = 0;
  let busConnected = true;
  // Peers seen on the bus with their last receive time (liveness for metrics, across models).
  const heardAt = new Map<string, number>();
  const lastLoadSignature = new Map<string, string>();

  const newView = (apply: (v: GlobalInflightView, state: IngressState, atMs: number) => void) => {
    const v = createGlobalInflightView({
      instanceId: options.instanceId,
      maxSnapshotAgeMs: options.maxSnapshotAgeMs,
    });
    for (let i = 0; i < seq; i++) v.snapshot(0);
    v.setLeasedPeers(leased, leasedAtMs);
    v.setBusConnected(busConnected);
    for (const { state, atMs } of lastStates.values()) {
      try {
        apply(v, state, atMs);
      } catch {
        // Already applied once to the other views, so it was valid; nothing to lose here.
      }
    }
    return v;
  };

  const applyModel = (model: string, v: GlobalInflightView, state: IngressState, now: number) => {
    const requests: Record<string, number> = {};
    const kv: Record<string, number> = {};
    for (const c of state.inflight) {
      if (c.model !== model) continue;
      requests[c.requestClass] = (requests[c.requestClass] ?? 0) + c.inflightRequests;
      kv[c.requestClass] = (kv[c.requestClass] ?? 0) + c.inflightKvBlocks;
    }
    return v.receive(snapshotOf(state, requests, kv), now);
  };

  const applyTenant = (
    model: string,
    tenant: string,
    v: GlobalInflightView,
    state: IngressState,
    now: number,
  ) => {
    let n = 0;
    for (const t of state.tenantInflight)
      if (t.model === model && t.tenant === tenant) n += t.inflightRequests;
    return v.receive(snapshotOf(state, n > 0 ? { [TENANT_BUCKET]: n } : {}, {}), now);
  };

  const view = (model: string): GlobalInflightView => {
    let v = views.get(model);
    if (v === undefined) {
      v = newView((fresh, state, atMs) => applyModel(model, fresh, state, atMs));
      views.set(model, v);
    }
    return v;
  };

  const tenantKey = (model: string, tenant: string) => `${model}\u0000${tenant}`;
  const tenantView = (model: string, tenant: string): GlobalInflightView => {
    const key = tenantKey(model, tenant);
    let entry = tenantViews.get(key);
    if (entry === undefined) {
      const v = newView((fresh, state, atMs) => applyTenant(model, tenant, fresh, state, atMs));
      entry = { model, tenant, view: v };
      tenantViews.set(key, entry);
    }
    return entry.view;
  };

  const live = (now: number) =>
    [...heardAt]
      .filter(([id, at]) => leased.has(id) && now - at <= options.maxSnapshotAgeMs)
      .map(([id]) => id);

  return {
    instanceId: options.instanceId,
    view,
    load: (model, now) => view(model).load(now),
    tenantView,
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
      const tenantInflight = [];
      for (const { model, tenant, view: v } of tenantViews.values()) {
        const s = v.snapshot(now);
        for (const [id, peerSeq] of Object.entries(s.ackedSeqs))
          acked[id] = Math.max(acked[id] ?? 0, peerSeq);
        const requests = s.inflightByClass[TENANT_BUCKET] ?? 0;
        if (requests > 0) {
          tenantInflight.push(create(TenantInflightSchema, { model, tenant, inflightRequests: requests }));
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
        tenantInflight,
      });
    },
    receive(state, now) {
      if (state.instanceId === options.instanceId) return { applied: false, changed: false };
      for (const c of state.inflight) view(c.model);
      for (const t of state.tenantInflight) tenantView(t.model, t.tenant);
      let applied = false;
      for (const [model, v] of views) {
        if (applyModel(model, v, state, now) === "applied") applied = true;
      }
      for (const { model, tenant, view: v } of tenantViews.values()) {
        if (applyTenant(model, tenant, v, state, now) === "applied") applied = true;
      }
      if (applied || (views.size === 0 && tenantViews.size === 0)) {
        heardAt.set(state.instanceId, now);
        lastStates.set(state.instanceId, { state, atMs: now });
      }
      const signature = [
        ...state.inflight.map(
          (c) => `${c.model}\u0000${c.requestClass}\u0000${c.inflightRequests}\u0000${c.inflightKvBlocks}`,
        ),
        ...state.tenantInflight.map((t) => `t\u0000${t.model}\u0000${t.tenant}\u0000${t.inflightRequests}`),
      ].join("\u0001");
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
      for (const id of lastStates.keys()) if (!ids.has(id)) lastStates.delete(id);
      for (const v of views.values()) v.setLeasedPeers(ids, now);
      for (const { view: v } of tenantViews.values()) v.setLeasedPeers(ids, now);
    },
    setBusConnected(connected) {
      busConnected = connected;
      for (const v of views.values()) v.setBusConnected(connected);
      for (const { view: v } of tenantViews.values()) v.setBusConnected(connected);
    },
    refresh(now) {
      for (const v of views.values()) v.load(now);
      for (const { view: v } of tenantViews.values()) v.load(now);
    },
    livePeers: live,
    maxPeerAgeMs(now) {
      let age = 0;
      for (const id of live(now)) age = Math.max(age, now - (heardAt.get(id) ?? now));
      return age;
    },
    globalStateAvailable(now) {
      for (const v of views.values()) if (!v.load(now).globalStateAvailable) return false;
      return busConnected;
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

// Decoded once per message: every view's snapshot of it shares the object (core only reads it).
const ackedCache = new WeakMap<IngressState, Record<string, number>>();

function snapshotOf(
  state: IngressState,
  inflightByClass: Record<string, number>,
  kvBlocksByClass: Record<string, number>,
): IngressStateSnapshot {
  let ackedSeqs = ackedCache.get(state);
  if (ackedSeqs === undefined) {
    ackedSeqs = {};
    for (const [id, acked] of Object.entries(state.ackedSeqs)) ackedSeqs[id] = Number(acked);
    ackedCache.set(state, ackedSeqs);
  }
  return {
    instanceId: state.instanceId,
    seq: Number(state.seq),
    atMs: state.timestampMs,
    inflightByClass,
    kvBlocksByClass,
    ackedSeqs,
  };
}
