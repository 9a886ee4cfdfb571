// `sluice ingress`: the process. Shell (config, logs, admin server, shutdown) → shared state (NATS,
// etcd lease) → live views (engines, peers, policies) → admission controller → HTTP proxy.

import { hostname } from "node:os";
import { type ResolvedPolicy, withPolicyDefaults } from "@sluice/core";
import { Admission, grpcServiceDefinition } from "@sluice/proto";
import { type GrpcServer, type ProcessShell, startGrpcServer, startProcessShell } from "@sluice/runtime";
import type { DestinationStream } from "pino";
import { createAdmissionController } from "./admission-controller.js";
import { createAdmissionService } from "./admission-service.js";
import { ingressSchema } from "./config.js";
import { natsEventSink } from "./decision-events.js";
import { type EngineEntry, parseEngineRegistration } from "./engine-registry.js";
import { leastInflightSelector } from "./engine-selector.js";
import { type PrefixView, watchPrefixView } from "./etcd-prefix-view.js";
import { createInflightLedger, type InflightLedger } from "./inflight-ledger.js";
import { createIngressMetrics } from "./ingress-metrics.js";
import { createModelSync, type ModelSync } from "./model-sync.js";
import { watchEtcdPolicies } from "./policy-source.js";
import { type ProxyServer, startProxyServer } from "./proxy-server.js";
import { connectSharedState } from "./shared-state.js";
import { createStateSync } from "./state-sync.js";

const SUMMARY = "L1 admission proxy: OpenAI-compatible HTTP front with global in-flight limits";
const VERSION = "0.1.0";
/** How often gauges (global view, peers, sync lag) are refreshed. */
const GAUGE_REFRESH_MS = 250;
/** A peer silent for this many of our heartbeat periods leaves the view. */
const STALE_HEARTBEATS = 3;

export interface IngressCommand {
  readonly name: "ingress";
  readonly summary: string;
  run(argv: string[], env?: Readonly<Record<string, string | undefined>>): Promise<number>;
}

export interface LaunchIngressOptions {
  argv: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  stdout?: { write(text: string): unknown };
  stderr?: { write(text: string): unknown };
  logDestination?: DestinationStream;
}

