// Prometheus series of `sluice router` (through the runtime's small Metrics interface).
import type { PrefixIndexStats } from "@sluice/core";
import type { Metrics } from "@sluice/runtime";

const HOLD_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// The decision budget is 100 µs (DESIGN §1): buckets resolve around it.
const DECISION_BUCKETS_S = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1];
const LAG_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export type MessageSource = "kv" | "load" | "sync" | "dynamo_kv" | "dynamo_metrics" | "registration";

export interface RouterMetrics {
  decision(
    outcome: "routed" | "held" | "rejected",
    requestClass: string,
    decisionMs: number | undefined,
  ): void;
  rejected(reason: string, requestClass: string): void;
  holdEnded(requestClass: string, outcome: "routed" | "rejected" | "cancelled", heldMs: number): void;
  queueDepth(requestClass: string, depth: number): void;
  index(stats: PrefixIndexStats, registeredWorkers: number): void;
  kvEvent(outcome: "applied" | "duplicate" | "restart" | "gap" | "malformed"): void;
  /** `unregistered_replica` / `absurd_value`: refused by the sync gate (@sluice/runtime router-sync-gate). */
  syncDelta(
    outcome: "applied" | "duplicate" | "gap" | "malformed" | "unregistered_replica" | "absurd_value",
  ): void;
  malformed(source: MessageSource): void;
  /** Age of an engine load snapshot / peer sync delta at arrival. */
  lag(channel: "engine_load" | "sync", seconds: number): void;
}

export function createRouterMetrics(metrics: Metrics): RouterMetrics {
  const decisions = metrics.counter({
    name: "sluice_router_decisions_total",
    help: "Route decisions by outcome (held calls count once when held and once when answered).",
    labelNames: ["outcome", "class"],
  });
  const rejections = metrics.counter({
    name: "sluice_router_rejections_total",
    help: "Route calls answered with a rejection, by reason.",
    labelNames: ["reason", "class"],
  });
  const decisionSeconds = metrics.histogram({
    name: "sluice_router_route_decision_seconds",
    help: "Time of one synchronous Route decision (tokenize, hash, match, select), excluding hold time.",
    buckets: DECISION_BUCKETS_S,
  });
  const holdSeconds = metrics.histogram({
    name: "sluice_router_hold_seconds",
    help: "Time a call spent in the hold queue, by how the hold ended.",
    labelNames: ["class", "outcome"],
    buckets: HOLD_BUCKETS_S,
  });
  const queueDepth = metrics.gauge({
    name: "sluice_router_queue_depth",
    help: "Calls held in the hold queue, per class.",
    labelNames: ["class"],
  });
  const indexBlocks = metrics.gauge({
    name: "sluice_router_index_blocks",
    help: "Distinct KV block hashes in the prefix index.",
  });
  const indexWorkerBlocks = metrics.gauge({
    name: "sluice_router_index_worker_blocks",
    help: "(block, worker) pairs in the prefix index.",
  });
  const indexWorkers = metrics.gauge({
    name: "sluice_router_index_workers",
    help: "Workers with KV events in the prefix index.",
  });
  const staleWorkers = metrics.gauge({
    name: "sluice_router_index_stale_workers",
    help: "Workers whose index is stale after lost KV events (gap policy mark-stale).",
  });
  const workers = metrics.gauge({
    name: "sluice_router_workers",
    help: "Workers registered in etcd (engines/ and, with the Dynamo option, models/).",
  });
  const kvEvents = metrics.counter({
    name: "sluice_router_kv_events_total",
    help: "KV events received, by outcome (gap = events were lost and the gap policy applied).",
    labelNames: ["outcome"],
  });
  const syncDeltas = metrics.counter({
    name: "sluice_router_sync_deltas_total",
    help: "router.sync deltas of peer replicas, by outcome (refused: unregistered_replica, absurd_value).",
    labelNames: ["outcome"],
  });
  const malformed = metrics.counter({
    name: "sluice_router_malformed_messages_total",
    help: "Messages / registrations dropped because they could not be understood.",
    labelNames: ["source"],
  });
  const lag = metrics.histogram({
    name: "sluice_router_event_lag_seconds",
    help: "Age at arrival of engine load snapshots and peer sync deltas (publisher timestamp to now).",
    labelNames: ["channel"],
    buckets: LAG_BUCKETS_S,
  });

  return {
    decision(outcome, requestClass, decisionMs) {
      decisions.inc(1, { outcome, class: requestClass });
      if (decisionMs !== undefined) decisionSeconds.observe(decisionMs / 1000);
    },
    rejected: (reason, requestClass) => rejections.inc(1, { reason, class: requestClass }),
    holdEnded: (requestClass, outcome, heldMs) =>
      holdSeconds.observe(Math.max(0, heldMs) / 1000, { class: requestClass, outcome }),
    queueDepth: (requestClass, depth) => queueDepth.set(depth, { class: requestClass }),
    index(stats, registered) {
      indexBlocks.set(stats.blocks);
      indexWorkerBlocks.set(stats.workerBlocks);
      indexWorkers.set(stats.workers);
      staleWorkers.set(stats.staleWorkers);
      workers.set(registered);
    },
    kvEvent: (outcome) => kvEvents.inc(1, { outcome }),
    syncDelta: (outcome) => syncDeltas.inc(1, { outcome }),
    malformed: (source) => malformed.inc(1, { source }),
    lag: (channel, seconds) => lag.observe(Math.max(0, seconds), { channel }),
  };
}
