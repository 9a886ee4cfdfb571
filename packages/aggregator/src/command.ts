// `sluice aggregator`: every instance keeps a warm cluster picture (engine registrations from etcd,
// engine load and router sync from NATS); the one elected through etcd (`elections/aggregator`)
// publishes it as `cluster.load`. A standby wins the election once the leader's key goes — at once
// on a graceful stop (it resigns), within the lease TTL on a crash.

import { setTimeout as sleep } from "node:timers/promises";
import {
  ClusterAggregateConfigError,
  type ClusterAggregateOptions,
  clusterAggregateOptionsWithDefaults,
  clusterLoadChanged,
  type ModelLoadView,
} from "@sluice/core";
import { ClusterLoadSchema } from "@sluice/proto";
import {
  campaign,
  createPolicyReporting,
  type LaunchOptions,
  type Leadership,
  type LeadershipLossReason,
  launchProcessShell,
  openSharedState,
  type PolicyWatcher,
  type PrefixWatch,
  protoCodec,
  runUntilExit,
  subjects,
  watchPolicies,
  watchPrefix,
  workerIdOfSubject,
} from "@sluice/runtime";
import type { Subscription } from "nats";
import { createAggregatorMetrics, type SnapshotKind } from "./aggregator-metrics.js";
import { toClusterLoad } from "./cluster-load-message.js";
import { createClusterState, type IngestOutcome } from "./cluster-state.js";
import { aggregatorSchema } from "./config.js";
import { ensureEventsStream } from "./events-stream.js";
import { aggregateOptionsFromPolicies } from "./policy-shares.js";
import { createPublishLoop } from "./publish-loop.js";

const VERSION = "0.1.0";
const SUMMARY = "Leader-elected aggregator publishing the cluster load view (cluster.load)";
export const AGGREGATOR_ELECTION = "aggregator";
const CAMPAIGN_RETRY_MS = 500;
/** How often router.sync deltas that waited in vain for their replica's registration are refused. */
const ROUTER_SYNC_SWEEP_MS = 1_000;

export interface AggregatorCommand {
  readonly name: "aggregator";
  readonly summary: string;
  run(argv: string[], env?: Readonly<Record<string, string | undefined>>): Promise<number>;
}

export interface LaunchAggregatorOptions extends LaunchOptions {
  /** Called after each cluster.load publish (benchmarks measure lag with it; the metric is coarser). */
  onPublish?: (published: PublishedView) => void;
}

export interface PublishedView {
  readonly seq: bigint;
  readonly trigger: "change" | "heartbeat";
  /** First unpublished input change → publish; undefined for a heartbeat with nothing new. */
  readonly lagMs: number | undefined;
}

export interface LaunchedAggregator {
  readonly instanceId: string;
  readonly adminUrl: string;
  isLeader(): boolean;
  /** Graceful stop (as on SIGTERM: resigns leadership); resolves with the exit code. */
  stop(reason?: string): Promise<number>;
  readonly exited: Promise<number>;
}

/**
 * Starts `sluice aggregator` in this process. Returns the exit code instead of a handle when it
 * exits during start-up (`--help` → 0, bad settings → 2, start-up failure → 1).
 */
