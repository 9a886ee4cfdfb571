// Starting a Sluice process *inside* this Node process (its `sluice <role>` command, and tests that
// launch several processes side by side): the process shell with an injected `exit` that records the
// exit code instead of ending Node, so --help, bad settings and start-up failures come back as a code
// and a graceful stop resolves `exited` instead of killing the test runner.

import type { DestinationStream } from "pino";
import type { ConfigSchema } from "./config-schema.js";
import type { ProcessShell } from "./process-shell.js";
import { startProcessShell } from "./process-shell.js";

/** What a caller passes to a process's `launch*` function. */
export interface LaunchOptions {
  argv: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  /** Injected for tests; default process.stdout / stderr / JSON logs on stdout. */
  stdout?: { write(text: string): unknown };
  stderr?: { write(text: string): unknown };
  logDestination?: DestinationStream;
}

export interface LaunchProcessShellOptions<S extends ConfigSchema> {
  role: string;
  schema: S;
  summary: string;
  /** Reported by `sluice_build_info`. */
  version: string;
  options: LaunchOptions;
}

export interface LaunchedProcessShell<S extends ConfigSchema> {
  shell: ProcessShell<S>;
  /** Resolves with the exit code once the shell has shut down (SIGTERM, stop, fatal error). */
  exited: Promise<number>;
}

/**
 * Starts the process shell of `sluice <role>`. Returns the exit code instead of a shell when the
 * process ends during start-up (`--help` → 0, bad settings → 2, admin server failure → 1).
 */
export async function launchProcessShell<S extends ConfigSchema>(
  launch: LaunchProcessShellOptions<S>,
): Promise<LaunchedProcessShell<S> | number> {
  const { options } = launch;
  let exitCode: number | undefined;
  let resolveExited: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => {
    resolveExited = resolve;
  });
  // The first code wins: a shutdown triggered by a fatal error keeps its code through later exits.
  const exit = ((code: number) => {
    exitCode ??= code;
    resolveExited(exitCode);
  }) as (code: number) => never;

  // With this `exit`, the shell returns (undefined) instead of exiting on --help or a config error.
  const shell = (await startProcessShell({
    role: launch.role,
    schema: launch.schema,
    argv: options.argv,
    ...(options.env ? { env: options.env } : {}),
    command: `sluice ${launch.role}`,
    version: launch.version,
    summary: launch.summary,
    exit,
    ...(options.stdout ? { stdout: options.stdout } : {}),
    ...(options.stderr ? { stderr: options.stderr } : {}),
    ...(options.logDestination ? { logDestination: options.logDestination } : {}),
  })) as ProcessShell<S> | undefined;
  if (shell === undefined || exitCode !== undefined) return exitCode ?? 1;
  return { shell, exited };
}

/** For a command's `run`: the exit code of a launch, once the launched process has stopped. */
export async function runUntilExit(
  launched: Promise<{ readonly exited: Promise<number> } | number>,
): Promise<number> {
  const result = await launched;
  return typeof result === "number" ? result : result.exited;
}
