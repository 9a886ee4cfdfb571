import "./dispose.js";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ServerStartError, UnsupportedOnExternalServerError } from "./errors.js";
import { ServerProcess } from "./server-process.js";

/** Options shared by every launcher. */
export interface ServerLaunchOptions {
  /** Interface to bind. Default `127.0.0.1`. */
  readonly host?: string;
  /**
   * Data directory to use and keep (e.g. for `sluice up`). Default: a fresh temp dir that is
   * removed on dispose.
   */
  readonly dataDir?: string;
  /** Binary name or path. Default `nats-server` / `etcd`. */
  readonly binary?: string;
  /** Environment for the server and for PATH lookup, and where the `SLUICE_TEST_*` override is read. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Honour `SLUICE_TEST_NATS_URL` / `SLUICE_TEST_ETCD_ENDPOINTS`. Default true; `sluice up` passes false. */
  readonly allowExternal?: boolean;
  /** Default 20000: a cold etcd on a busy 2-core CI box can take several seconds. */
  readonly readyTimeoutMs?: number;
  /** After SIGTERM, how long to wait before SIGKILL. Default 5000. */
  readonly stopTimeoutMs?: number;
}

export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_READY_TIMEOUT_MS = 20_000;
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;
const PORT_CLASH_RETRIES = 3;

/** Lifecycle of a started (or external) server. */
export interface ServerHandle extends AsyncDisposable {
  /** True when this handle points at a server from the environment; stop/start/restart/kill then throw. */
  readonly external: boolean;
  /** Why lifecycle operations are unavailable, for `t.skip(reason)`; undefined when they work. */
  readonly lifecycleUnsupportedReason: string | undefined;
  readonly dataDir: string | undefined;
  readonly logFile: string | undefined;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Graceful stop (SIGTERM, then SIGKILL after the stop timeout). Ports and data dir are kept. */
  stop(): Promise<void>;
  /** Starts again after stop()/kill() on the same ports and data dir. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** Stops the server and removes its temp dir (not a caller-supplied dataDir). Idempotent. */
  dispose(): Promise<void>;
}

interface LaunchPlan {
  readonly args: readonly string[];
  readonly probeReady: () => Promise<boolean>;
}

export interface LaunchParams<Ports> {
  readonly binary: string;
  readonly envOverrideName: string;
  readonly options: ServerLaunchOptions;
  /** Ports to use; called again (new ports) when a start fails because a port was taken meanwhile. */
  readonly pickPorts: () => Promise<Ports>;
  /** False when the caller fixed the ports, so a clash is reported instead of retried. */
  readonly portsArePicked: boolean;
  readonly plan: (ports: Ports, dataDir: string) => LaunchPlan;
}

export interface Launched<Ports> {
  readonly handle: ServerHandle;
  readonly ports: Ports;
}

function isPortClash(err: unknown): boolean {
  return err instanceof ServerStartError && /address already in use/i.test(err.logTail);
}

/** Starts a server process per `params` and wraps it in a {@link ServerHandle}. */
export async function launchServer<Ports>(params: LaunchParams<Ports>): Promise<Launched<Ports>> {
  const { options } = params;
  const ownsDir = options.dataDir === undefined;
  const dataDir =
    options.dataDir ?? mkdtempSync(join(tmpdir(), `sluice-${params.binary.replace(/\W/g, "")}-`));
  mkdirSync(dataDir, { recursive: true });
  const logFile = join(dataDir, "server.log");
  const removeDir = (): void => {
    if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
  };

  let attempt = 0;
  for (;;) {
    attempt += 1;
    const ports = await params.pickPorts();
    const plan = params.plan(ports, dataDir);
    const proc = new ServerProcess({
      binary: params.binary,
      envOverrideName: params.envOverrideName,
      args: plan.args,
      logFile,
      env: options.env ?? process.env,
      probeReady: plan.probeReady,
      readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
      stopTimeoutMs: options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
    });
    try {
      await proc.start();
    } catch (err) {
      if (params.portsArePicked && attempt < PORT_CLASH_RETRIES && isPortClash(err)) continue;
      removeDir();
      throw err;
    }
    return { handle: processHandle(proc, dataDir, logFile, removeDir), ports };
  }
}

function processHandle(
  proc: ServerProcess,
  dataDir: string,
  logFile: string,
  removeDir: () => void,
): ServerHandle {
  let disposed = false;
  const dispose = async (): Promise<void> => {
    if (disposed) return;
    disposed = true;
    await proc.stop();
    removeDir();
  };
  const ensureLive = (): void => {
    if (disposed) throw new Error(`server ${logFile} was disposed`);
  };
  return {
    external: false,
    lifecycleUnsupportedReason: undefined,
    dataDir,
    logFile,
    get pid() {
      return proc.pid;
    },
    get running() {
      return proc.running;
    },
    stop: () => proc.stop(),
    start: async () => {
      ensureLive();
      await proc.start();
    },
    restart: async () => {
      ensureLive();
      await proc.stop();
      await proc.start();
    },
    kill: () => proc.kill(),
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}

/** A handle for a server that someone else runs: only the address is known. */
export function externalHandle(envName: string, value: string): ServerHandle {
  const reason = `${envName}=${value} points at an external server, which this test cannot stop or restart`;
  const unsupported = (): Promise<never> => Promise.reject(new UnsupportedOnExternalServerError(reason));
  return {
    external: true,
    lifecycleUnsupportedReason: reason,
    dataDir: undefined,
    logFile: undefined,
    pid: undefined,
    running: true,
    stop: unsupported,
    start: unsupported,
    restart: unsupported,
    kill: unsupported,
    dispose: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}
