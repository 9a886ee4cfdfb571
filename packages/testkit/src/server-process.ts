import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { ServerNotInstalledError, ServerStartError } from "./errors.js";

/** How to run and probe one server binary. */
export interface ServerProcessSpec {
  /** Binary name or path, looked up on `env.PATH`. */
  readonly binary: string;
  /** Env variable that points tests at an existing server instead; named in "not installed" errors. */
  readonly envOverrideName: string;
  readonly args: readonly string[];
  /** stdout and stderr of the server are appended here (kept across restarts). */
  readonly logFile: string;
  readonly env: NodeJS.ProcessEnv;
  /** Resolves `true` once the server serves requests. Must not reject. */
  readonly probeReady: () => Promise<boolean>;
  readonly readyTimeoutMs: number;
  /** After SIGTERM, how long to wait before SIGKILL. */
  readonly stopTimeoutMs: number;
}

const PROBE_INTERVAL_MS = 50;
const LOG_TAIL_BYTES = 4096;
const LOG_TAIL_LINES = 25;

/** The last lines of a log file, or "" if it cannot be read. */
export function readLogTail(logFile: string): string {
  try {
    const size = statSync(logFile).size;
    const text = readFileSync(logFile)
      .subarray(Math.max(0, size - LOG_TAIL_BYTES))
      .toString("utf8");
    return text.trimEnd().split("\n").slice(-LOG_TAIL_LINES).join("\n");
  } catch {
    return "";
  }
}

/**
 * One server child process that can be started, stopped and started again with the same
 * arguments. The child runs in its own process group so that stop/kill reach anything it forks,
 * and a synchronous `exit` hook kills it if the parent dies without disposing (no orphans left
 * holding ports for the next test run).
 */
export class ServerProcess {
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  readonly #spec: ServerProcessSpec;
  readonly #killOnParentExit = (): void => this.#signalGroup("SIGKILL");

  constructor(spec: ServerProcessSpec) {
    this.#spec = spec;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Spawns the server and resolves once `probeReady` succeeds; rejects with the log tail if it exits first. */
  async start(): Promise<void> {
    if (this.#child !== undefined) throw new Error(`${this.#spec.binary} is already running`);
    const logFd = openSync(this.#spec.logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(this.#spec.binary, [...this.#spec.args], {
        detached: true,
        stdio: ["ignore", logFd, logFd],
        env: this.#spec.env,
      });
    } finally {
      closeSync(logFd);
    }
    this.#child = child;
    process.on("exit", this.#killOnParentExit);
    let exitInfo: string | undefined;
    let spawnError: Error | undefined;
    this.#exited = new Promise<void>((resolve) => {
      const settle = (info: string): void => {
        exitInfo ??= info;
        if (this.#child === child) this.#child = undefined;
        process.off("exit", this.#killOnParentExit);
        resolve();
      };
      child.once("error", (err) => {
        spawnError = err;
        settle(`failed to spawn: ${err.message}`);
      });
      child.once("exit", (code, signal) => settle(`exited with ${signal ?? `code ${code}`}`));
    });

    const deadline = Date.now() + this.#spec.readyTimeoutMs;
    for (;;) {
      if (exitInfo !== undefined) {
        if ((spawnError as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
          throw new ServerNotInstalledError(this.#spec.binary, this.#spec.envOverrideName, {
            cause: spawnError,
          });
        }
        throw new ServerStartError(
          `${this.#spec.binary} ${exitInfo} before it became ready (log: ${this.#spec.logFile})`,
          readLogTail(this.#spec.logFile),
          { cause: spawnError },
        );
      }
      if (await this.#spec.probeReady()) return;
      if (Date.now() > deadline) {
        const tail = readLogTail(this.#spec.logFile);
        await this.kill();
        throw new ServerStartError(
          `${this.#spec.binary} did not become ready within ${this.#spec.readyTimeoutMs} ms (log: ${this.#spec.logFile})`,
          tail,
        );
      }
      await Promise.race([sleep(PROBE_INTERVAL_MS), this.#exited]);
    }
  }

  /** SIGTERM to the process group, SIGKILL if it has not exited after `stopTimeoutMs`. */
  async stop(): Promise<void> {
    if (this.#child === undefined) return;
    this.#signalGroup("SIGTERM");
    const timedOut = await Promise.race([
      this.#exited.then(() => false),
      sleep(this.#spec.stopTimeoutMs).then(() => true),
    ]);
    if (timedOut) await this.kill();
  }

  /** SIGKILL to the process group: a crash, no chance to flush or say goodbye. */
  async kill(): Promise<void> {
    if (this.#child === undefined) return;
    this.#signalGroup("SIGKILL");
    await this.#exited;
  }

  #signalGroup(signal: NodeJS.Signals): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // Group already gone (ESRCH); fall back to the process itself in case it left its group.
      try {
        process.kill(pid, signal);
      } catch {
        // Already exited: nothing to signal.
      }
    }
  }
}
