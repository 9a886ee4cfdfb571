// Shared plumbing of the `sluice policy` subcommands: flag loading with per-subcommand help, the
// policy file, etcd access and output.

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import {
  type ConfigSchema,
  type ConfigValues,
  DEFAULT_POLICY_KEY,
  type EtcdSecurityConfigValues,
  etcdSecurityFromConfig,
  formatPolicyIssue,
  loadConfig,
  type ParsedPolicy,
  PolicyDocumentError,
  type PolicyKeys,
  parsePolicyText,
  policyKeys,
  policyModelOf,
  renderHelp,
} from "@sluice/runtime";
import { PolicyUsageError } from "./errors.js";
import { type EtcdAccess, openEtcdAccess } from "./etcd-access.js";

/** Where a policy command reads its environment and writes its output (injected by tests). */
export interface PolicyIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
}

export function processIo(): PolicyIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

export interface SubcommandSpec<S extends ConfigSchema> {
  readonly name: string;
  /** One line for `sluice policy --help`. */
  readonly summary: string;
  /** Paragraph for `sluice policy <name> --help`. */
  readonly description: string;
  readonly schema: S;
  run(values: ConfigValues<S> & { readonly io: PolicyIo }): Promise<number>;
}

export interface Subcommand {
  readonly name: string;
  readonly summary: string;
  /** Returns the exit code; failures are thrown as the errors of errors.ts. */
  run(argv: readonly string[], io: PolicyIo): Promise<number>;
}

export const EXIT_CODES_HELP =
  "Exit codes: 0 ok, 1 failure (etcd refused the operation, revision compacted, …), " +
  "2 usage or validation error (the message names the field, its value and what is allowed), " +
  "3 etcd unreachable (no answer within 3 s; the endpoints are named), " +
  "4 etcd refused the credentials or the user's role does not allow the operation (--etcd-user).";

export function defineSubcommand<S extends ConfigSchema>(spec: SubcommandSpec<S>): Subcommand {
  return {
    name: spec.name,
    summary: spec.summary,
    run: async (argv, io) => {
      const loaded = loadConfig(spec.schema, { argv, env: io.env });
      if (loaded.kind === "help") {
        io.stdout.write(
          renderHelp(spec.schema, {
            command: `sluice policy ${spec.name}`,
            summary: `${spec.description}\n\n${EXIT_CODES_HELP}`,
          }),
        );
        return 0;
      }
      return spec.run({ ...withModel(loaded.values), io });
    },
  };
}

/**
 * Fills in an omitted --model: the `model` field of the policy file if there is one, else `_default`.
 * A file that cannot be read or parsed yields `_default` here; reading it again reports why.
 */
function withModel<V>(values: V): V {
  const v = values as { model?: unknown; file?: unknown };
  if (v.model !== "") return values;
  let model = DEFAULT_POLICY_KEY;
  if (typeof v.file === "string" && v.file !== "") {
    try {
      model = policyModelOf(readFileSync(resolve(v.file), "utf8")) ?? DEFAULT_POLICY_KEY;
    } catch {
      // unreadable: reported by readPolicyFile
    }
  }
  return { ...values, model };
}

/** Reads and validates a policy file for `model`. @throws PolicyUsageError */
export function readPolicyFile(file: string, model: string): ParsedPolicy {
  if (file === "") throw new PolicyUsageError("a policy file is required: -f FILE (YAML or JSON)");
  let text: string;
  try {
    text = readFileSync(resolve(file), "utf8");
  } catch (err) {
    throw new PolicyUsageError(`cannot read policy file ${file}: ${(err as Error).message}`, [], {
      cause: err,
    });
  }
  return validatePolicyText(text, model, `${file}`);
}

function validatePolicyText(text: string, model: string, what: string): ParsedPolicy {
  try {
    return parsePolicyText(text, { model });
  } catch (err) {
    if (err instanceof PolicyDocumentError) {
      throw new PolicyUsageError(
        `${what} is not a valid policy for ${model} (${err.issues.length} problem${err.issues.length === 1 ? "" : "s"}):`,
        err.issues.map(formatPolicyIssue),
        { cause: err },
      );
    }
    throw err;
  }
}

export interface EtcdValues extends EtcdSecurityConfigValues {
  readonly etcdPrefix: string;
}

/** Opens etcd, runs `fn`, always closes the client. */
export async function withEtcd<T>(
  values: EtcdValues,
  fn: (etcd: EtcdAccess, keys: PolicyKeys) => Promise<T>,
): Promise<T> {
  const keys = policyKeys(values.etcdPrefix);
  const etcd = await openEtcdAccess({
    endpoints: values.etcdEndpoints,
    security: etcdSecurityFromConfig(values),
  });
  try {
    return await fn(etcd, keys);
  } finally {
    etcd.close();
  }
}

/** Prints `data` as JSON with --json, else the text lines. */
export function print(
  v: { readonly json: boolean; readonly io: PolicyIo },
  data: unknown,
  lines: () => readonly string[],
): void {
  v.io.stdout.write(v.json ? `${JSON.stringify(data, null, 2)}\n` : `${lines().join("\n")}\n`);
}

export function indent(text: string, by = "  "): string[] {
  return text.split("\n").map((l) => `${by}${l}`);
}
