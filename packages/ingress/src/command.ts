// `sluice ingress`: the process. Shell (config, logs, admin server, shutdown) → shared state (the
// runtime's NATS client and etcd session, both coming up in the background) → live views (engines,
// peers, policies) → admission controller → HTTP proxy. It serves at once and rides through NATS and
// etcd outages (DESIGN §9): publishes are dropped while NATS is down and the admission turns
// fail-static; the registration is re-written under a new lease after lease loss.

import { hostname } from "node:os";
import { type ResolvedPolicy, withPolicyDefaults } from "@sluice/core";
import { Admission, grpcServiceDefinition, RateLimitService } from "@sluice/proto";
import {
  createEtcdSession,
  createNatsClient,
  createPolicyReporting,
  type GrpcServer,
  type LaunchOptions,
  launchProcessShell,
  leaseTtlSecOf,
  type ProcessShell,
  runUntilExit,
  startGrpcServer,
  subjects,
} from "@sluice/runtime";
import { createAdmissionController } from "./admission-controller.js";
import { createAdmissionService } from "./admission-service.js";
import { createClusterLoadView } from "./cluster-load-view.js";
import { ingressSchema } from "./config.js";
import { type NatsEventSink, natsEventSink } from "./decision-events.js";
import { type EngineEntry, parseEngineRegistration } from "./engine-registry.js";
import { leastInflightSelector } from "./engine-selector.js";
import { createEnvoyRlsService, type EnvoyRlsService } from "./envoy-rls-service.js";
import { createInflightLedger, type InflightLedger } from "./inflight-ledger.js";
import { createIngressMetrics } from "./ingress-metrics.js";
import { startIngressPolicies } from "./ingress-policies.js";
import { createModelSync, type ModelSync } from "./model-sync.js";
import { startParsedPrefixView } from "./parsed-prefix-view.js";
import { type ProxyServer, startProxyServer } from "./proxy-server.js";
import { parseRouterTarget, type RouterSelector, routerSelector } from "./router-selector.js";
import { createStateSync } from "./state-sync.js";

const SUMMARY = "L1 admission proxy: OpenAI-compatible HTTP front with global in-flight limits";
const VERSION = "0.1.0";
/** How often gauges (global view, peers, sync lag) are refreshed. */
const GAUGE_REFRESH_MS = 250;
/** A peer silent for this many of our heartbeat periods leaves the view. */
const STALE_HEARTBEATS = 3;
/**
 * How long start-up waits for the first etcd snapshots (engines, peers, policies) before serving
 * anyway: long enough that a healthy cluster is never served half-known, short enough that an etcd
 * outage does not keep the ingress down (it serves on its flags meanwhile).
 */
const STARTUP_SNAPSHOT_WAIT_MS = 3_000;

export interface IngressCommand {
  readonly name: "ingress";
  readonly summary: string;
  run(argv: string[], env?: Readonly<Record<string, string | undefined>>): Promise<number>;
}

export type LaunchIngressOptions = LaunchOptions;

/** A started ingress (in this Node process). */
export interface LaunchedIngress {
  readonly url: string;
  readonly adminUrl: string;
  readonly instanceId: string;
  readonly ledger: InflightLedger;
  readonly sync: ModelSync;
  readonly proxy: ProxyServer;
  /** `host:port` of the gRPC server (sluice.v1.Admission and Envoy's RateLimitService). */
  readonly grpcTarget: string;
  /** Envoy rate limit service (its held slots). */
  readonly rls: EnvoyRlsService;
  /** Graceful shutdown (as on SIGTERM); resolves with the exit code. */
  stop(reason?: string): Promise<number>;
  readonly exited: Promise<number>;
}

type Config = ProcessShell<typeof ingressSchema>["config"];

function advertisedUrl(config: Config, boundUrl: string, port: number): string {
  if (config.advertiseUrl !== "") return config.advertiseUrl.replace(/\/+$/, "");
  if (config.host === "0.0.0.0" || config.host === "::") return `http://${hostname()}:${port}`;
  return boundUrl;
}

