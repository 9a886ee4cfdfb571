import {
  computeBlockHashes,
  createEngineModel,
  type EngineModelOptions,
  type StepResult,
} from "@sluice/core";
import { createRealtimeDriver, type RealtimeDriver } from "./driver.js";
import { type ApiLogger, type ApiServer, startApiServer } from "./http-server.js";
import { createKvEventPublisher, type KvEventPublisher, type Publisher } from "./kv-events.js";
import { createLoadPublisher, type LoadPublisher, type LoadPublisherOptions } from "./load-publisher.js";
import { type ApiOptions, apiOptionsWithDefaults } from "./options.js";
import { createStepStats } from "./step-stats.js";
import { cl100kTokenizer, fillerTokens } from "./tokenizer.js";
import { createVllmMetrics, type MetricsSink } from "./vllm-metrics.js";

/** Everything a running mock engine needs from its process (or a test). */
export interface MockEngineOptions {
  host: string;
  /** 0 = ephemeral; the bound one is in `MockEngine.url`. */
  port: number;
  workerId: string;
  /** Engine time runs `speedup` times faster than wall time. */
  speedup: number;
  engine: Partial<EngineModelOptions>;
  api: ApiOptions;
  /** Where vLLM metrics are registered (the process's prom-client registry through the runtime seam). */
  metrics: MetricsSink;
  /** Prometheus text of the process registry, served on the API port's `/metrics` too. */
  metricsText: () => Promise<{ contentType: string; body: string }>;
  /** The current NATS connection, or undefined while there is none; publishing is skipped then. */
  publisher: () => Publisher | undefined;
  /** NATS subjects of this worker's KV events and load snapshots. */
  kvSubject: string;
  /**
   * Subject of this worker's load snapshots; undefined = publish none (behind an engine-scheduler
   * sidecar, which publishes the worker's load itself on the same subject).
   */
  loadSubject: string | undefined;
  load?: LoadPublisherOptions;
  logger: ApiLogger;
}

export interface MockEngine {
  readonly url: string;
  readonly port: number;
  readonly driver: RealtimeDriver;
  readonly engineOptions: Readonly<EngineModelOptions>;
  readonly kvEvents: KvEventPublisher;
  readonly loadPublisher: LoadPublisher | undefined;
  /** New requests get 503; in-flight ones carry on. */
  stopAccepting(): void;
  /** Stop accepting, let in-flight requests finish for up to `graceMs`, abort the rest, close. */
  close(graceMs: number): Promise<void>;
}

/** Builds the engine model, its real-time driver, the publishers and the OpenAI API server. */
export async function startMockEngine(options: MockEngineOptions): Promise<MockEngine> {
  const api = apiOptionsWithDefaults(options.api);
  const engine = createEngineModel({ ...options.engine, collectKvEvents: true, reportTokens: true });
  const engineOptions = engine.options;
  const metrics = createVllmMetrics(options.metrics, api.model);
  const stats = createStepStats();
  const kvEvents = createKvEventPublisher(options.publisher, options.kvSubject, options.workerId);

  // The load publisher needs the driver's clock and the driver needs the observer: late-bound.
  let loadPublisher: LoadPublisher | undefined;
  const driver = createRealtimeDriver(engine, {
    speedup: options.speedup,
    observer: {
      onStep(result: StepResult) {
        stats.observe(result);
        if (result.kvEvents.length > 0) kvEvents.publish(result.kvEvents);
        metrics.observeLoad(engine.load());
        loadPublisher?.markChanged();
      },
      onLoadChange() {
        metrics.observeLoad(engine.load());
        loadPublisher?.markChanged();
      },
    },
    onListenerError: (error) => options.logger.warn({ err: error }, "delivering engine output failed"),
  });
  const loadSubject = options.loadSubject;
  loadPublisher =
    loadSubject === undefined
      ? undefined
      : createLoadPublisher(
          {
            publisher: options.publisher,
            subject: loadSubject,
            workerId: options.workerId,
            load: () => engine.load(),
            stats,
            engineNowMs: driver.nowMs,
          },
          options.load,
        );
  metrics.observeLoad(engine.load());

  const tokenizer = cl100kTokenizer();
  const { blockSize } = engineOptions;
  let server: ApiServer;
  try {
    server = await startApiServer(options.host, options.port, {
      options: api,
      driver,
      tokenizer,
      fillerTokens: fillerTokens(tokenizer),
      metrics,
      kvCapacityTokens: engineOptions.numGpuBlocks * blockSize,
      hashPrompt: (tokens) => {
        const hashes = computeBlockHashes(tokens, blockSize);
        return { blockHashes: hashes.sequenceHashes, localBlockHashes: hashes.localHashes };
      },
      metricsText: options.metricsText,
      logger: options.logger,
    });
  } catch (error) {
    loadPublisher?.close();
    driver.close();
    throw error;
  }
  const publisherForClose = loadPublisher;
  return {
    url: server.url,
    port: server.port,
    driver,
    engineOptions,
    kvEvents,
    loadPublisher,
    stopAccepting: () => server.stopAccepting(),
    async close(graceMs) {
      await server.close(graceMs);
      publisherForClose?.close();
    },
  };
}
