// The aggregator's picture of the cluster, fed from etcd (engine registrations) and NATS (engine
// load, ingress in-flight state, router sync). Every instance keeps it up to date, leader or
// standby, so a standby that wins the election publishes a warm view at once instead of waiting a
// heartbeat for every engine.

import {
  aggregateClusterLoad,
  type ClusterAggregateOptions,
  createWorkerLoad,
  type EngineCapacity,
  type IngressInflight,
  type ModelLoadView,
  type ObservedEngineLoad,
  type PredictedWorkerLoad,
  type RouterSyncDelta,
  type WorkerLoad,
} from "@sluice/core";
import {
  EngineLoadSchema,
  EngineRegistrationSchema,
  IngressStateSchema,
  RouterSyncSchema,
} from "@sluice/proto";
import {
  createRouterSyncGate,
  type Logger,
  protoCodec,
  protoJsonCodec,
  type RouterSyncFate,
  type RouterSyncGateOptions,
  type RouterSyncRefusal,
  type SyncWorkerCapacity,
} from "@sluice/runtime";

/** `held`: a router.sync delta waiting for its replica's etcd registration (router-sync-gate). */
export type IngestOutcome = "applied" | "malformed" | "held" | RouterSyncRefusal;

/** How router.sync deltas are gated (@sluice/runtime router-sync-gate). */
export interface RouterSyncIntake
  extends Pick<
    RouterSyncGateOptions<unknown>,
    "registrationWaitMs" | "departedKeepMs" | "maxHeldPerReplica" | "maxHeldReplicas" | "warnIntervalMs"
  > {
  /** The outcome of a delta decided after `applyRouterSync` returned `held` (metrics). */
  onLateOutcome?(outcome: IngestOutcome): void;
  readonly logger?: Logger;
  /** Clock of the registration wait. Default `Date.now`. */
  readonly nowMs?: () => number;
}

export interface ClusterState {
  /** `engines/{worker}` put: its value is proto3 JSON of `EngineRegistration`. */
  putEngine(workerId: string, json: Uint8Array): IngestOutcome;
  deleteEngine(workerId: string): void;
  /** An `EngineLoad` from `engine.{worker}.load`, received at `nowMs`. */
  observeLoad(workerId: string, data: Uint8Array, nowMs: number): IngestOutcome;
  /** An `IngressState` from `ingress.state`, received at `nowMs`. */
  observeIngress(data: Uint8Array, nowMs: number): IngestOutcome;
  /**
   * A `RouterSync` delta from `router.sync`: applied only from a router replica registered in etcd
   * (`routerRegistered`; an unknown one's deltas are `held` briefly for its registration) and only
   * if an add fits on a registered engine.
   */
  applyRouterSync(data: Uint8Array): IngestOutcome;
  /** `instances/router/{id}` is in etcd: the replica's deltas are accepted (held ones apply now). */
  routerRegistered(replicaId: string): void;
  routerDeregistered(replicaId: string): void;
  /** Refuses held deltas whose replica never registered. Call about once a second. */
  sweepRouterSync(): void;
  view(nowMs: number): ModelLoadView[];
  readonly engineCount: number;
  readonly routersSeen: boolean;
}

const engineLoadCodec = protoCodec(EngineLoadSchema);
const routerSyncCodec = protoCodec(RouterSyncSchema);
const registrationCodec = protoJsonCodec(EngineRegistrationSchema);
const ingressStateCodec = protoCodec(IngressStateSchema);
/** An ingress silent for this many of its heartbeats is dead or partitioned (DESIGN §4 uses the same bound). */
const INGRESS_STALE_HEARTBEATS = 3;

/** Observations of unregistered workers are kept this many stale periods for a late registration. */
const UNREGISTERED_KEEP_STALE_PERIODS = 10;

/**
 * @param optionsFor per-model options (class shares and KV overcommit from the model's live policy);
 *   default: `options` for every model. Staleness always comes from `options`.
 */