export async function launchIngress(options: LaunchIngressOptions): Promise<LaunchedIngress | number> {
  const launched = await launchProcessShell({
    role: "ingress",
    schema: ingressSchema,
    summary: SUMMARY,
    version: VERSION,
    options,
  });
  if (typeof launched === "number") return launched;
  const { shell, exited } = launched;

  const { config, logger, shutdown, readiness } = shell;
  const nowMs = () => performance.now();
  const metrics = createIngressMetrics(shell.metrics);
  const subjectPrefix = `sluice.v1.${config.namespace}`;
  const names = subjects(config.namespace);
  const nats = createNatsClient({
    servers: config.natsUrl,
    ...shell.security.nats, // NATS auth/TLS (issue 9 §4)
    name: `ingress-${config.id}`,
    logger: logger.child({ component: "nats" }),
  });
  const etcd = createEtcdSession({
    endpoints: config.etcdEndpoints,
    prefix: config.etcdPrefix,
    // etcd grants at least ~2 s whatever is asked, and the session needs whole seconds >= 2.
    leaseTtlSec: leaseTtlSecOf(config.leaseTtlMs),
    security: shell.security.etcd, // etcd auth/TLS (issue 9 §4)
    logger: logger.child({ component: "etcd" }),
  });
  const closeAll: (() => Promise<void> | void)[] = [];
  /** etcd watches: closed before the session, so none retries against a closed client. */
  const closeWatches: (() => Promise<void>)[] = [];
  const abortStart = async (error: unknown): Promise<number> => {
    logger.error({ err: error }, "cannot start the ingress");
    for (const close of closeAll) await Promise.resolve(close()).catch(() => {});
    await Promise.allSettled(closeWatches.map((close) => close()));
    await Promise.allSettled([etcd.close(), nats.close()]);
    await shutdown.shutdown("start-up failed");
    return 1;
  };

  const sync = createModelSync({
    instanceId: config.id,
    maxSnapshotAgeMs: STALE_HEARTBEATS * config.stateHeartbeatMs,
  });
  let stateSync: ReturnType<typeof createStateSync> | undefined;
  const ledger = createInflightLedger({ nowMs, onChange: () => stateSync?.markChanged() });
  let fallbackPolicy: ResolvedPolicy;
  try {
    fallbackPolicy = withPolicyDefaults({
      ingress: { maxInflight: config.maxInflight, kvOvercommit: config.kvOvercommit },
    });
  } catch (error) {
    (options.stderr ?? process.stderr).write(`sluice ingress: ${(error as Error).message}\n`);
    await Promise.allSettled([etcd.close(), nats.close()]);
    await shutdown.shutdown("invalid configuration");
    return 2;
  }
  sync.setBusConnected(false);

  let proxy: ProxyServer;
  let grpc: GrpcServer;
  let selector: RouterSelector;
  let rls: EnvoyRlsService;
  let eventSink: NatsEventSink | undefined;
  try {
    const engineView = startParsedPrefixView<EngineEntry>({
      client: etcd.client,
      prefix: etcd.keys.engines,
      parse: parseEngineRegistration,
      logger: logger.child({ component: "engines" }),
    });
    closeWatches.push(() => engineView.close());
    // Peer membership: ingress instances whose lease is alive.
    const peersPrefix = etcd.keys.instances("ingress");
    const instanceView = startParsedPrefixView<true>({
      client: etcd.client,
      prefix: peersPrefix,
      parse: () => true,
      onChange: () => sync.setLeasedPeers(new Set(instanceView.entries.keys()), nowMs()),
      logger: logger.child({ component: "peers" }),
    });
    closeWatches.push(() => instanceView.close());
    // Live routers (their leases alive): the engine choice asks one of them when there is any.
    const routerView = startParsedPrefixView<string>({
      client: etcd.client,
      prefix: etcd.keys.instances("router"),
      parse: (_id, value) => parseRouterTarget(value),
      logger: logger.child({ component: "routers" }),
    });
    closeWatches.push(() => routerView.close());
    const reporting = createPolicyReporting({
      level: "ingress",
      instanceId: config.id,
      subjects: names,
      publish: (subject, data) => nats.publish(subject, data),
      metrics: shell.metrics,
      logger: logger.child({ component: "policy" }),
    });
    // Each decision reads the policy table afresh, so "applied" is in force at once: nothing to rebuild.
    const policies = startIngressPolicies({
      client: etcd.client,
      prefix: config.etcdPrefix,
      fallback: fallbackPolicy,
      logger: logger.child({ component: "policy" }),
      metrics: shell.metrics,
      onApplied: (change) => reporting.applied(change),
      onRejected: (rejection) => reporting.rejected(rejection),
    });
    closeWatches.push(() => policies.close());
    await Promise.allSettled(
      [engineView, instanceView, routerView, policies].map((view) =>
        view.ready(AbortSignal.timeout(STARTUP_SNAPSHOT_WAIT_MS)),
      ),
    ).then((results) => {
      if (results.some((r) => r.status === "rejected")) {
        logger.warn(
          { waitedMs: STARTUP_SNAPSHOT_WAIT_MS },
          "etcd has not answered yet; serving on the flags until it does",
        );
      }
    });
    const engines = { engines: () => engineView.entries.values() };
    // The aggregator's cluster view: L1's predicted-TTFT rule, without subscribing to every engine.
    const clusterLoad = createClusterLoadView();
    const offClusterLoad = nats.subscribe(`${subjectPrefix}.cluster.load`, (msg) => {
      try {
        clusterLoad.receive(msg.data, nowMs());
      } catch (error) {
        metrics.droppedMessage("cluster_load");
        logger.debug({ err: error }, "dropped a malformed cluster.load message");
      }
    });
    closeAll.push(offClusterLoad);

    const admission = createAdmissionController({
      ledger,
      sync,
      engines,
      policyFor: policies.policyFor,
      shadowFor: policies.shadowFor,
      onShadow: ({ request, comparison, enforcedRevision, shadowRevision }) =>
        reporting.shadow({
          requestId: request.requestId,
          requestClass: request.requestClass,
          model: request.model,
          comparison,
          enforcedRevision,
          shadowRevision,
        }),
      clusterPrediction: clusterLoad.predictionFor,
      nowMs,
    });
    stateSync = createStateSync({
      bus: nats,
      subject: `${subjectPrefix}.ingress.state`,
      sync,
      debounceMs: config.stateDebounceMs,
      heartbeatMs: config.stateHeartbeatMs,
      nowMs,
      onPeerApplied: (lagMs) => metrics.syncPropagation(lagMs / 1000),
      onPublished: (delayMs) => metrics.syncPublishDelay(delayMs / 1000),
      onDropped: (error) => {
        metrics.droppedMessage("ingress_state");
        logger.debug({ err: error }, "dropped a malformed ingress.state message");
      },
    });
    const publisher = stateSync;
    closeAll.push(() => publisher.close());
    // Called at once with the current state, then on every change.
    const offStatus = nats.onStatus((event) => {
      if (event.type === "connected" || event.type === "reconnected") {
        sync.setBusConnected(true);
        publisher.connected();
      } else if (event.type === "disconnected" || event.type === "reconnecting" || event.type === "closed") {
        sync.setBusConnected(false);
      }
    });
    closeAll.push(offStatus);

    const events = natsEventSink(
      () => nats,
      subjectPrefix,
      config.id,
      () => Date.now(),
    );
    eventSink = events;
    const admissionService = createAdmissionService({
      admission,
      policyFor: policies.policyFor,
      defaultMaxTokens: config.defaultMaxTokens,
      metrics,
      events,
    });
    rls = createEnvoyRlsService({
      admission,
      policyFor: policies.policyFor,
      defaultMaxTokens: config.defaultMaxTokens,
      trustClassHeader: config.trustClassHeader,
      slotHoldMs: config.rlsSlotHoldMs,
      metrics,
      events,
    });
    grpc = await startGrpcServer({
      host: config.grpcHost,
      port: config.grpcPort,
      services: [
        {
          definition: grpcServiceDefinition(Admission),
          implementation: admissionService.implementation,
        },
        {
          definition: grpcServiceDefinition(RateLimitService),
          implementation: rls.implementation,
        },
      ],
    });
    const grpcServer = grpc;
    closeAll.push(async () => {
      await grpcServer.shutdown(0);
    });
    const proxyLogger = logger.child({ component: "proxy" });
    selector = routerSelector({
      routers: () => [...routerView.entries.values()],
      fallback: leastInflightSelector(engines),
      engines,
      routeTimeoutMs: config.routeTimeoutMs,
      onFallback: (reason) => metrics.routeFallback(reason),
      onNotifyFailed: (method) => metrics.routerNotifyFailed(method),
      logger: proxyLogger,
    });
    const routing = selector;
    closeAll.push(() => routing.close());
    proxy = await startProxyServer({
      host: config.host,
      port: config.port,
      maxBodyBytes: config.maxBodyBytes,
      requestTimeoutMs: config.requestTimeoutMs,
      upstreamTimeoutMs: config.upstreamTimeoutMs,
      defaultMaxTokens: config.defaultMaxTokens,
      trustClassHeader: config.trustClassHeader,
      admission,
      selector,
      engines,
      policyFor: policies.policyFor,
      metrics,
      events,
      logger: proxyLogger,
    });
  } catch (error) {
    return abortStart(error);
  }

  const refresh = setInterval(() => {
    const now = nowMs();
    sync.refresh(now);
    const own = ledger.total();
    const global = sync.globalTotal(now);
    metrics.inflight("local", own.requests, own.kvBlocks);
    metrics.inflight("global", global.requests, global.kvBlocks);
    metrics.sync(
      sync.livePeers(now).length,
      sync.maxPeerAgeMs(now) / 1000,
      nats.isConnected && sync.globalStateAvailable(now),
    );
  }, GAUGE_REFRESH_MS);
  refresh.unref();

  const url = advertisedUrl(config, proxy.url, proxy.port);
  // Not awaited: written whenever etcd is reachable, and again under every new lease.
  etcd
    .register("ingress", config.id, {
      addresses: { http: url, admin: shell.admin.url, grpc: grpc.target },
      version: VERSION,
    })
    .catch((error: unknown) => {
      if (!etcd.isClosed) logger.error({ err: error }, "cannot register in etcd");
    });
  readiness.register("http-server", () => true);

  shutdown.register("stop-accepting", "http-server", () => proxy.stopAccepting());
  shutdown.register("drain", "grpc-server", async () => {
    await grpc.shutdown(Math.max(0, config.shutdownTimeoutMs - 250));
  });
  // Envoy-admitted slots have no request to wait for: they leave the count at once.
  shutdown.register("drain", "rls-slots", () => rls.releaseAll());
  shutdown.register("drain", "inflight", async ({ signal }) => {
    // Requests already admitted finish (or the bound aborts them); new connections are refused.
    while (ledger.total().requests > 0 && !signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    proxy.destroyAll();
  });
  shutdown.register("release", "etcd-lease", async () => {
    await Promise.allSettled(closeWatches.map((close) => close()));
    await etcd.close();
  });
  shutdown.register("close", "state-sync", async () => {
    clearInterval(refresh);
    for (const close of closeAll) await Promise.resolve(close()).catch(() => {});
  });
  // Queued decision events go out before the connection closes (they are batched for a few ms).
  shutdown.register("release", "decision-events", () => eventSink?.flush());
  shutdown.register("close", "nats", () => nats.close());
  logger.info({ url, admin: shell.admin.url, grpc: grpc.target }, "ingress listening");

  return {
    url,
    adminUrl: shell.admin.url,
    instanceId: config.id,
    ledger,
    sync,
    proxy,
    grpcTarget: grpc.target,
    rls,
    async stop(reason = "stop requested") {
      await shutdown.terminate(reason);
      return exited;
    },
    exited,
  };
}

export const ingressCommand: IngressCommand = {
  name: "ingress",
  summary: SUMMARY,
  async run(argv, env) {
    return runUntilExit(launchIngress({ argv, ...(env ? { env } : {}) }));
  },
};
