import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { fileURLToPath } from "node:url";

/** How to start `sluice <subcommand>` again: the same Node, loader flags and entry point as this process. */
function sluiceEntry(): { execArgv: string[]; main: string } {
  // Running from TypeScript sources (tests, `tsx`) the entry is main.ts and the loader flags must be
  // passed on; from the build it is dist/main.js.
  const fromSource = import.meta.url.endsWith(".ts");
  const main = fileURLToPath(new URL(fromSource ? "../main.ts" : "../main.js", import.meta.url));
  return { execArgv: process.execArgv, main };
}

export interface ChildSpec {
  /** Role and id, e.g. `mock-engine` / `engine-0`: also the instance key it registers in etcd. */
  readonly role: string;
  readonly id: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * One `sluice` process started by `sluice up`. Its stdout/stderr (JSON logs) go to a file, so the
 * terminal shows the stack's summary rather than interleaved logs of every process.
 */
export class StackChild {
  readonly spec: ChildSpec;
  private readonly proc: ChildProcess;
  private readonly log: WriteStream;
  private readonly exited: Promise<number | null>;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private stopping = false;

  constructor(spec: ChildSpec, onUnexpectedExit: (child: StackChild, why: string) => void) {
    this.spec = spec;
    const { execArgv, main } = sluiceEntry();
    this.log = createWriteStream(spec.logFile, { flags: "a" });
    this.proc = spawn(process.execPath, [...execArgv, main, spec.role, ...spec.args], {
      // SLUICE_PARENT_PID makes the child stop by itself should `up` die without cleaning up.
      env: { ...process.env, ...spec.env, SLUICE_PARENT_PID: String(process.pid) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc.stdout?.pipe(this.log, { end: false });
    this.proc.stderr?.pipe(this.log, { end: false });
    this.exited = new Promise((resolve) => {
      this.proc.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        if (!this.stopping) {
          onUnexpectedExit(this, signal ? `killed by ${signal}` : `exited with code ${code}`);
        }
        resolve(code);
      });
      this.proc.once("error", (err) => {
        this.exitInfo = { code: null, signal: null };
        if (!this.stopping) onUnexpectedExit(this, `could not start: ${err.message}`);
        resolve(null);
      });
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** SIGTERM (graceful: drain, revoke lease), then SIGKILL if it has not exited within `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    if (this.running) {
      this.proc.kill("SIGTERM");
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => this.log.end(resolve));
  }
}
