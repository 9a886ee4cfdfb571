// `sluice policy <subcommand>`: live per-model policies in etcd (DESIGN §3, §6). Each subcommand
// throws the errors of errors.ts; this file is the one place they become messages and exit codes.

import { ConfigError, KeySegmentError } from "@sluice/runtime";
import type { SluiceCommand } from "../command.js";
import { EXIT_CODES_HELP, type PolicyIo, processIo, type Subcommand } from "./context.js";
import {
  EtcdAccessDeniedError,
  EtcdUnreachableError,
  PolicyCommandError,
  PolicyUsageError,
} from "./errors.js";
import { diffCommand, getCommand, historyCommand, validateCommand } from "./read-commands.js";
import { rollbackCommand, setCommand, shadowCommand } from "./write-commands.js";

const SUBCOMMANDS: readonly Subcommand[] = [
  getCommand,
  setCommand,
  validateCommand,
  diffCommand,
  historyCommand,
  rollbackCommand,
  shadowCommand,
];

function usage(): string {
  const width = Math.max(...SUBCOMMANDS.map((s) => s.name.length));
  return [
    "Usage: sluice policy <subcommand> [flags]",
    "",
    "Per-model admission policies (sluice.v1.Policy) stored in etcd under {prefix}/policies/{model or _default};",
    "every process watches them and applies a new revision at once. See docs/configuration.md for every field.",
    "",
    "Subcommands:",
    ...SUBCOMMANDS.map((s) => `  ${s.name.padEnd(width)}  ${s.summary}`),
    "",
    "Common flags: --model M (default _default), --json, --etcd-endpoints, --etcd-prefix, --etcd-user with",
    "--etcd-password-file (or SLUICE_ETCD_PASSWORD), --etcd-tls-ca/-cert/-key; -f is short for --file.",
    EXIT_CODES_HELP,
    "Run `sluice policy <subcommand> --help` for its flags.",
    "",
  ].join("\n");
}

/** `-f FILE` is the one short flag; the shared flag parser only knows `--name`. */
function expandShortFlags(argv: readonly string[]): string[] {
  return argv.map((a) => (a === "-f" ? "--file" : a.startsWith("-f=") ? `--file=${a.slice(3)}` : a));
}

export async function runPolicy(argv: readonly string[], io: PolicyIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const sub = SUBCOMMANDS.find((s) => s.name === name);
  if (sub === undefined) {
    io.stderr.write(
      `sluice policy: unknown subcommand "${name}"; known: ${SUBCOMMANDS.map((s) => s.name).join(", ")}\n`,
    );
    return 2;
  }
  const prefix = `sluice policy ${name}`;
  try {
    return await sub.run(expandShortFlags(rest), io);
  } catch (err) {
    // KeySegmentError / RangeError: a model name or endpoint list that cannot be used (e.g. from the file).
    if (err instanceof ConfigError || err instanceof KeySegmentError || err instanceof RangeError) {
      io.stderr.write(`${prefix}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof PolicyUsageError) {
      io.stderr.write(`${prefix}: ${err.message}\n${err.details.map((d) => `  ${d}\n`).join("")}`);
      return err.exitCode;
    }
    if (err instanceof EtcdUnreachableError) {
      io.stderr.write(
        `${prefix}: ${err.message}\n  check --etcd-endpoints (or SLUICE_ETCD_ENDPOINTS) and that etcd is running\n`,
      );
      return err.exitCode;
    }
    if (err instanceof EtcdAccessDeniedError) {
      io.stderr.write(`${prefix}: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof PolicyCommandError) {
      io.stderr.write(`${prefix}: ${err.message}\n`);
      return err.exitCode;
    }
    io.stderr.write(`${prefix}: failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

export const policyCommand: SluiceCommand = {
  name: "policy",
  summary: "Get, set, validate, diff, roll back and shadow per-model policies in etcd",
  run: (argv) => runPolicy(argv),
};