export async function launchAggregator(
  options: LaunchAggregatorOptions,
): Promise<LaunchedAggregator | number> {
  const launched = await launchProcessShell({
    role: "aggregator",
    schema: aggregatorSchema,
    summary: SUMMARY,
    version: VERSION,
    options,
  });
  if (typeof launched === "number") return launched;
  const { shell, exited } = launched;
  const { config, logger, shutdown, readiness } = shell;
  const stderr = options.stderr ?? process.stderr;

  let aggregateOptions: ClusterAggregateOptions;
  try {
    aggregateOptions = clusterAggregateOptionsWithDefaults({ staleAfterMs: config.staleAfterMs });
  } catch (err) {
    if (!(err instanceof ClusterAggregateConfigError)) throw err;
    stderr.write(`sluice aggregator: ${err.message}\n`);
    await shutdown.shutdown("invalid configuration");
    return 2;
  }

  const metrics = createAggregatorMetrics(shell.metrics);
  const names = subjects(config.namespace);
  const shared = await openSharedState("aggregator", config, logger);
  if (shared === undefined) {
    await shutdown.shutdown("start-up failed");
    return 1;
  }
  const { nats, etcd: session } = shared;
  shutdown.register("close", "nats", () => nats.close());
  // Revoking the lease drops the registration and the election key at once.
  shutdown.register("release", "etcd-session", () => session.close());

  // Class shares and KV overcommit per model come from the live policies; a change republishes.
  const policyLogger = logger.child({ component: "policy" });
  const reporting = createPolicyReporting({
    level: "aggregator",
    instanceId: config.id,
    subjects: names,
    publish: (subject, data) => nats.connection.publish(subject, data),
    metrics: shell.metrics,
    logger: policyLogger,
  });
  let policyChanged: () => void = () => {};
  let policies: PolicyWatcher;
  try {
    policies = await watchPolicies({
      client: session.client,
      prefix: config.etcdPrefix,
      logger: policyLogger,
      metrics: shell.metrics,
      onApplied: (change) => {
        policyChanged();
        reporting.applied(change);
      },
      onRejected: (rejection) => reporting.rejected(rejection),
    });
  } catch (err) {
    logger.error({ err }, "cannot watch policies");
    await shutdown.shutdown("start-up failed");
    return 1;
  }
  shutdown.register("drain", "policy-watch", () => policies.close());
  const shares = aggregateOptionsFromPolicies(
    aggregateOptions,
    (model) => policies.current(model).policy,
    (model, err) =>
      policyLogger.warn(
        { model, err },
        "policy shares unusable for the aggregate; defaults used for the model",
      ),
  );
  // Set below, before any router.sync message can arrive.
  let syncJudged: (outcome: IngestOutcome) => void = () => {};
  const state = createClusterState(aggregateOptions, config.id, shares.optionsFor, {
    logger: logger.child({ component: "router-sync" }),
    onLateOutcome: (outcome) => syncJudged(outcome),
  });
  const clusterLoadCodec = protoCodec(ClusterLoadSchema);
  let seq = 0n;
  let lastViews: ModelLoadView[] | undefined;

  const loop = createPublishLoop({
    debounceMs: config.debounceMs,
    heartbeatMs: config.heartbeatMs,
    nowMs: Date.now,
    publish: (force, dirtySinceMs) => {
      const nowMs = Date.now();
      const views = state.view(nowMs);
      metrics.staleEngines.set(views.reduce((n, v) => n + v.staleWorkerIds.length, 0));
      const changed = clusterLoadChanged(lastViews, views, aggregateOptions);
      if (!force && !changed) return false;
      seq += 1n;
      nats.connection.publish(
        names.clusterLoad,
        clusterLoadCodec.encode(toClusterLoad(views, config.id, seq, nowMs)),
      );
      lastViews = views;
      const trigger = changed ? "change" : "heartbeat";
      metrics.published.inc(1, { trigger });
      const lagMs = dirtySinceMs === undefined ? undefined : Date.now() - dirtySinceMs;
      if (lagMs !== undefined) metrics.publishLag.observe(lagMs / 1000);
      options.onPublish?.({ seq, trigger, lagMs });
      return true;
    },
  });

  policyChanged = () => loop.markDirty();

  /** What became of an input: dropped (malformed, or a refused router.sync delta), held, or applied. */
  const judged = (kind: SnapshotKind, outcome: IngestOutcome): void => {
    if (outcome === "held") return; // judged later (router-sync-gate)
    if (outcome === "applied") {
      loop.markDirty();
      return;
    }
    // Refused router.sync deltas are logged (rate-limited) by the sync gate itself.
    metrics.snapshotsDropped.inc(1, { kind, reason: outcome });
    if (outcome === "malformed") logger.debug({ kind }, "dropped a malformed message");
  };
  const received = (kind: SnapshotKind, outcome: IngestOutcome): void => {
    metrics.snapshotsReceived.inc(1, { kind });
    judged(kind, outcome);
  };
  syncJudged = (outcome) => judged("router_sync", outcome);
  const syncSweep = setInterval(() => state.sweepRouterSync(), ROUTER_SYNC_SWEEP_MS);
  syncSweep.unref();
  shutdown.register("close", "router-sync-sweep", () => clearInterval(syncSweep));

  const subscriptions: Subscription[] = [
    nats.connection.subscribe(names.allEngineLoad, {
      callback: (err, msg) => {
        if (err !== null) return;
        const workerId = workerIdOfSubject(msg.subject, names);
        received(
          "engine_load",
          workerId === undefined ? "malformed" : state.observeLoad(workerId, msg.data, Date.now()),
        );
      },
    }),
    nats.connection.subscribe(names.ingressState, {
      callback: (err, msg) => {
        if (err === null) received("ingress_state", state.observeIngress(msg.data, Date.now()));
      },
    }),
    nats.connection.subscribe(names.routerSync, {
      callback: (err, msg) => {
        if (err === null) received("router_sync", state.applyRouterSync(msg.data));
      },
    }),
  ];
  shutdown.register("close", "subscriptions", () => {
    for (const s of subscriptions) s.unsubscribe();
  });

  const enginesPrefix = session.keys.engines;
  const encoder = new TextEncoder();
  const putEngine = (key: string, value: string): void => {
    const workerId = key.slice(enginesPrefix.length);
    received("engine_registration", state.putEngine(workerId, encoder.encode(value)));
    metrics.enginesTracked.set(state.engineCount);
  };
  let engineWatch: PrefixWatch;
  try {
    engineWatch = await watchPrefix(
      session.client,
      enginesPrefix,
      {
        onSnapshot: (entries) => {
          for (const e of entries) putEngine(e.key, e.value);
        },
        onPut: (e) => putEngine(e.key, e.value),
        onDelete: (key) => {
          state.deleteEngine(key.slice(enginesPrefix.length));
          metrics.enginesTracked.set(state.engineCount);
          loop.markDirty();
        },
      },
      { logger: logger.child({ component: "engines-watch" }) },
    );
  } catch (err) {
    logger.error({ err }, "cannot watch engine registrations");
    await shutdown.shutdown("start-up failed");
    return 1;
  }
  // Before the session closes its client in "release".
  shutdown.register("drain", "engines-watch", () => engineWatch.close());

  // Router replicas registered in etcd: only their router.sync deltas change the predicted load.
  const routersPrefix = session.keys.instances("router");
  let routerWatch: PrefixWatch;
  try {
    routerWatch = await watchPrefix(
      session.client,
      routersPrefix,
      {
        onSnapshot: (entries) => {
          for (const e of entries) state.routerRegistered(e.key.slice(routersPrefix.length));
        },
        onPut: (e) => state.routerRegistered(e.key.slice(routersPrefix.length)),
        onDelete: (key) => state.routerDeregistered(key.slice(routersPrefix.length)),
      },
      { logger: logger.child({ component: "routers-watch" }) },
    );
  } catch (err) {
    logger.error({ err }, "cannot watch router registrations");
    await shutdown.shutdown("start-up failed");
    return 1;
  }
  shutdown.register("drain", "routers-watch", () => routerWatch.close());

  await session.register("aggregator", config.id, {
    addresses: { admin: shell.admin.url },
    version: VERSION,
  });

  // Leadership: campaign, lead until lost, campaign again — until shutdown aborts it.
  const campaignAbort = new AbortController();
  let leadership: Leadership | undefined;
  const leadForever = async (): Promise<void> => {
    while (!campaignAbort.signal.aborted) {
      try {
        const won = await campaign(session, AGGREGATOR_ELECTION, config.id, { signal: campaignAbort.signal });
        leadership = won;
        const lost = new Promise<LeadershipLossReason>((resolve) => won.onLost(resolve));
        startLeading();
        const reason = await lost;
        stopLeading(reason);
      } catch (err) {
        if (campaignAbort.signal.aborted) return;
        logger.warn({ err }, "aggregator election campaign failed; retrying");
        await sleep(CAMPAIGN_RETRY_MS);
      }
    }
  };
  const startLeading = (): void => {
    seq = 0n;
    lastViews = undefined;
    metrics.leader.set(1);
    metrics.leadershipChanges.inc(1, { change: "gained" });
    logger.info({}, "elected aggregator leader; publishing cluster.load");
    loop.start();
    void createEventsStream();
  };
  const stopLeading = (reason: LeadershipLossReason): void => {
    loop.stop();
    leadership = undefined;
    metrics.leader.set(0);
    metrics.leadershipChanges.inc(1, { change: "lost" });
    if (!campaignAbort.signal.aborted)
      logger.warn({ reason }, "lost aggregator leadership; campaigning again");
  };
  const createEventsStream = async (): Promise<void> => {
    try {
      const jsm = await nats.connection.jetstreamManager();
      const outcome = await ensureEventsStream(jsm, {
        name: config.eventsStream,
        maxAgeMs: config.eventsMaxAgeMs,
        maxBytes: config.eventsMaxBytes,
      });
      logger.info({ stream: config.eventsStream, outcome }, "decision events stream ready");
    } catch (err) {
      // Without JetStream only the event history is lost; cluster.load keeps flowing.
      logger.warn({ err, stream: config.eventsStream }, "cannot create the decision events stream");
    }
  };

  const leading = leadForever();
  readiness.register("etcd-session", () => true);
  shutdown.register("stop-accepting", "leadership", async () => {
    campaignAbort.abort(new Error("shutting down"));
    loop.stop();
    const held = leadership;
    leadership = undefined;
    metrics.leader.set(0);
    // Resign so a standby takes over now, not after the lease TTL.
    if (held !== undefined)
      await held.resign().catch((err: unknown) => logger.warn({ err }, "resign failed"));
    await leading;
  });

  logger.info(
    { namespace: config.namespace, debounceMs: config.debounceMs, heartbeatMs: config.heartbeatMs },
    "aggregator started",
  );
  return {
    instanceId: config.id,
    adminUrl: shell.admin.url,
    isLeader: () => leadership?.isLeader === true,
    async stop(reason = "stop requested") {
      await shutdown.terminate(reason);
      return exited;
    },
    exited,
  };
}

/** `sluice aggregator [flags]`: runs until SIGTERM/SIGINT and returns the exit code. */
export async function runAggregator(
  argv: string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  return runUntilExit(launchAggregator({ argv, env }));
}

export const aggregatorCommand: AggregatorCommand = {
  name: "aggregator",
  summary: SUMMARY,
  run: runAggregator,
};
