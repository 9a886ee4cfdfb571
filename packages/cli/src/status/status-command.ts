// `sluice status [--watch] [--json]`: one picture of the running cluster for an operator.

import { DEFAULT_EVENTS_STREAM } from "@sluice/aggregator";
import {
  ConfigError,
  commonSchema,
  defineSchema,
  etcdSecurityFromConfig,
  loadConfig,
  natsSecurityFromConfig,
  renderHelp,
  sluiceKeys,
  subjects,
} from "@sluice/runtime";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type SluiceCommand } from "../command.js";
import { etcdClientSecuritySchema, natsClientSecuritySchema } from "../events/client-security.js";
import {
  connectEtcdWithDeadline,
  connectNatsWithDeadline,
  DEFAULT_CONNECT_DEADLINE_MS,
} from "../events/connect-deadline.js";
import { EXIT_UNREACHABLE, SharedStateUnreachableError } from "../events/errors.js";
import { gatherStatus } from "./status-gather.js";
import { renderStatus } from "./status-render.js";

export const statusSchema = defineSchema({
  namespace: commonSchema.namespace,
  "nats-url": commonSchema["nats-url"],
  "etcd-endpoints": commonSchema["etcd-endpoints"],
  "etcd-prefix": commonSchema["etcd-prefix"],
  ...natsClientSecuritySchema,
  ...etcdClientSecuritySchema,
  watch: { type: "boolean", default: false, description: "Redraw every --interval until interrupted." },
  json: {
    type: "boolean",
    default: false,
    description: "Print the report as JSON (one object per refresh).",
  },
  interval: {
    type: "duration",
    defaultMs: 1_000,
    minMs: 100,
    maxMs: 3_600_000,
    description: "Refresh period of --watch.",
  },
  sample: {
    type: "duration",
    defaultMs: 1_100,
    minMs: 50,
    maxMs: 60_000,
    description: "How long engine load and cluster.load are listened to (at least one engine heartbeat).",
  },
  stream: {
    type: "string",
    default: DEFAULT_EVENTS_STREAM,
    pattern: /[A-Za-z0-9_-]+/,
    patternText: "a JetStream stream name",
    description: "JetStream stream of decision events, for the recent rejection reasons.",
  },
});

const SUMMARY =
  "Shows instances per role, engines with capacity and observed load, predicted load, headroom per class, " +
  "rejection reasons of the last minute and TTFT prediction error. Exit codes: 0 ok, 1 failure, 2 bad flags, " +
  "3 NATS or etcd unreachable.";

const REJECTION_WINDOW_MS = 60_000;
const SCRAPE_TIMEOUT_MS = 1_000;

export const statusCommand: SluiceCommand = {
  name: "status",
  summary: "Show the cluster's instances, engines, load and headroom",
  run: (argv) => runStatus(argv),
};

export interface StatusIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Readonly<Record<string, string | undefined>>;
  signal?: AbortSignal;
}

export async function runStatus(argv: string[], io: Partial<StatusIo> = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let loaded: ReturnType<typeof loadConfig<typeof statusSchema>>;
  try {
    loaded = loadConfig(statusSchema, { argv, ...(io.env ? { env: io.env } : {}) });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stderr.write(`sluice status: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (loaded.kind === "help") {
    stdout.write(renderHelp(statusSchema, { command: "sluice status", summary: SUMMARY }));
    return EXIT_OK;
  }
  const config = loaded.values;
  let natsSecurity: ReturnType<typeof natsSecurityFromConfig>;
  let etcdSecurity: ReturnType<typeof etcdSecurityFromConfig>;
  try {
    natsSecurity = natsSecurityFromConfig(config);
    etcdSecurity = etcdSecurityFromConfig(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stderr.write(`sluice status: ${err.message}\n`);
    return EXIT_USAGE;
  }

  // Both at once, settled both: a side that connects while the other fails must still be closed.
  const [etcdResult, natsResult] = await Promise.allSettled([
    connectEtcdWithDeadline(config.etcdEndpoints, DEFAULT_CONNECT_DEADLINE_MS, etcdSecurity),
    connectNatsWithDeadline(config.natsUrl, "sluice-status", DEFAULT_CONNECT_DEADLINE_MS, natsSecurity),
  ]);
  if (etcdResult.status === "rejected" || natsResult.status === "rejected") {
    if (etcdResult.status === "fulfilled") etcdResult.value.close();
    if (natsResult.status === "fulfilled") await natsResult.value.close();
    for (const r of [etcdResult, natsResult]) {
      if (r.status !== "rejected") continue;
      if (!(r.reason instanceof SharedStateUnreachableError)) throw r.reason;
      stderr.write(`sluice status: ${r.reason.message}\n`);
    }
    return EXIT_UNREACHABLE;
  }
  const etcd = etcdResult.value;
  const nc = natsResult.value;

  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  if (io.signal === undefined) {
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  } else io.signal.addEventListener("abort", onSignal, { once: true });
  try {
    do {
      const startedMs = Date.now();
      const report = await gatherStatus({
        etcd,
        nc,
        keys: sluiceKeys(config.etcdPrefix),
        subjects: subjects(config.namespace),
        namespace: config.namespace,
        stream: config.stream,
        sampleMs: config.sampleMs,
        rejectionWindowMs: REJECTION_WINDOW_MS,
        scrapeTimeoutMs: SCRAPE_TIMEOUT_MS,
      });
      if (config.json) stdout.write(`${JSON.stringify(report)}\n`);
      else stdout.write(`${config.watch ? "\x1b[2J\x1b[H" : ""}${renderStatus(report)}`);
      if (!config.watch) break;
      const waitMs = Math.max(0, config.intervalMs - (Date.now() - startedMs));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        abort.signal.addEventListener(
          "abort",
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    } while (!abort.signal.aborted);
    return EXIT_OK;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    stderr.write(`sluice status: ${reason}\n`);
    return /unavailable|connect|timed out|deadline/i.test(reason) ? EXIT_UNREACHABLE : EXIT_FAILURE;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    etcd.close();
    await nc.close().catch(() => undefined);
  }
}
