// The ingress's Prometheus series, through the runtime's small `Metrics` seam.

import type { Metrics } from "@sluice/runtime";

export interface IngressMetrics {
  admitted(model: string, requestClass: string): void;
  rejected(model: string, requestClass: string, reason: string): void;
  httpError(status: number, code: string): void;
  terminal(outcome: string): void;
  decisionSeconds(seconds: number): void;
  inflight(scope: "local" | "global", requests: number, kvBlocks: number): void;
  sync(peers: number, lagSeconds: number, synced: boolean): void;
  /** A peer's `ingress.state` snapshot was applied here, `seconds` after the peer sent it. */
  syncPropagation(seconds: number): void;
  /** A change-driven `ingress.state` snapshot was sent, `seconds` after the first change it carries. */
  syncPublishDelay(seconds: number): void;
  droppedMessage(kind: string): void;
  /** An engine chosen locally because no router could place the request. */
  routeFallback(reason: string): void;
  /** A request sent again on a new connection after its pooled one turned out closed (never reached the engine). */
  staleConnectionRetry(): void;
  /** A MarkPrefillDone or Release to the router that failed (the router's load is then stale). */
  routerNotifyFailed(method: string): void;
  /** One Envoy ShouldRateLimit call answered: `ok`, `over_limit`, `invalid_argument` or `internal`. */
  rlsCall(code: string): void;
  /** Slots currently held for Envoy rate limit admissions (released when their hold time ends). */
  rlsHeldSlots(slots: number): void;
}

const DECISION_BUCKETS_S = [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2];
/** Fine from 0.25 to 10 ms, where the propagation target (p99 < 10 ms on loopback) is judged. */
const SYNC_LATENCY_BUCKETS_S = [
  2.5e-4, 5e-4, 7.5e-4, 1e-3, 1.5e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3, 7e-3, 8e-3, 1e-2, 1.5e-2, 2e-2, 3e-2,
  5e-2, 0.1, 0.25, 1,
];

export function createIngressMetrics(metrics: Metrics): IngressMetrics {
  const admitted = metrics.counter({
    name: "sluice_ingress_admitted_total",
    help: "Requests admitted by the L1 decision.",
    labelNames: ["model", "class"],
  });
  const rejected = metrics.counter({
    name: "sluice_ingress_rejected_total",
    help: "Requests rejected by the L1 decision, by reason.",
    labelNames: ["model", "class", "reason"],
  });
  const httpErrors = metrics.counter({
    name: "sluice_ingress_http_errors_total",
    help: "Error responses other than L1 rejections (400, 404, 413, 502, 503, 504), by error code.",
    labelNames: ["status", "code"],
  });
  const terminal = metrics.counter({
    name: "sluice_ingress_requests_finished_total",
    help: "Admitted requests by terminal outcome; admitted = completed + failed + cancelled.",
    labelNames: ["outcome"],
  });
  const decision = metrics.histogram({
    name: "sluice_ingress_decision_seconds",
    help: "Time of one L1 decision.",
    buckets: DECISION_BUCKETS_S,
  });
  const inflightRequests = metrics.gauge({
    name: "sluice_ingress_inflight_requests",
    help: "Admitted, unfinished requests: this instance (local) and all live instances as seen here (global).",
    labelNames: ["scope"],
  });
  const inflightKv = metrics.gauge({
    name: "sluice_ingress_inflight_kv_blocks",
    help: "KV blocks charged to admitted, unfinished requests, local and global.",
    labelNames: ["scope"],
  });
  const peers = metrics.gauge({ name: "sluice_ingress_peers", help: "Live peer ingress instances." });
  const lag = metrics.gauge({
    name: "sluice_ingress_sync_lag_seconds",
    help: "Age of the oldest live peer snapshot.",
  });
  const propagation = metrics.histogram({
    name: "sluice_ingress_sync_propagation_seconds",
    help: "Peer ingress.state snapshots applied here: time from the peer's send timestamp to applied (one host's clock on loopback; across hosts it includes their clock offset).",
    buckets: SYNC_LATENCY_BUCKETS_S,
  });
  const publishDelay = metrics.histogram({
    name: "sluice_ingress_sync_publish_delay_seconds",
    help: "Change-driven ingress.state snapshots sent by this instance: time from the first change a snapshot carries to its send (debounce and event-loop delay).",
    buckets: SYNC_LATENCY_BUCKETS_S,
  });
  const synced = metrics.gauge({
    name: "sluice_ingress_synced",
    help: "1 while the global view is whole (NATS connected, every leased peer heard from recently), 0 while the fail mode applies.",
  });
  const dropped = metrics.counter({
    name: "sluice_ingress_dropped_messages_total",
    help: "Malformed NATS messages or etcd values dropped.",
    labelNames: ["kind"],
  });
  const staleRetries = metrics.counter({
    name: "sluice_ingress_stale_connection_retries_total",
    help: "Requests sent again, once, on a new connection because the pooled keep-alive connection to the engine had just been closed by the other side (the request never reached it).",
  });
  const fallbacks = metrics.counter({
    name: "sluice_ingress_route_fallbacks_total",
    help: "Requests whose engine was chosen locally (least in flight) instead of by a router, by reason.",
    labelNames: ["reason"],
  });
  const notifyFailures = metrics.counter({
    name: "sluice_ingress_router_notify_failures_total",
    help: "MarkPrefillDone / Release calls to the router that failed.",
    labelNames: ["method"],
  });
  const rlsCalls = metrics.counter({
    name: "sluice_ingress_rls_calls_total",
    help: "Envoy ShouldRateLimit calls by answer (ok, over_limit, invalid_argument, internal).",
    labelNames: ["code"],
  });
  const rlsHeld = metrics.gauge({
    name: "sluice_ingress_rls_held_slots",
    help: "Slots held for Envoy rate limit admissions until their hold time (--rls-slot-hold) ends.",
  });
  return {
    rlsCall: (code) => rlsCalls.inc(1, { code }),
    rlsHeldSlots: (slots) => rlsHeld.set(slots),
    routeFallback: (reason) => fallbacks.inc(1, { reason }),
    staleConnectionRetry: () => staleRetries.inc(),
    routerNotifyFailed: (method) => notifyFailures.inc(1, { method }),
    admitted: (model, requestClass) => admitted.inc(1, { model, class: requestClass }),
    rejected: (model, requestClass, reason) => rejected.inc(1, { model, class: requestClass, reason }),
    httpError: (status, code) => httpErrors.inc(1, { status, code }),
    terminal: (outcome) => terminal.inc(1, { outcome }),
    decisionSeconds: (s) => decision.observe(s),
    inflight(scope, requests, kvBlocks) {
      inflightRequests.set(requests, { scope });
      inflightKv.set(kvBlocks, { scope });
    },
    sync(peerCount, lagSeconds, isSynced) {
      peers.set(peerCount);
      lag.set(lagSeconds);
      synced.set(isSynced ? 1 : 0);
    },
    syncPropagation: (s) => propagation.observe(s),
    syncPublishDelay: (s) => publishDelay.observe(s),
    droppedMessage: (kind) => dropped.inc(1, { kind }),
  };
}
