// `sluice router`: the L2 process. Process shell (config, logs, admin server, shutdown), the router
// service around the core decision, the gRPC server, and the shared state it is fed from: engines
// from etcd `engines/`, KV events and observed load from NATS, peer replicas' deltas on
// `router.sync`, and optionally NVIDIA Dynamo's own events and model entries (dynamo.ts).
import { hostname } from "node:os";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  RouterConfigError,
  type RouterSyncDelta,
  routerDecisionOptionsWithDefaults,
  type SyncOutcome,
} from "@sluice/core";
import {
  type EngineLoad,
  EngineLoadSchema,
  grpcServiceDefinition,
  Router,
  RouterSyncSchema,
} from "@sluice/proto";
import {
  createPolicyReporting,
  DEFAULT_POLICY_KEY,
  formatHostPort,
  type GrpcServer,
  type LaunchOptions,
  launchProcessShell,
  openSharedState,
  type PolicyWatcher,
  type PrefixWatch,
  type ProcessShell,
  protoCodec,
  type RouterSyncFate,
  runUntilExit,
  startGrpcServer,
  subjects,
  watchPolicies,
  watchPrefix,
  workerIdOfSubject,
} from "@sluice/runtime";
import { routerSchema } from "./config.js";
import { createRouterEventPublisher } from "./decision-events.js";
import { dynamoSubjects, parseDynamoLoad, parseDynamoModelEntry } from "./dynamo.js";
import { MalformedInputError } from "./errors.js";
import { routerGrpcImplementation } from "./grpc-service.js";
import { decodeKvEvent } from "./kv-events.js";
import { createRouterMetrics, type MessageSource } from "./router-metrics.js";
import { createRouterService, type RouterService } from "./router-service.js";
import { createWorkerRegistry, parseEngineRegistration, type RegisteredWorker } from "./worker-registry.js";

const VERSION = "0.1.0";
const SUMMARY =
  "L2 router: prefix-aware placement, predicted load, bounded hold queue (gRPC sluice.v1.Router)";
const ROLE = "router";
const STATS_INTERVAL_MS = 1_000;

/** The shape the `sluice` CLI expects of a subcommand. */
export interface RouterCommand {
  readonly name: "router";
  readonly summary: string;
  run(argv: string[], env?: Readonly<Record<string, string | undefined>>): Promise<number>;
}

export type LaunchRouterOptions = LaunchOptions;

/** A started router (in this Node process). */
export interface LaunchedRouter {
  /** `host:port` the gRPC server is reached at (the advertised address). */
  readonly target: string;
  readonly adminUrl: string;
  readonly instanceId: string;
  readonly service: RouterService;
  /** Graceful shutdown (as on SIGTERM); resolves with the exit code. */
  stop(reason?: string): Promise<number>;
  readonly exited: Promise<number>;
}

type Config = ProcessShell<typeof routerSchema>["config"];

function advertisedTarget(config: Config, server: GrpcServer): string {
  if (config.advertiseAddress !== "") return config.advertiseAddress;
  if (config.host === "0.0.0.0" || config.host === "::")
    return formatHostPort(hostname(), server.address.port);
  return server.target;
}

/**
 * Starts `sluice router` in this process. Returns the exit code instead of a handle when it exits
 * during start-up (`--help` → 0, bad settings → 2, start-up failure → 1).
 */
