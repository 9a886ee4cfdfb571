import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { dynamoMockerStepTime, type EngineModelOptions, splitwiseStepTime } from "@sluice/core";
import {
  createEtcdSession,
  createNatsClient,
  createPromMetrics,
  launchProcessShell,
  leaseTtlSecOf,
  type ProcessShell,
  runUntilExit,
  type LaunchOptions as SharedLaunchOptions,
  subjects,
} from "@sluice/runtime";
import { mockEngineSchema } from "./config.js";
import { MockEngineConfigError } from "./errors.js";
import { type MockEngine, startMockEngine } from "./mock-engine.js";

const VERSION = "0.1.0";
const SUMMARY = "Simulated vLLM-like engine serving the OpenAI API in real time";

/** The shape the `sluice` CLI expects of a subcommand. */
export interface MockEngineCommand {
  readonly name: "mock-engine";
  readonly summary: string;
  run(argv: string[], env?: Readonly<Record<string, string | undefined>>): Promise<number>;
}

export type LaunchOptions = SharedLaunchOptions;

/** A started engine process (in this Node process). */
export interface LaunchedMockEngine {
  readonly url: string;
  readonly adminUrl: string;
  readonly workerId: string;
  readonly instanceId: string;
  readonly engine: MockEngine;
  /** Graceful shutdown (as on SIGTERM); resolves with the exit code. */
  stop(reason?: string): Promise<number>;
  /** Resolves with the exit code once the process shell has shut down (SIGTERM, stop, fatal error). */
  readonly exited: Promise<number>;
}

type Config = ProcessShell<typeof mockEngineSchema>["config"];

function engineOptions(config: Config): Partial<EngineModelOptions> {
  let stepTime: EngineModelOptions["stepTime"];
  if (config.stepModel === "splitwise") {
    if (config.splitwiseCsv === "") {
      throw new MockEngineConfigError(
        "--step-model splitwise needs --splitwise-csv <path of perf_model.csv>",
      );
    }
    let csv: string;
    try {
      csv = readFileSync(config.splitwiseCsv, "utf8");
    } catch (error) {
      throw new MockEngineConfigError(`cannot read --splitwise-csv ${config.splitwiseCsv}`, { cause: error });
    }
    stepTime = splitwiseStepTime(csv, {
      model: config.splitwiseModel,
      hardware: config.splitwiseHardware,
      tensorParallel: config.splitwiseTp,
    });
  } else {
    stepTime = dynamoMockerStepTime();
  }
  return {
    numGpuBlocks: config.numGpuBlocks,
    blockSize: config.blockSize,
    maxNumSeqs: config.maxNumSeqs,
    maxNumBatchedTokens: config.maxNumBatchedTokens,
    watermark: config.watermark,
    enablePrefixCaching: config.enablePrefixCaching,
    stepTime,
  };
}

interface EngineRegistrationInput {
  workerId: string;
  model: string;
  url: string;
  blockSize: number;
  kvTotalBlocks: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  startedAtMs: number;
}

/**
 * `engines/{worker_id}`: proto3 JSON (proto field names) of `sluice.v1.EngineRegistration`. Without an
 * engine-scheduler sidecar the engine itself is what ingresses forward to, so `scheduler_url` is the
 * engine's URL too.
 */
function engineRegistrationValue(input: EngineRegistrationInput): object {
  return {
    worker_id: input.workerId,
    model: input.model,
    engine_url: input.url,
    scheduler_url: input.url,
    block_size: input.blockSize,
    kv_total_blocks: input.kvTotalBlocks,
    max_num_seqs: input.maxNumSeqs,
    max_num_batched_tokens: input.maxNumBatchedTokens,
    started_at_ms: input.startedAtMs,
  };
}

function advertisedUrl(config: Config, boundUrl: string, port: number): string {
  if (config.advertiseUrl !== "") return config.advertiseUrl.replace(/\/+$/, "");
  // A wildcard bind is not an address anyone can dial: advertise the host name instead.
  if (config.host === "0.0.0.0" || config.host === "::") return `http://${hostname()}:${port}`;
  return boundUrl;
}

/**
 * Starts `sluice mock-engine` in this process: process shell (config, logs, admin server, shutdown),
 * the engine and its API server, NATS publishing and etcd registration. Returns the exit code instead
 * of a handle when it exits during start-up (`--help` → 0, bad settings → 2, start-up failure → 1).
 */
