// Graceful shutdown in ordered phases: stop accepting new work → drain in-flight work (bounded by
// `shutdown-timeout`) → release registrations and leases → close connections. Leases are released only
// after draining so peers keep routing to us exactly as long as we can still answer; connections close
// last because releasing a lease needs the etcd connection.

import type { Logger } from "./logger.js";

export const SHUTDOWN_PHASES = ["stop-accepting", "drain", "release", "close"] as const;
export type ShutdownPhase = (typeof SHUTDOWN_PHASES)[number];

export interface ShutdownHookContext {
  /** Aborted when the phase's bound is hit: stop waiting and abandon the remaining work. */
  signal: AbortSignal;
  reason: string;
}
export type ShutdownHook = (context: ShutdownHookContext) => void | Promise<void>;

export interface ShutdownOutcome {
  /** 0 after a clean shutdown; 1 if a bound was hit or a hook failed. */
  exitCode: 0 | 1;
  drainTimedOut: boolean;
  /** `phase/name` of hooks that threw or did not finish in time. */
  failedHooks: string[];
  reason: string;
}

/** Logger with `fatal`, which only the process-level logger has. */
export type ShutdownLogger = Logger & { fatal(obj: object, msg?: string): void };

export interface ShutdownManagerOptions {
  logger: ShutdownLogger;
  /** Bound on the drain phase (`shutdown-timeout`). */
  shutdownTimeoutMs: number;
  /** Bound on each of the other phases; a hung close must not keep a pod terminating forever. */
  phaseTimeoutMs?: number;
  /** Injected for tests; defaults to `process.exit`. */
  exit?: (code: number) => void;
  /** Source of signals and crash events; defaults to `process`. */
  processLike?: NodeJS.EventEmitter;
}

export const DEFAULT_SHUTDOWN_PHASE_TIMEOUT_MS = 5_000;

export interface ShutdownManager {
  /** Adds a hook to a phase; hooks of one phase run concurrently. Returns a function removing it. */
  register(phase: ShutdownPhase, name: string, hook: ShutdownHook): () => void;
  /** Runs all phases once (later calls return the same promise); does not exit. */
  shutdown(reason: string): Promise<ShutdownOutcome>;
  /** Runs `shutdown` and exits with its code, or with `exitCode` if that is worse. */
  terminate(reason: string, exitCode?: 0 | 1): Promise<void>;
  /** SIGTERM/SIGINT start a graceful shutdown; a second signal exits 1 at once. Returns an uninstaller. */
  installSignalHandlers(): () => void;
  /** uncaughtException → fatal log, best-effort shutdown, exit 1; unhandledRejection → error log. */
  installCrashGuards(): () => void;
  readonly shuttingDown: boolean;
}

export function createShutdownManager(options: ShutdownManagerOptions): ShutdownManager {
  const logger = options.logger;
  const phaseTimeoutMs = options.phaseTimeoutMs ?? DEFAULT_SHUTDOWN_PHASE_TIMEOUT_MS;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const proc = options.processLike ?? process;
  const hooks = new Map<ShutdownPhase, Map<string, ShutdownHook>>(SHUTDOWN_PHASES.map((p) => [p, new Map()]));
  let running: Promise<ShutdownOutcome> | undefined;
  let exiting = false;
  let requestedExitCode = 0;

  const exitOnce = (code: number) => {
    if (exiting) return;
    exiting = true;
    exit(code);
  };

  async function runPhase(phase: ShutdownPhase, reason: string, boundMs: number) {
    const entries = [...(hooks.get(phase) as Map<string, ShutdownHook>)];
    const controller = new AbortController();
    const failed: string[] = [];
    const pending = new Set(entries.map(([name]) => name));
    const started = Date.now();
    logger.info({ phase, hooks: entries.map(([n]) => n), boundMs }, "shutdown phase started");
    const all = Promise.all(
      entries.map(async ([name, hook]) => {
        try {
          await hook({ signal: controller.signal, reason });
          logger.info({ phase, hook: name, durationMs: Date.now() - started }, "shutdown step done");
        } catch (err) {
          failed.push(`${phase}/${name}`);
          logger.error({ phase, hook: name, err }, "shutdown step failed");
        } finally {
          pending.delete(name);
        }
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), boundMs);
    });
    const result = await Promise.race([all.then(() => "done" as const), bound]);
    clearTimeout(timer);
    if (result === "timeout") {
      controller.abort(new Error(`shutdown phase ${phase} exceeded ${boundMs}ms`));
      for (const name of pending) failed.push(`${phase}/${name}`);
      logger.warn(
        { phase, boundMs, unfinished: [...pending] },
        "shutdown phase bound hit; abandoning remaining work",
      );
    }
    return { timedOut: result === "timeout", failed };
  }

  async function run(reason: string): Promise<ShutdownOutcome> {
    logger.info({ reason }, "shutting down");
    const failedHooks: string[] = [];
    let drainTimedOut = false;
    for (const phase of SHUTDOWN_PHASES) {
      const r = await runPhase(phase, reason, phase === "drain" ? options.shutdownTimeoutMs : phaseTimeoutMs);
      failedHooks.push(...r.failed);
      if (phase === "drain") drainTimedOut = r.timedOut;
    }
    const exitCode = failedHooks.length === 0 ? 0 : 1;
    logger.info({ reason, exitCode, drainTimedOut, failedHooks }, "shutdown complete");
    return { exitCode, drainTimedOut, failedHooks, reason };
  }

  const manager: ShutdownManager = {
    get shuttingDown() {
      return running !== undefined;
    },
    register(phase, name, hook) {
      const phaseHooks = hooks.get(phase);
      if (phaseHooks === undefined) throw new TypeError(`unknown shutdown phase "${phase}"`);
      if (phaseHooks.has(name)) throw new Error(`shutdown hook "${phase}/${name}" is already registered`);
      phaseHooks.set(name, hook);
      return () => {
        if (phaseHooks.get(name) === hook) phaseHooks.delete(name);
      };
    },
    shutdown(reason) {
      running ??= run(reason);
      return running;
    },
    async terminate(reason, exitCode = 0) {
      // Sticky: a crash during a signal-initiated shutdown must still end in exit code 1.
      requestedExitCode = Math.max(requestedExitCode, exitCode);
      const outcome = await manager.shutdown(reason);
      exitOnce(Math.max(outcome.exitCode, requestedExitCode));
    },
    installSignalHandlers() {
      const onSignal = (signal: NodeJS.Signals) => {
        if (running !== undefined) {
          logger.warn({ signal }, "second signal during shutdown; exiting now");
          exitOnce(1);
          return;
        }
        logger.info({ signal }, "signal received");
        void manager.terminate(signal);
      };
      proc.on("SIGTERM", onSignal);
      proc.on("SIGINT", onSignal);
      return () => {
        proc.off("SIGTERM", onSignal);
        proc.off("SIGINT", onSignal);
      };
    },
    installCrashGuards() {
      const onUncaught = (err: unknown) => {
        logger.fatal({ err }, "uncaught exception; shutting down");
        void manager.terminate("uncaughtException", 1);
      };
      const onUnhandled = (reason: unknown) => {
        logger.error({ err: reason }, "unhandled promise rejection");
      };
      proc.on("uncaughtException", onUncaught);
      proc.on("unhandledRejection", onUnhandled);
      return () => {
        proc.off("uncaughtException", onUncaught);
        proc.off("unhandledRejection", onUnhandled);
      };
    },
  };
  return manager;
}