export async function launchRouter(options: LaunchRouterOptions): Promise<LaunchedRouter | number> {
  const launched = await launchProcessShell({
    role: ROLE,
    schema: routerSchema,
    summary: SUMMARY,
    version: VERSION,
    options,
  });
  if (typeof launched === "number") return launched;
  const { shell, exited } = launched;

  const { config, logger, shutdown, readiness } = shell;
  const stderr = options.stderr ?? process.stderr;
  const invalidSettings = async (message: string) => {
    stderr.write(`sluice ${ROLE}: ${message}\n`);
    await shutdown.shutdown("invalid configuration");
    return 2;
  };
  const dynamo = config.dynamoNamespace !== "" || config.dynamoComponent !== "";
  if (dynamo && (config.dynamoNamespace === "" || config.dynamoComponent === "")) {
    return invalidSettings("--dynamo-namespace and --dynamo-component are only valid together");
  }
  let decisionOptions: ReturnType<typeof routerDecisionOptionsWithDefaults>;
  try {
    decisionOptions = routerDecisionOptionsWithDefaults({
      temperature: config.temperature,
      defaultPrefillTokensPerS: config.defaultPrefillRate,
      defaultKvReleaseFractionPerS: config.defaultKvReleaseFraction,
      maxObservedAgeMs: config.maxObservedAgeMs,
      busyChecks: {
        decodeBlockFraction: config.busyDecodeBlocks,
        pendingPrefill: config.busyPendingPrefill,
        predictedTtft: config.busyPredictedTtft,
      },
    });
  } catch (error) {
    if (error instanceof RouterConfigError) return invalidSettings(error.message);
    throw error;
  }

  const shared = await openSharedState(ROLE, config, logger);
  if (shared === undefined) {
    await shutdown.shutdown("start-up failed");
    return 1;
  }
  const { nats, etcd } = shared;
  const closeAll = async (...extra: (() => Promise<unknown>)[]) => {
    await Promise.allSettled([...extra.map((f) => f()), etcd.close(), nats.close()]);
  };

  const names = subjects(config.namespace);
  const reporting = createPolicyReporting({
    level: "router",
    instanceId: config.id,
    subjects: names,
    publish: (subject, data) => nats.publish(subject, data),
    metrics: shell.metrics,
    logger: logger.child({ component: "policy" }),
  });
  // Set once the service exists; the initial snapshot is applied before that and needs no switch.
  let switchPolicies: () => void = () => {};
  let policies: PolicyWatcher;
  try {
    policies = await watchPolicies({
      client: etcd.client,
      prefix: config.etcdPrefix,
      logger: logger.child({ component: "policy" }),
      metrics: shell.metrics,
      onApplied: (change) => {
        // Switch at once (not at the model's next call) so held calls are re-bounded now and the
        // applied timestamp means "in force".
        switchPolicies();
        reporting.applied(change);
      },
      onRejected: (rejection) => reporting.rejected(rejection),
    });
  } catch (error) {
    logger.error({ err: error }, "cannot watch policies");
    await closeAll();
    await shutdown.shutdown("start-up failed");
    return 1;
  }
  const policyOf = (model: string) => policies.current(model === "" ? DEFAULT_POLICY_KEY : model);
  const shadowOf = (model: string) => policies.shadow(model === "" ? DEFAULT_POLICY_KEY : model);

  const metrics = createRouterMetrics(shell.metrics);
  const events = createRouterEventPublisher({
    publish: (subject, data) => nats.publish(subject, data),
    subjectOf: names.events,
    instanceId: config.id,
  });
  const syncCodec = protoCodec(RouterSyncSchema);
  const loadCodec = protoCodec(EngineLoadSchema);
  const registry = createWorkerRegistry();
  const knownClasses = new Set<string>();

  const service = createRouterService({
    replicaId: config.id,
    onSyncFate: (delta, fate) => countSync(delta, fate),
    syncGate: { logger: logger.child({ component: "router-sync" }) },
    registry,
    policyFor: (model) => policyOf(model).policy,
    shadowFor: (model) => shadowOf(model)?.policy,
    options: decisionOptions,
    gapPolicy: config.gapPolicy,
    publishSync: (delta) =>
      nats.publish(
        names.routerSync,
        syncCodec.encode(create(RouterSyncSchema, delta as MessageInitShape<typeof RouterSyncSchema>)),
      ),
    listener: {
      routed({ call, routed, decisionMs }) {
        metrics.decision("routed", call.requestClass, decisionMs);
        if (decisionMs === undefined) metrics.holdEnded(call.requestClass, "routed", routed.heldMs);
        events.emit("routed", {
          requestId: call.requestId,
          requestClass: call.requestClass,
          model: call.model,
          predictedTtftMs: routed.predictedTtftMs,
          observed: routed.overlapBlocks,
          workerId: routed.workerId,
          policyRevision: policyOf(call.model).revision,
        });
        queueDepth(call.requestClass);
      },
      held({ call, decisionMs }) {
        metrics.decision("held", call.requestClass, decisionMs);
        events.emit("held", {
          requestId: call.requestId,
          requestClass: call.requestClass,
          model: call.model,
          policyRevision: policyOf(call.model).revision,
        });
        queueDepth(call.requestClass);
      },
      rejected({ call, rejected, heldMs, decisionMs }) {
        metrics.decision("rejected", call.requestClass, decisionMs);
        metrics.rejected(rejected.reason, call.requestClass);
        if (decisionMs === undefined) metrics.holdEnded(call.requestClass, "rejected", heldMs);
        events.emit("rejected", {
          requestId: call.requestId,
          requestClass: call.requestClass,
          model: call.model,
          reason: rejected.reason,
          observed: rejected.observed,
          limit: rejected.limit,
          predictedTtftMs: rejected.predictedTtftMs,
          retryAfterMs: rejected.retryAfterMs,
          policyRevision: policyOf(call.model).revision,
        });
        queueDepth(call.requestClass);
      },
      cancelled({ call, heldMs }) {
        metrics.holdEnded(call.requestClass, "cancelled", heldMs);
        queueDepth(call.requestClass);
      },
      shadow({ call, comparison }) {
        reporting.shadow({
          requestId: call.requestId,
          requestClass: call.requestClass,
          model: call.model,
          comparison,
          enforcedRevision: policyOf(call.model).revision,
          shadowRevision: shadowOf(call.model)?.revision ?? 0,
        });
      },
    },
  });
  switchPolicies = () => service.policiesChanged();
  function queueDepth(requestClass: string): void {
    knownClasses.add(requestClass);
    metrics.queueDepth(requestClass, service.heldCount(requestClass));
  }

  let droppedLogged = 0;
  const dropped = (source: MessageSource, error: unknown) => {
    metrics.malformed(source);
    // Logged at warn for the first few, then at debug: a misbehaving publisher must not flood the log.
    const level = droppedLogged++ < 20 ? "warn" : "debug";
    logger[level]({ source, err: error }, "dropped a malformed message");
  };

  // The fate of each peer delta (router-service applySync); refusals are logged by the sync gate.
  const countSync = (delta: RouterSyncDelta, fate: RouterSyncFate<SyncOutcome>) => {
    if (fate.kind === "refused") {
      metrics.syncDelta(fate.reason);
      return;
    }
    if (fate.kind === "malformed") {
      metrics.syncDelta("malformed");
      dropped("sync", fate.error);
      return;
    }
    const outcome = fate.outcome;
    if (outcome.kind === "duplicate") metrics.syncDelta("duplicate");
    else if (outcome.gap) {
      metrics.syncDelta("gap");
      logger.warn(
        {
          replicaId: delta.replicaId,
          expectedSeq: outcome.expectedSeq.toString(),
          receivedSeq: outcome.receivedSeq.toString(),
        },
        "router.sync deltas of a peer replica were lost; its load picture may diverge until its requests end",
      );
    } else metrics.syncDelta("applied");
    if (delta.timestampMs > 0) metrics.lag("sync", (Date.now() - delta.timestampMs) / 1000);
  };

  const applyKv = (source: MessageSource, workerId: string, data: Uint8Array) => {
    let decoded: ReturnType<typeof decodeKvEvent>;
    try {
      decoded = decodeKvEvent(data);
    } catch (error) {
      metrics.kvEvent("malformed");
      dropped(source, error);
      return;
    }
    const id = workerId === "" ? decoded.dynamoWorkerId.toString() : workerId;
    try {
      const outcome = service.applyKvEvent(id, decoded.eventId, decoded.event);
      metrics.kvEvent(outcome.kind);
      if (outcome.kind === "gap") {
        logger.warn(
          {
            workerId: id,
            expectedEventId: outcome.expectedEventId.toString(),
            receivedEventId: outcome.receivedEventId.toString(),
            droppedBlocks: outcome.droppedBlocks,
            stale: outcome.stale,
          },
          `KV events of worker ${id} were lost; gap policy ${config.gapPolicy} applied`,
        );
      } else if (outcome.kind === "restart") {
        logger.info({ workerId: id, droppedBlocks: outcome.droppedBlocks }, "KV event stream restarted");
      }
    } catch (error) {
      metrics.kvEvent("malformed");
      dropped(source, error);
    }
  };

  nats.subscribe(names.allEngineKv, (msg) => {
    const workerId = workerIdOfSubject(msg.subject, names);
    if (workerId === undefined) return;
    applyKv("kv", workerId, msg.data);
  });

  nats.subscribe(names.allEngineLoad, (msg) => {
    const workerId = workerIdOfSubject(msg.subject, names);
    const decoded = loadCodec.tryDecode(msg.data);
    if (workerId === undefined || !decoded.ok) {
      dropped("load", decoded.ok ? new MalformedInputError(`bad subject ${msg.subject}`) : decoded.error);
      return;
    }
    const load: EngineLoad = decoded.value;
    const now = Date.now();
    try {
      service.observe(workerId, {
        kvUsedBlocks: load.kvUsedBlocks,
        kvTotalBlocks: load.kvTotalBlocks,
        pendingPrefillTokens: load.pendingPrefillTokens,
        waiting: load.waiting,
        running: load.running,
        prefillTokensPerS: load.prefillTokensPerS,
        kvBlocksReleasedPerS: 0,
        observedAtMs: load.timestampMs > 0 ? load.timestampMs : now,
      });
      if (load.timestampMs > 0) metrics.lag("engine_load", (now - load.timestampMs) / 1000);
    } catch (error) {
      dropped("load", error);
    }
  });

  nats.subscribe(names.routerSync, (msg) => {
    const decoded = syncCodec.tryDecode(msg.data);
    if (!decoded.ok) {
      metrics.syncDelta("malformed");
      dropped("sync", decoded.error);
      return;
    }
    const delta = decoded.value;
    if (delta.replicaId === config.id) return; // our own delta, echoed back
    // Its fate (applied, malformed, refused: unregistered replica or absurd add) reaches countSync.
    service.applySync(delta);
  });

  if (dynamo) {
    const ds = dynamoSubjects(config.dynamoNamespace, config.dynamoComponent);
    nats.subscribe(ds.kvEvents, (msg) => applyKv("dynamo_kv", "", msg.data));
    nats.subscribe(ds.kvMetrics, (msg) => {
      try {
        const parsed = parseDynamoLoad(
          msg.data,
          Date.now(),
          (id) => registry.get(id)?.worker.kvTotalBlocks ?? 0,
        );
        service.observe(parsed.workerId, parsed.observed);
      } catch (error) {
        dropped("dynamo_metrics", error);
      }
    });
    logger.info({ ...ds }, "consuming NVIDIA Dynamo KV events and load metrics");
  }

  // etcd watches: Sluice engines, Dynamo model entries, peer router replicas.
  const watches: PrefixWatch[] = [];
  const watchWorkers = async (
    prefix: string,
    parse: (key: string, value: string) => RegisteredWorker,
  ): Promise<PrefixWatch> => {
    const workerOfKey = new Map<string, string>();
    const put = (key: string, value: string) => {
      try {
        const entry = parse(key, value);
        const previous = workerOfKey.get(key);
        if (previous !== undefined && previous !== entry.worker.workerId) service.removeWorker(previous);
        workerOfKey.set(key, entry.worker.workerId);
        service.putWorker(entry);
        logger.info(
          { workerId: entry.worker.workerId, model: entry.model, address: entry.address },
          "worker registered",
        );
      } catch (error) {
        dropped("registration", error);
      }
    };
    return watchPrefix(
      etcd.client,
      prefix,
      {
        onSnapshot(entries) {
          for (const e of entries) put(e.key, e.value);
        },
        onPut: (e) => put(e.key, e.value),
        onDelete(key) {
          const workerId = workerOfKey.get(key);
          workerOfKey.delete(key);
          if (workerId === undefined) return;
          service.removeWorker(workerId);
          logger.info({ workerId }, "worker deregistered (lease gone): dropped from index and load");
        },
      },
      { logger: logger.child({ component: "etcd-watch" }) },
    );
  };
  try {
    const engines = etcd.keys.engines;
    watches.push(
      await watchWorkers(engines, (key, value) => parseEngineRegistration(key.slice(engines.length), value)),
    );
    if (dynamo) {
      watches.push(
        await watchWorkers(config.dynamoEtcdPrefix, (key, value) =>
          parseDynamoModelEntry(key, value, config.dynamoBlockSize),
        ),
      );
    }
    const peers = etcd.keys.instances(ROLE);
    watches.push(
      // Peer replicas: only registered ones may change the predicted load (router-sync-gate).
      await watchPrefix(etcd.client, peers, {
        onSnapshot(entries) {
          for (const e of entries) service.replicaRegistered(e.key.slice(peers.length));
        },
        onPut: (e) => service.replicaRegistered(e.key.slice(peers.length)),
        onDelete: (key) => service.forgetReplica(key.slice(peers.length)),
      }),
    );
  } catch (error) {
    logger.error({ err: error }, "cannot watch etcd");
    await closeAll(...watches.map((w) => () => w.close()), () => policies.close());
    await shutdown.shutdown("start-up failed");
    return 1;
  }

  let server: GrpcServer;
  try {
    server = await startGrpcServer({
      host: config.host,
      port: config.grpcPort,
      services: [
        {
          definition: grpcServiceDefinition(Router),
          implementation: routerGrpcImplementation(service, {
            deadlineMarginMs: config.deadlineMarginMs,
            onError: (method, error) => logger.error({ err: error, method }, "gRPC handler failed"),
          }),
        },
      ],
    });
  } catch (error) {
    logger.error({ err: error }, "cannot start the gRPC server");
    await closeAll(...watches.map((w) => () => w.close()), () => policies.close());
    await shutdown.shutdown("start-up failed");
    return 1;
  }
  const target = advertisedTarget(config, server);

  const stats = setInterval(() => {
    metrics.index(service.index.stats(), registry.size());
    for (const c of knownClasses) metrics.queueDepth(c, service.heldCount(c));
    const expired = service.expireStale();
    if (expired.prefillExpired + expired.requestsExpired > 0) {
      // Each one is a lost MarkPrefillDone / Release (caller gone, notification timed out, a replica
      // died): aged out so predicted load cannot leak (docs/operations.md, "Predicted load").
      logger.warn(expired, "aged out predicted load of requests never reported done");
    }
  }, STATS_INTERVAL_MS);
  stats.unref();
  readiness.register("nats", () =>
    nats.isConnected ? true : { ready: false, detail: "NATS is not connected" },
  );

  shutdown.register("stop-accepting", "grpc", () => {
    const answered = service.close("shutting down");
    if (answered > 0) logger.info({ answered }, "held calls answered with a rejection");
    // tryShutdown refuses new calls at once and lets running ones (just answered) finish.
    void server.shutdown(config.shutdownTimeoutMs);
  });
  shutdown.register("drain", "grpc", async () => {
    const { forced } = await server.shutdown(config.shutdownTimeoutMs);
    if (forced) logger.warn("gRPC calls still running at the shutdown bound were cancelled");
  });
  shutdown.register("release", "etcd-lease", async () => {
    clearInterval(stats);
    await Promise.allSettled([...watches.map((w) => w.close()), policies.close()]);
    await etcd.close();
  });
  shutdown.register("close", "nats", () => nats.close());

  try {
    await etcd.register(ROLE, config.id, {
      addresses: { grpc: target, admin: shell.admin.url },
      version: VERSION,
    });
  } catch (error) {
    logger.error({ err: error }, "cannot register in etcd");
    await shutdown.terminate("start-up failed", 1);
    return 1;
  }
  logger.info({ target, workers: registry.size(), dynamo }, "router listening");

  return {
    target,
    adminUrl: shell.admin.url,
    instanceId: config.id,
    service,
    async stop(reason = "stop requested") {
      await shutdown.terminate(reason);
      return exited;
    },
    exited,
  };
}

/** `sluice router [flags]`: runs until SIGTERM/SIGINT and returns the exit code. */
export async function runRouter(
  argv: string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  return runUntilExit(launchRouter({ argv, env }));
}

export const routerCommand: RouterCommand = { name: "router", summary: SUMMARY, run: runRouter };