/** A started ingress (in this Node process). */
export interface LaunchedIngress {
  readonly url: string;
  readonly adminUrl: string;
  readonly instanceId: string;
  readonly ledger: InflightLedger;
  readonly sync: ModelSync;
  readonly proxy: ProxyServer;
  /** `host:port` of the gRPC Admission server. */
  readonly grpcTarget: string;
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
  let exitCode: number | undefined;
  let resolveExited: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => {
    resolveExited = resolve;
  });
  const exit = ((code: number) => {
    exitCode ??= code;
    resolveExited(exitCode);
  }) as (code: number) => never;

  const shell = (await startProcessShell({
    role: "ingress",
    schema: ingressSchema,
    argv: options.argv,
    ...(options.env ? { env: options.env } : {}),
    command: "sluice ingress",
    summary: SUMMARY,
    version: VERSION,
    exit,
    ...(options.stdout ? { stdout: options.stdout } : {}),
    ...(options.stderr ? { stderr: options.stderr } : {}),
    ...(options.logDestination ? { logDestination: options.logDestination } : {}),
  })) as ProcessShell<typeof ingressSchema> | undefined;
  if (shell === undefined || exitCode !== undefined) return exitCode ?? 1;

  const { config, logger, shutdown, readiness } = shell;
  const nowMs = () => performance.now();
  const metrics = createIngressMetrics(shell.metrics);
  const subjectPrefix = `sluice.v1.${config.namespace}`;
  const shared = connectSharedState(
    { ...config, role: "ingress" },
    logger.child({ component: "shared-state" }),
  );
  const closeAll: (() => Promise<void> | void)[] = [];
  const abortStart = async (error: unknown): Promise<number> => {
    logger.error({ err: error }, "cannot start the ingress");
    for (const close of closeAll) await Promise.resolve(close()).catch(() => {});
    await Promise.allSettled([shared.releaseLease(), shared.closeNats()]);
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
    await shutdown.shutdown("invalid configuration");
    return 2;
  }
  shared.onNatsStatus((connected) => sync.setBusConnected(connected));
  sync.setBusConnected(false);

  let proxy: ProxyServer;
  let grpc: GrpcServer;
  try {
    const engineView = await watchPrefixView<EngineEntry>({
      etcd: shared.etcd,
      prefix: `${config.etcdPrefix}/engines/`,
      parse: parseEngineRegistration,
      logger: logger.child({ component: "engines" }),
    });
    closeAll.push(() => engineView.close());
    // Peer membership: ingress instances whose lease is alive. Updated after the initial read too.
    let instanceView: PrefixView<true> | undefined;
    instanceView = await watchPrefixView<true>({
      etcd: shared.etcd,
      prefix: `${config.etcdPrefix}/instances/ingress/`,
      parse: () => true,
      onChange: () => {
        if (instanceView) sync.setLeasedPeers(new Set(instanceView.entries.keys()), nowMs());
      },
      logger: logger.child({ component: "peers" }),
    });
    sync.setLeasedPeers(new Set(instanceView.entries.keys()), nowMs());
    const instances = instanceView;
    closeAll.push(() => instances.close());
    const policies = await watchEtcdPolicies({
      etcd: shared.etcd,
      prefix: config.etcdPrefix,
      fallback: fallbackPolicy,
      logger: logger.child({ component: "policy" }),
    });
    closeAll.push(() => policies.close());
    const engines = { engines: () => engineView.entries.values() };

    const admission = createAdmissionController({
      ledger,
      sync,
      engines,
      policyFor: policies.policyFor,
      nowMs,
    });
    stateSync = createStateSync({
      subject: `${subjectPrefix}.ingress.state`,
      sync,
      debounceMs: config.stateDebounceMs,
      heartbeatMs: config.stateHeartbeatMs,
      nowMs,
      onDropped: (error) => {
        metrics.droppedMessage("ingress_state");
        logger.debug({ err: error }, "dropped a malformed ingress.state message");
      },
    });
    const publisher = stateSync;
    closeAll.push(() => publisher.close());
    shared.onNatsConnect((nc) => publisher.attach(nc));

    const events = natsEventSink(shared.nats, subjectPrefix, config.id, () => Date.now());
    const admissionService = createAdmissionService({
      admission,
      policyFor: policies.policyFor,
      defaultMaxTokens: config.defaultMaxTokens,
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
      ],
    });
    const grpcServer = grpc;
    closeAll.push(async () => {
      await grpcServer.shutdown(0);
    });
    proxy = await startProxyServer({
      host: config.host,
      port: config.port,
      maxBodyBytes: config.maxBodyBytes,
      upstreamTimeoutMs: config.upstreamTimeoutMs,
      defaultMaxTokens: config.defaultMaxTokens,
      trustClassHeader: config.trustClassHeader,
      admission,
      selector: leastInflightSelector(engines),
      engines,
      policyFor: policies.policyFor,
      metrics,
      events,
      logger: logger.child({ component: "proxy" }),
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
    metrics.sync(sync.livePeers(now).length, sync.maxPeerAgeMs(now) / 1000, shared.natsConnected());
  }, GAUGE_REFRESH_MS);
  refresh.unref();

  const url = advertisedUrl(config, proxy.url, proxy.port);
  const startedAtMs = Date.now();
  shared.register(`instances/ingress/${config.id}`, () => ({
    role: "ingress",
    id: config.id,
    addresses: { http: url, admin: shell.admin.url, grpc: grpc.target },
    version: VERSION,
    started_at: new Date(startedAtMs).toISOString(),
  }));
  readiness.register("http-server", () => true);

  shutdown.register("stop-accepting", "http-server", () => proxy.stopAccepting());
  shutdown.register("drain", "grpc-server", async () => {
    await grpc.shutdown(Math.max(0, config.shutdownTimeoutMs - 250));
  });
  shutdown.register("drain", "inflight", async ({ signal }) => {
    // Requests already admitted finish (or the bound aborts them); new connections are refused.
    while (ledger.total().requests > 0 && !signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    proxy.destroyAll();
  });
  shutdown.register("release", "etcd-lease", () => shared.releaseLease());
  shutdown.register("close", "state-sync", async () => {
    clearInterval(refresh);
    for (const close of closeAll) await Promise.resolve(close()).catch(() => {});
  });
  shutdown.register("close", "nats", () => shared.closeNats());
  logger.info({ url, admin: shell.admin.url, grpc: grpc.target }, "ingress listening");

  return {
    url,
    adminUrl: shell.admin.url,
    instanceId: config.id,
    ledger,
    sync,
    proxy,
    grpcTarget: grpc.target,
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
    const launched = await launchIngress({ argv, ...(env ? { env } : {}) });
    if (typeof launched === "number") return launched;
    return launched.exited;
  },
};
