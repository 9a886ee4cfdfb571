// `sluice engine-scheduler`: the L3 sidecar process. Process shell (config, logs, admin server,
// shutdown), the scheduler around the core decision, the proxy, the engine scraper, NATS publishing
// (load snapshots, decision events) and the etcd registration of the engine under this process's lease.
import { hostname } from "node:os";
import {
  type EngineDecisionOptions,
  EngineSchedulerConfigError,
  engineDecisionOptionsFromPolicy,
  type ResolvedPolicy,
} from "@sluice/core";
import { Outcome } from "@sluice/proto";
import {
  createPolicyReporting,
  DEFAULT_POLICY_KEY,
  type LaunchOptions,
  launchProcessShell,
  openSharedState,
  type PolicyWatcher,
  type ProcessShell,
  runUntilExit,
  subjects,
  watchPolicies,
} from "@sluice/runtime";
import { createAfterTurn } from "./after-turn.js";
import { engineSchedulerSchema } from "./config.js";
import { createDecisionEventPublisher } from "./decision-events.js";
import { type EngineFacts, startEngineScraper } from "./engine-facts.js";
import { EngineUnavailableError } from "./errors.js";
import { createLiveEngineDecision, type LiveEngineDecision } from "./live-decision.js";
import { createLoadPublisher } from "./load-publisher.js";
import { type ProxyServer, startProxyServer } from "./proxy-server.js";
import { createSidecarScheduler } from "./scheduler.js";
import { createSidecarMetrics } from "./sidecar-metrics.js";

const VERSION = "0.1.0";
const SUMMARY = "L3 sidecar in front of one engine: exact queue, predictive TTFT/ITL admission";
const ROLE = "engine-scheduler";
/** Issue 6: load snapshots on change, debounced ≥ 1 ms (plus heartbeat). */
const LOAD_DEBOUNCE_MS = 1;
/**
 * How long deferred publishing may wait while requests are in flight (after-turn.ts). Long enough
 * that a request answered within it (an idle sidecar, a fast engine) publishes its events and the
 * load it caused in one NATS write after its response; short against what the load snapshot is for
 * (routing, which already sees NATS latency and the aggregator's 50 ms debounce).
 */
const BUSY_PUBLISH_DELAY_MS = 2;

/** The shape the `sluice` CLI expects of a subcommand. */
export interface EngineSchedulerCommand {
  readonly name: "engine-scheduler";
  readonly summary: string;
  run(argv: string[], env?: Readonly<Record<string, string | undefined>>): Promise<number>;
}

export type LaunchEngineSchedulerOptions = LaunchOptions;

/** A started sidecar (in this Node process). */
export interface LaunchedEngineScheduler {
  /** Where clients (the ingress) send requests: the advertised URL. */
  readonly url: string;
  readonly adminUrl: string;
  readonly workerId: string;
  readonly instanceId: string;
  /** The live decision: a new policy rebuilds it (`generation` counts the switches). */
  readonly decision: LiveEngineDecision;
  readonly scheduler: ReturnType<typeof createSidecarScheduler>;
  readonly proxy: ProxyServer;
  /** Graceful shutdown (as on SIGTERM); resolves with the exit code. */
  stop(reason?: string): Promise<number>;
  readonly exited: Promise<number>;
}

type Config = ProcessShell<typeof engineSchedulerSchema>["config"];

function advertisedUrl(config: Config, boundUrl: string, port: number): string {
  if (config.advertiseUrl !== "") return config.advertiseUrl.replace(/\/+$/, "");
  if (config.host === "0.0.0.0" || config.host === "::") return `http://${hostname()}:${port}`;
  return boundUrl;
}

/**
 * Starts `sluice engine-scheduler` in this process. Returns the exit code instead of a handle when it
 * exits during start-up (`--help` → 0, bad settings → 2, start-up failure → 1). Start-up waits for
 * NATS and etcd (the sidecar's registration is what makes its engine routable at all).
 */
