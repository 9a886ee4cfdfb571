import type { CounterMetric, GaugeMetric, HistogramMetric, Metrics } from "@sluice/runtime";

export type SnapshotKind = "engine_load" | "ingress_state" | "router_sync" | "engine_registration";

export interface AggregatorMetrics {
  /** 1 while this instance leads (and publishes), else 0. */
  readonly leader: GaugeMetric;
  readonly enginesTracked: GaugeMetric;
  readonly staleEngines: GaugeMetric;
  /** First unpublished input change → `cluster.load` published. */
  readonly publishLag: HistogramMetric;
  readonly published: CounterMetric;
  readonly snapshotsReceived: CounterMetric;
  readonly snapshotsDropped: CounterMetric;
  readonly leadershipChanges: CounterMetric;
}

export function createAggregatorMetrics(metrics: Metrics): AggregatorMetrics {
  return {
    leader: metrics.gauge({
      name: "sluice_aggregator_leader",
      help: "1 while this aggregator instance is the elected leader and publishes cluster.load",
    }),
    enginesTracked: metrics.gauge({
      name: "sluice_aggregator_engines_tracked",
      help: "Engines with a live etcd registration in this aggregator's view",
    }),
    staleEngines: metrics.gauge({
      name: "sluice_aggregator_stale_engines",
      help: "Registered engines whose latest load snapshot is missing or older than --stale-after",
    }),
    publishLag: metrics.histogram({
      name: "sluice_aggregator_publish_lag_seconds",
      help: "Time from the first unpublished input change to the cluster.load publish that reflects it",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1],
    }),
    published: metrics.counter({
      name: "sluice_aggregator_cluster_load_published_total",
      help: "cluster.load messages published, by trigger (change or heartbeat)",
      labelNames: ["trigger"],
    }),
    snapshotsReceived: metrics.counter({
      name: "sluice_aggregator_snapshots_received_total",
      help: "Input messages received, by kind",
      labelNames: ["kind"],
    }),
    snapshotsDropped: metrics.counter({
      name: "sluice_aggregator_snapshots_dropped_total",
      help: "Input messages dropped, by kind and reason (malformed; router.sync also unregistered_replica, absurd_value)",
      labelNames: ["kind", "reason"],
    }),
    leadershipChanges: metrics.counter({
      name: "sluice_aggregator_leadership_changes_total",
      help: "Times this instance gained or lost leadership, by change",
      labelNames: ["change"],
    }),
  };
}