export function createClusterState(
  options: ClusterAggregateOptions,
  instanceId: string,
  optionsFor: (model: string) => ClusterAggregateOptions = () => options,
  syncIntake: RouterSyncIntake = {},
): ClusterState {
  const engines = new Map<string, EngineCapacity>();
  /** Block size of each registered engine: with kv_total_blocks it bounds a router.sync add. */
  const blockSizes = new Map<string, number>();
  const observed = new Map<string, ObservedEngineLoad>();
  // The router's own prediction model, fed only with peers' deltas: the aggregator is a passive replica.
  const workerLoad: WorkerLoad = createWorkerLoad({ replicaId: `aggregator-${instanceId}` });
  let lastExpireMs = Number.NEGATIVE_INFINITY;
  const ingresses = new Map<string, IngressInflight>();
  let routersSeen = false;

  const capacityOf = (workerId: string): SyncWorkerCapacity | undefined => {
    const engine = engines.get(workerId);
    return engine === undefined
      ? undefined
      : { kvTotalBlocks: engine.kvTotalBlocks, blockSize: blockSizes.get(workerId) ?? 0 };
  };
  /** The outcome of the delta being received, when the gate decides at once. */
  let immediate: IngestOutcome | undefined;
  let receiving = false;
  const fateOutcome = (fate: RouterSyncFate<unknown>): IngestOutcome =>
    fate.kind === "refused" ? fate.reason : fate.kind;
  const gate = createRouterSyncGate<void>({
    registrationWaitMs: syncIntake.registrationWaitMs,
    departedKeepMs: syncIntake.departedKeepMs,
    maxHeldPerReplica: syncIntake.maxHeldPerReplica,
    maxHeldReplicas: syncIntake.maxHeldReplicas,
    warnIntervalMs: syncIntake.warnIntervalMs,
    logger: syncIntake.logger,
    nowMs: syncIntake.nowMs,
    apply(delta) {
      workerLoad.applySync(delta); // throws RouterInputError on a field out of range: malformed
      routersSeen = true;
    },
    onFate(_delta, fate) {
      const outcome = fateOutcome(fate);
      if (receiving) immediate = outcome;
      else syncIntake.onLateOutcome?.(outcome);
    },
    capacityOf,
    largestCapacity() {
      let largest: SyncWorkerCapacity | undefined;
      for (const workerId of engines.keys()) {
        const c = capacityOf(workerId) as SyncWorkerCapacity;
        largest = {
          kvTotalBlocks: Math.max(largest?.kvTotalBlocks ?? 0, c.kvTotalBlocks),
          blockSize: Math.max(largest?.blockSize ?? 0, c.blockSize),
        };
      }
      return largest;
    },
  });

  return {
    putEngine(workerId, json) {
      const decoded = registrationCodec.tryDecode(json);
      if (!decoded.ok) return "malformed";
      const r = decoded.value;
      if ((r.workerId !== "" && r.workerId !== workerId) || r.model === "") return "malformed";
      engines.set(workerId, {
        workerId,
        model: r.model,
        kvTotalBlocks: r.kvTotalBlocks,
        maxNumSeqs: r.maxNumSeqs,
      });
      blockSizes.set(workerId, r.blockSize);
      return "applied";
    },
    deleteEngine(workerId) {
      engines.delete(workerId);
      blockSizes.delete(workerId);
      observed.delete(workerId);
      workerLoad.removeWorker(workerId);
    },
    observeLoad(workerId, data, nowMs) {
      const decoded = engineLoadCodec.tryDecode(data);
      if (!decoded.ok) return "malformed";
      const load = decoded.value;
      if (load.workerId !== "" && load.workerId !== workerId) return "malformed";
      // The latest message wins: NATS keeps one publisher's order, and an engine restart resets seq.
      observed.set(workerId, {
        waiting: load.waiting,
        running: load.running,
        kvUsedBlocks: load.kvUsedBlocks,
        pendingPrefillTokens: load.pendingPrefillTokens,
        prefillTokensPerS: load.prefillTokensPerS,
        receivedAtMs: nowMs,
      });
      return "applied";
    },
    observeIngress(data, nowMs) {
      const decoded = ingressStateCodec.tryDecode(data);
      if (!decoded.ok || decoded.value.instanceId === "") return "malformed";
      const st = decoded.value;
      const perModel = new Map<string, { model: string; requests: number; kvBlocks: number }>();
      for (const c of st.inflight) {
        const m = perModel.get(c.model) ?? { model: c.model, requests: 0, kvBlocks: 0 };
        m.requests += c.inflightRequests;
        m.kvBlocks += c.inflightKvBlocks;
        perModel.set(c.model, m);
      }
      ingresses.set(st.instanceId, {
        instanceId: st.instanceId,
        receivedAtMs: nowMs,
        staleAfterMs:
          st.heartbeatIntervalMs > 0
            ? st.heartbeatIntervalMs * INGRESS_STALE_HEARTBEATS
            : options.staleAfterMs,
        models: [...perModel.values()],
      });
      return "applied";
    },
    applyRouterSync(data) {
      const decoded = routerSyncCodec.tryDecode(data);
      if (!decoded.ok) return "malformed";
      immediate = undefined;
      receiving = true;
      let verdict: ReturnType<typeof gate.receive>;
      try {
        verdict = gate.receive(decoded.value as unknown as RouterSyncDelta);
      } finally {
        receiving = false;
      }
      return verdict === "held" ? "held" : (immediate ?? "malformed");
    },
    routerRegistered: (replicaId) => gate.replicaRegistered(replicaId),
    routerDeregistered(replicaId) {
      gate.replicaDeregistered(replicaId);
      workerLoad.forgetReplica(replicaId);
    },
    sweepRouterSync: () => gate.sweep(),
    view(nowMs) {
      // Routers' predicted load comes from router.sync; what a lost notification left behind ages
      // out here as in the routers (WorkerLoad.expire), at most once a second.
      if (!(nowMs - lastExpireMs < 1_000)) {
        lastExpireMs = nowMs;
        workerLoad.expire(nowMs);
      }
      const keepMs = options.staleAfterMs * UNREGISTERED_KEEP_STALE_PERIODS;
      for (const [workerId, load] of observed) {
        if (!engines.has(workerId) && nowMs - load.receivedAtMs > keepMs) observed.delete(workerId);
      }
      for (const [id, ingress] of ingresses) {
        if (nowMs - ingress.receivedAtMs > ingress.staleAfterMs) ingresses.delete(id);
      }
      const predicted = new Map<string, PredictedWorkerLoad>();
      if (routersSeen) {
        for (const workerId of engines.keys()) {
          const l = workerLoad.load(workerId);
          predicted.set(workerId, {
            activeBlocks: l.predictedActiveBlocks,
            pendingPrefillTokens: l.predictedPendingPrefillTokens,
            requests: l.predictedRequests,
          });
        }
      }
      // One aggregation per model, each with its own policy's shares (the core takes one option set).
      const byModel = new Map<string, EngineCapacity[]>();
      for (const e of engines.values()) {
        const list = byModel.get(e.model);
        if (list === undefined) byModel.set(e.model, [e]);
        else list.push(e);
      }
      const views: ModelLoadView[] = [];
      for (const model of [...byModel.keys()].sort()) {
        views.push(
          ...aggregateClusterLoad(
            { engines: byModel.get(model)!, observed, predicted, ingress: ingresses.values(), nowMs },
            { ...optionsFor(model), staleAfterMs: options.staleAfterMs },
          ),
        );
      }
      return views;
    },
    get engineCount() {
      return engines.size;
    },
    get routersSeen() {
      return routersSeen;
    },
  };
}