export async function launchEngineScheduler(
  options: LaunchEngineSchedulerOptions,
): Promise<LaunchedEngineScheduler | number> {
  const launched = await launchProcessShell({
    role: ROLE,
    schema: engineSchedulerSchema,
    summary: SUMMARY,
    version: VERSION,
    options,
  });
  if (typeof launched === "number") return launched;
  const { shell, exited } = launched;

  const { config, logger, shutdown, readiness } = shell;
  const stderr = options.stderr ?? process.stderr;
  const workerId = config.workerId === "" ? config.id : config.workerId;
  const engineUrl = config.engineUrl.replace(/\/+$/, "");

  const shared = await openSharedState(ROLE, config, logger);
  if (shared === undefined) {
    await shutdown.shutdown("start-up failed");
    return 1;
  }
  const { nats, etcd } = shared;

  // The policy in force for this model (etcd `policies/{model}`, else `_default`, else built-in),
  // applied live: a change rebuilds the decision (live-decision.ts) keeping queued and running requests.
  // Flags given explicitly override its engine section (local tuning of one sidecar).
  const subjectNames = subjects(config.namespace);
  const publish = (subject: string, data: Uint8Array) => nats.connection.publish(subject, data);
  const policyLogger = logger.child({ component: "policy" });
  const reporting = createPolicyReporting({
    level: "engine",
    instanceId: workerId,
    subjects: subjectNames,
    publish,
    metrics: shell.metrics,
    logger: policyLogger,
  });
  // Set once the decision exists; the initial snapshot is what the decision is built from.
  let applyPolicy: () => void = () => {};
  let policies: PolicyWatcher;
  try {
    policies = await watchPolicies({
      client: etcd.client,
      prefix: config.etcdPrefix,
      logger: policyLogger,
      metrics: shell.metrics,
      onApplied: (change) => {
        if (
          change.kind === "enforcing" &&
          (change.model === config.model || change.model === DEFAULT_POLICY_KEY)
        )
          applyPolicy();
        reporting.applied(change);
      },
      onRejected: (rejection) => reporting.rejected(rejection),
    });
  } catch (error) {
    logger.error({ err: error }, "cannot watch policies");
    await Promise.allSettled([etcd.close(), nats.close()]);
    await shutdown.shutdown("start-up failed");
    return 1;
  }
  const policyNow = () => policies.current(config.model).policy;
  const given = (name: string) =>
    shell.sources[name]?.kind !== undefined && shell.sources[name]?.kind !== "default";
  /** The engine section a policy gets on this sidecar: explicit flags win over the policy. */
  const engineLimitsOf = (policy: ResolvedPolicy) => ({
    maxInflight: given("max-inflight") ? config.maxInflight : policy.engine.maxInflight,
    maxQueue: given("max-queue") ? config.maxQueue : policy.engine.maxQueue,
    maxQueueMs: given("max-queue-time") ? Math.round(config.maxQueueTimeMs) : policy.engine.maxQueueMs,
    ttftMarginMs: given("ttft-margin") ? Math.round(config.ttftMarginMs) : policy.engine.ttftMarginMs,
  });
  const decisionOptionsOf = (policy: ResolvedPolicy): EngineDecisionOptions =>
    engineDecisionOptionsFromPolicy(
      { classes: policy.classes, engine: engineLimitsOf(policy), rejection: policy.rejection },
      {
        maxNumSeqs: config.maxNumSeqs,
        maxNumBatchedTokens: config.maxNumBatchedTokens,
        kvTotalTokens: config.kvTotalBlocks * config.blockSize,
      },
    );
  let decisionPolicy = policyNow();
  let decision: LiveEngineDecision;
  try {
    decision = createLiveEngineDecision(decisionOptionsOf(decisionPolicy));
  } catch (error) {
    stderr.write(`sluice ${ROLE}: ${(error as Error).message}\n`);
    await Promise.allSettled([policies.close(), etcd.close(), nats.close()]);
    await shutdown.shutdown("invalid configuration");
    return 2;
  }

  const metrics = createSidecarMetrics(shell.metrics);
  // Off the request path: model gauges, the load check and events run after each turn, together;
  // while requests are in flight, up to BUSY_PUBLISH_DELAY_MS later (after-turn.ts).
  let scheduler: ReturnType<typeof createSidecarScheduler> | undefined;
  const afterTurn = createAfterTurn((error) => logger.error({ err: error }, "deferred bookkeeping failed"), {
    busy: () => (scheduler?.active() ?? 0) > 0,
    busyDelayMs: BUSY_PUBLISH_DELAY_MS,
  });
  const events = createDecisionEventPublisher({
    publish,
    subjectOf: subjectNames.events,
    workerId,
    model: config.model,
    schedule: afterTurn.run,
  });
  let facts: EngineFacts | undefined;
  const kvUsage = () => facts?.kvUsage ?? 0;

  const load = createLoadPublisher({
    publish,
    subject: subjectNames.engineLoad(workerId),
    workerId,
    debounceMs: LOAD_DEBOUNCE_MS,
    heartbeatIntervalMs: config.loadHeartbeatMs,
    snapshot: () => {
      const s = decision.snapshot();
      const c = scheduler?.counts();
      return {
        waiting: (c?.queued ?? 0) + (facts?.waiting ?? 0),
        running: facts?.running ?? s.inEngine,
        kvUsedBlocks: kvUsage() * config.kvTotalBlocks,
        kvTotalBlocks: config.kvTotalBlocks,
        pendingPrefillTokens: s.queuedUncachedTokens + s.pendingPrefillTokens,
        prefillTokensPerS: s.models.prefillSamples > 0 ? s.models.prefillTokensPerS : 0,
        decodeStepMs: s.models.decodeSamples > 0 ? s.models.decodeStepMsAtBatch1 : 0,
        oldestWaitingMs: scheduler?.oldestQueuedMs() ?? 0,
        preemptionsTotal: facts?.preemptionsTotal ?? 0,
      };
    },
  });

  const refreshAfterChange = () => {
    metrics.models(decision);
    load.markChanged();
  };

  scheduler = createSidecarScheduler({
    decision,
    nowMs: () => performance.now(),
    reevaluateIntervalMs: config.reevaluateIntervalMs,
    kvUsage,
    listener: {
      queued(id, className, predictedTtftMs, probe) {
        metrics.queued(className, probe);
        events.emit("queued", { requestId: id, className, outcome: Outcome.HELD, predictedTtftMs });
      },
      admitted(id, className, queuedMs) {
        metrics.admitted(className, queuedMs);
        events.emit("admitted", { requestId: id, className, outcome: Outcome.ADMITTED, observed: queuedMs });
      },
      rejected(id, r, whileQueued) {
        metrics.rejected(r, whileQueued);
        events.emit("rejected", {
          requestId: id,
          className: r.class,
          outcome: Outcome.REJECTED,
          reason: r.reason,
          observed: r.observed,
          limit: r.limit,
          retryAfterMs: r.retryAfterMs,
        });
      },
      firstToken(id, className, audit) {
        metrics.firstToken(className, audit);
        events.emit("first_token", {
          requestId: id,
          className,
          outcome: Outcome.ADMITTED,
          observed: audit?.measuredTtftMs ?? 0,
          predictedTtftMs: audit?.predictedTtftMs ?? 0,
        });
      },
      ended(id, className, outcome, wasQueued) {
        metrics.ended(className, outcome, wasQueued);
        const o =
          outcome === "completed"
            ? Outcome.COMPLETED
            : outcome === "cancelled" || outcome === "cancelled_queued"
              ? Outcome.CANCELLED
              : Outcome.FAILED;
        events.emit("done", { requestId: id, className, outcome: o });
      },
      changed() {
        afterTurn.run(refreshAfterChange);
      },
      shadow(id, className, comparison) {
        reporting.shadow({
          requestId: id,
          requestClass: className,
          model: config.model,
          comparison,
          enforcedRevision: policies.current(config.model).revision,
          shadowRevision: policies.shadow(config.model)?.revision ?? 0,
        });
      },
    },
    shadowPolicy: () => {
      const shadow = policies.shadow(config.model);
      if (shadow === undefined) return undefined;
      // The candidate as this sidecar would run it: explicit flags override it as they do the policy.
      return { ...shadow.policy, engine: engineLimitsOf(shadow.policy) };
    },
    engineMaxNumSeqs: config.maxNumSeqs,
  });
  const sched = scheduler;

  applyPolicy = () => {
    const policy = policyNow();
    if (policy === decisionPolicy) return;
    let options: EngineDecisionOptions;
    try {
      options = decisionOptionsOf(policy);
    } catch (error) {
      if (!(error instanceof EngineSchedulerConfigError)) throw error;
      policyLogger.error(
        { err: error, revision: policies.current(config.model).revision },
        "the policy's engine section is invalid on this sidecar; the previous limits stay in force",
      );
      return;
    }
    decisionPolicy = policy;
    const settled = decision.reconfigure(options, performance.now(), policy.defaultClass);
    sched.settleQueued(settled);
    policyLogger.info(
      {
        revision: policies.current(config.model).revision,
        generation: decision.generation,
        inEngineLimit: decision.snapshot().inEngineLimit,
        maxQueue: options.engine.maxQueue,
        rejectedQueued: settled.rejected.length,
        failedQueued: settled.failed.length,
      },
      "engine decision rebuilt for the new policy",
    );
  };

  // The engine registration (`engines/<worker>`) is withdrawn while the engine is down and written
  // back when it answers again: routers and ingresses then stop placing requests here instead of
  // getting a fast 503 from every one (test/fault-stack.test.ts, "engine killed"). The instance
  // registration stays, so operators still see the sidecar.
  let engineRegistration: { key: string; value: string } | undefined;
  let engineRegistered = false;
  const setEngineRegistered = (up: boolean): void => {
    if (engineRegistration === undefined || engineRegistered === up) return;
    engineRegistered = up;
    const { key, value } = engineRegistration;
    (up ? etcd.putUnderLease(key, value) : etcd.deleteUnderLease(key)).then(
      () =>
        logger.info(
          { key, registered: up },
          up ? "engine registration restored" : "engine registration withdrawn",
        ),
      (error: unknown) => {
        // etcd unreachable: the session re-writes what it remembers when it is back; a failed
        // withdrawal is retried by the next health change.
        engineRegistered = !up;
        logger.warn({ err: error, key, registered: up }, "cannot update the engine registration");
      },
    );
  };

  const scraper = startEngineScraper({
    url: `${engineUrl}/metrics`,
    intervalMs: config.scrapeIntervalMs,
    failuresBeforeDown: config.engineFailures,
    onFacts(f) {
      facts = f;
      metrics.engineFacts(f);
      load.markChanged();
    },
    onHealth(up, error) {
      metrics.engineUp(up);
      setEngineRegistered(up);
      if (up) {
        logger.info({ engineUrl }, "engine reachable");
        return;
      }
      facts = undefined;
      const failed = sched.failQueued(
        new EngineUnavailableError(`engine at ${engineUrl} is unavailable: ${error?.message ?? "unknown"}`),
      );
      logger.warn(
        { engineUrl, err: error, failedQueued: failed },
        "engine unavailable; queued requests failed",
      );
      load.markChanged();
    },
  });
  readiness.register("engine", () =>
    scraper.up
      ? true
      : { ready: false, detail: `engine at ${engineUrl} does not answer ${engineUrl}/metrics` },
  );

  let proxy: ProxyServer;
  try {
    proxy = await startProxyServer({
      host: config.host,
      port: config.port,
      engineUrl,
      scheduler: sched,
      defaultClass: () => policyNow().defaultClass,
      rejectStatus: () =>
        given("reject-status") ? Number(config.rejectStatus) : policyNow().rejection.httpStatus,
      upstreamTimeoutMs: config.upstreamTimeoutMs,
      maxBodyBytes: config.maxBodyBytes,
      // Before the first scrape answers, requests are let through: the proxy's own connect errors
      // then mark the engine down at once.
      engineUp: () => scraper.up || scraper.last === undefined,
      onEngineUnreachable: (error) => scraper.reportFailure(error),
      onHttpError: (status, code) => metrics.httpError(status, code),
      nowMs: () => performance.now(),
      logger: logger.child({ component: "proxy" }),
    });
  } catch (error) {
    logger.error({ err: error }, "cannot start the proxy server");
    scraper.close();
    load.close();
    sched.close();
    await Promise.allSettled([policies.close(), etcd.close(), nats.close()]);
    await shutdown.shutdown("start-up failed");
    return 1;
  }

  const url = advertisedUrl(config, proxy.url, proxy.port);
  shutdown.register("stop-accepting", "proxy", () => proxy.stopAccepting());
  shutdown.register("drain", "proxy", async ({ signal }) => {
    signal.addEventListener("abort", () => void proxy.close(0), { once: true });
    await proxy.close(config.shutdownTimeoutMs);
  });
  shutdown.register("release", "etcd-lease", async () => {
    await policies.close();
    await etcd.close();
  });
  shutdown.register("close", "nats", async () => {
    scraper.close();
    sched.close();
    // Last events and load snapshot go out before the connection drains.
    afterTurn.close();
    load.close();
    await nats.close();
  });

  const startedAtMs = Date.now();
  try {
    await etcd.register(ROLE, config.id, {
      addresses: { http: url, admin: shell.admin.url },
      version: VERSION,
    });
    engineRegistration = {
      key: etcd.keys.engine(workerId),
      value: JSON.stringify({
        worker_id: workerId,
        model: config.model,
        engine_url: engineUrl,
        scheduler_url: url,
        block_size: config.blockSize,
        kv_total_blocks: config.kvTotalBlocks,
        max_num_seqs: config.maxNumSeqs,
        max_num_batched_tokens: config.maxNumBatchedTokens,
        started_at_ms: startedAtMs,
      }),
    };
    // Registered now unless the engine is already known to be down (then on its recovery).
    if (scraper.up || scraper.last === undefined) {
      engineRegistered = true;
      await etcd.putUnderLease(engineRegistration.key, engineRegistration.value);
    }
  } catch (error) {
    logger.error({ err: error }, "cannot register in etcd");
    await shutdown.terminate("start-up failed", 1);
    return 1;
  }
  logger.info(
    { url, engineUrl, workerId, inEngineLimit: decision.snapshot().inEngineLimit },
    "engine-scheduler listening",
  );

  return {
    url,
    adminUrl: shell.admin.url,
    workerId,
    instanceId: config.id,
    decision,
    scheduler: sched,
    proxy,
    async stop(reason = "stop requested") {
      await shutdown.terminate(reason);
      return exited;
    },
    exited,
  };
}

/** `sluice engine-scheduler [flags]`: runs until SIGTERM/SIGINT and returns the exit code. */
export async function runEngineScheduler(
  argv: string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  return runUntilExit(launchEngineScheduler({ argv, env }));
}

export const engineSchedulerCommand: EngineSchedulerCommand = {
  name: "engine-scheduler",
  summary: SUMMARY,
  run: runEngineScheduler,
};