export async function launchMockEngine(options: LaunchOptions): Promise<LaunchedMockEngine | number> {
  const launched = await launchProcessShell({
    role: "mock-engine",
    schema: mockEngineSchema,
    summary: SUMMARY,
    version: VERSION,
    options,
  });
  if (typeof launched === "number") return launched;
  const { shell, exited } = launched;

  const { config, logger, registry, shutdown, readiness } = shell;
  const stderr = options.stderr ?? process.stderr;
  const workerId = config.workerId === "" ? config.id : config.workerId;

  let engineModelOptions: Partial<EngineModelOptions>;
  try {
    engineModelOptions = engineOptions(config);
  } catch (error) {
    stderr.write(`sluice mock-engine: ${(error as Error).message}\n`);
    await shutdown.shutdown("invalid configuration");
    return 2;
  }

  // Both come up in the background: the engine serves at once and keeps serving through NATS and
  // etcd outages (DESIGN §9); publishes are dropped while NATS is down, registrations are written
  // as soon as a lease exists and again after every lease loss.
  const nats = createNatsClient({
    servers: config.natsUrl,
    ...shell.security.nats, // NATS auth/TLS (issue 9 §4)
    name: `mock-engine-${config.id}`,
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
  const subjectNames = subjects(config.namespace);
  let engine: MockEngine;
  try {
    engine = await startMockEngine({
      host: config.host,
      port: config.port,
      workerId,
      speedup: config.speedup,
      engine: engineModelOptions,
      api: {
        model: config.model,
        maxModelLen: config.maxModelLen,
        defaultMaxTokens: config.defaultMaxTokens,
        forceOutputTokens: config.forceOutputTokens,
        maxBodyBytes: config.maxBodyBytes,
        headersTimeoutMs: Math.min(config.headersTimeoutMs, config.requestTimeoutMs),
        requestTimeoutMs: config.requestTimeoutMs,
      },
      metrics: createPromMetrics(registry, { requiredPrefix: "vllm:" }),
      metricsText: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
      publisher: () => nats,
      kvSubject: subjectNames.engineKv(workerId),
      loadSubject: config.publishLoad ? subjectNames.engineLoad(workerId) : undefined,
      load: { heartbeatIntervalMs: config.loadHeartbeatMs },
      logger: logger.child({ component: "api" }),
    });
  } catch (error) {
    const configError = (error as Error).name.endsWith("ConfigError");
    if (configError) stderr.write(`sluice mock-engine: ${(error as Error).message}\n`);
    else logger.error({ err: error }, "cannot start the mock engine");
    await Promise.allSettled([etcd.close(), nats.close()]);
    await shutdown.shutdown("start-up failed");
    return configError ? 2 : 1;
  }

  const url = advertisedUrl(config, engine.url, engine.port);
  readiness.register("api-server", () => true);
  // Synchronous, so a request arriving after stop()/SIGTERM returns is refused, never half-admitted.
  shutdown.register("stop-accepting", "api-server", () => engine.stopAccepting());
  shutdown.register("drain", "api-server", async ({ signal }) => {
    // In-flight requests may finish until the shutdown bound; when the shell aborts `signal` at the
    // bound, the rest are aborted (their streams cut) and the shell reports exit code 1.
    signal.addEventListener("abort", () => void engine.close(0), { once: true });
    // The own grace outlasts the bound so that the bound (the shell's signal) is what cuts work.
    await engine.close(config.shutdownTimeoutMs + 1_000);
  });
  shutdown.register("release", "etcd-lease", () => etcd.close());
  shutdown.register("close", "nats", () => nats.close());

  const startedAtMs = Date.now();
  const engineOpts = engine.engineOptions;
  // Not awaited: written whenever etcd is reachable (the session logs failures and retries).
  void etcd.register("mock-engine", config.id, {
    addresses: { http: url, admin: shell.admin.url },
    version: VERSION,
  });
  if (config.registerEngine) {
    void etcd.putUnderLease(
      etcd.keys.engine(workerId),
      JSON.stringify(
        engineRegistrationValue({
          workerId,
          model: config.model,
          url,
          blockSize: engineOpts.blockSize,
          kvTotalBlocks: engineOpts.numGpuBlocks,
          maxNumSeqs: engineOpts.maxNumSeqs,
          maxNumBatchedTokens: engineOpts.maxNumBatchedTokens,
          startedAtMs,
        }),
      ),
    );
  }
  logger.info(
    {
      url,
      workerId,
      model: config.model,
      speedup: config.speedup,
      engine: {
        numGpuBlocks: engineOpts.numGpuBlocks,
        blockSize: engineOpts.blockSize,
        maxNumSeqs: engineOpts.maxNumSeqs,
        maxNumBatchedTokens: engineOpts.maxNumBatchedTokens,
        watermark: engineOpts.watermark,
        stepModel: config.stepModel,
      },
    },
    "mock engine listening",
  );

  return {
    url,
    adminUrl: shell.admin.url,
    workerId,
    instanceId: config.id,
    engine,
    async stop(reason = "stop requested") {
      await shutdown.terminate(reason);
      return exited;
    },
    exited,
  };
}

/** `sluice mock-engine [flags]`: runs until SIGTERM/SIGINT and returns the exit code. */
export async function runMockEngine(
  argv: string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  return runUntilExit(launchMockEngine({ argv, env }));
}

export const mockEngineCommand: MockEngineCommand = {
  name: "mock-engine",
  summary: SUMMARY,
  run: runMockEngine,
};
