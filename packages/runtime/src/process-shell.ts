// The common start-up of every Sluice process: config (with --help and exit code 2 on bad settings),
// logger, metrics registry, admin server, shutdown manager and crash guards. A process's main calls this,
// then attaches its own work: readiness checks, drain hooks, its data-plane servers.

import type { DestinationStream } from "pino";
import type { Registry } from "prom-client";
import type { AdminServer } from "./admin-server.js";
import { startAdminServer } from "./admin-server.js";
import { describeSource, loadConfig } from "./config.js";
import type { CommonSchema } from "./config-common.js";
import { commonSchema } from "./config-common.js";
import { renderHelp } from "./config-help.js";
import type { ConfigSchema, ConfigValues } from "./config-schema.js";
import { mergeSchemas, valueKey } from "./config-schema.js";
import { adminTokenFromConfig, etcdSecurityFromConfig, natsSecurityFromConfig } from "./config-security.js";
import type { ConfigSource } from "./errors.js";
import { ConfigError } from "./errors.js";
import { describeEtcdSecurity, type EtcdSecurity } from "./etcd-auth.js";
import type { ProcessLogger } from "./logger.js";
import { createLogger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import { createMetricsRegistry, createPromMetrics } from "./metrics.js";
import { describeNatsAuth, type NatsAuth, type NatsTlsFiles } from "./nats-auth.js";
import type { Readiness } from "./readiness.js";
import { createReadiness } from "./readiness.js";
import type { ShutdownManager } from "./shutdown.js";
import { createShutdownManager } from "./shutdown.js";

export interface ProcessShellOptions<S extends ConfigSchema> {
  /** `ingress`, `router`, `engine-scheduler`, … — the `role` field of every log line and metric. */
  role: string;
  /** The role's own settings; the common settings (commonSchema) are merged in. */
  schema: S;
  argv?: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  /** For --help; defaults to `sluice <role>`. */
  command?: string;
  summary?: string;
  /** Reported by `sluice_build_info`. */
  version?: string;
  /** Injected for tests; default process.stdout / process.stderr / process.exit / stdout logging. */
  stdout?: { write(text: string): unknown };
  stderr?: { write(text: string): unknown };
  exit?: (code: number) => never;
  logDestination?: DestinationStream;
}

/** Checked NATS and etcd credentials, ready to spread into `createNatsClient` / pass to `createEtcdSession`. */
export interface ProcessSecurity {
  readonly nats: { readonly auth?: NatsAuth; readonly tls?: NatsTlsFiles };
  readonly etcd: EtcdSecurity;
}

export interface ProcessShell<S extends ConfigSchema> {
  config: ConfigValues<CommonSchema> & ConfigValues<S>;
  /** Where each setting came from, keyed by setting name. */
  sources: Readonly<Record<string, ConfigSource>>;
  security: ProcessSecurity;
  logger: ProcessLogger;
  registry: Registry;
  metrics: Metrics;
  readiness: Readiness;
  admin: AdminServer;
  shutdown: ShutdownManager;
}

export async function startProcessShell<S extends ConfigSchema>(
  options: ProcessShellOptions<S>,
): Promise<ProcessShell<S>> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const command = options.command ?? `sluice ${options.role}`;
  const schema = mergeSchemas(commonSchema, options.schema);

  let loaded: ReturnType<typeof loadConfig<typeof schema>>;
  try {
    loaded = loadConfig(schema, {
      argv: options.argv ?? process.argv.slice(2),
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stderr.write(`${command}: ${err.message}\n`);
    return exit(2);
  }
  if (loaded.kind === "help") {
    stdout.write(renderHelp(schema, { command, ...(options.summary ? { summary: options.summary } : {}) }));
    return exit(0);
  }
  const config = loaded.values as unknown as ConfigValues<CommonSchema> & ConfigValues<S>;
  // Credentials are checked (files read) before anything starts: a missing Secret is a config error.
  let security: ProcessSecurity;
  let adminToken: string | undefined;
  try {
    security = { nats: natsSecurityFromConfig(config), etcd: etcdSecurityFromConfig(config) };
    adminToken = adminTokenFromConfig(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stderr.write(`${command}: ${err.message}\n`);
    return exit(2);
  }

  const logger = createLogger({
    role: options.role,
    id: config.id,
    level: config.logLevel,
    ...(options.logDestination ? { destination: options.logDestination } : {}),
  });
  const shutdown = createShutdownManager({
    logger,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    exit: (code) => exit(code),
  });
  shutdown.installCrashGuards();
  for (const warning of loaded.warnings) logger.warn({}, warning);
  logger.info(
    {
      config: printableConfig(schema, loaded.values),
      sources: sourceSummary(loaded.sources),
      access: {
        nats: `${describeNatsAuth(security.nats.auth)}, ${security.nats.tls === undefined ? "no TLS" : "TLS"}`,
        etcd: describeEtcdSecurity(security.etcd),
        admin: adminToken === undefined ? "open" : "bearer token (except /healthz, /readyz)",
      },
    },
    "configuration loaded",
  );

  const registry = createMetricsRegistry({ role: options.role, version: options.version ?? "dev" });
  const metrics = createPromMetrics(registry);
  const readiness = createReadiness();
  readiness.register("not-shutting-down", () =>
    shutdown.shuttingDown ? { ready: false, detail: "shutting down" } : true,
  );

  let admin: AdminServer;
  try {
    admin = await startAdminServer({
      host: config.adminHost,
      port: config.adminPort,
      registry,
      readiness,
      ...(adminToken === undefined ? {} : { bearerToken: adminToken }),
      logger: logger.child({ component: "admin" }),
    });
  } catch (err) {
    logger.fatal({ err }, "cannot start admin server");
    return exit(1);
  }
  shutdown.register("close", "admin-server", () => admin.close());
  shutdown.installSignalHandlers();
  logger.info({ admin: admin.url }, "admin server listening");
  return {
    config,
    sources: loaded.sources,
    security,
    logger,
    registry,
    metrics,
    readiness,
    admin,
    shutdown,
  };
}

/** Effective config for the start-up log: secrets masked, credentials stripped from URLs. */
function printableConfig(schema: ConfigSchema, values: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(schema)) {
    const v = (values as Record<string, unknown>)[valueKey(name, setting)];
    out[name] = setting.secret ? "[redacted]" : typeof v === "string" ? maskUrlCredentials(v) : v;
  }
  return out;
}

function sourceSummary(sources: Readonly<Record<string, ConfigSource>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, source] of Object.entries(sources)) {
    if (source.kind !== "default") out[name] = describeSource(source);
  }
  return out;
}

/** `nats://user:pw@host:4222` → `nats://user:***@host:4222`, for every comma-separated URL. */
export function maskUrlCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s,]*:)[^@/\s,]*@/gi, "$1***@");
}
