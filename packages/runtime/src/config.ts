// Loads a process's configuration from flags > env > config file > documented defaults.
// Every invalid or unknown input is a ConfigError naming the setting, the value and what is allowed;
// the caller (process-shell.ts) turns that into exit code 2.

import { readFileSync } from "node:fs";
import { extname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import type { ConfigSchema, ConfigValues, Setting } from "./config-schema.js";
import { camelCase, envVarName, valueKey } from "./config-schema.js";
import type { ParsedValue } from "./config-values.js";
import { parseSettingValue } from "./config-values.js";
import type { ConfigSource } from "./errors.js";
import { ConfigError } from "./errors.js";

/** Env var naming the config file when `--config` is not given. */
export const CONFIG_FILE_ENV = "SLUICE_CONFIG";
const ENV_PREFIX = "SLUICE_";

export interface LoadConfigOptions {
  /** Arguments after the subcommand (no `node`, no script path). */
  argv: readonly string[];
  /** Injected so tests pass a literal; defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Base for a relative `--config` path; defaults to `process.cwd()`. */
  cwd?: string;
  /** Accept non-flag arguments (returned as `positionals`) instead of rejecting them. */
  allowPositionals?: boolean;
}

export type LoadedConfig<S extends ConfigSchema> =
  | { kind: "help" }
  | {
      kind: "config";
      values: ConfigValues<S>;
      /** Where each setting's effective value came from, keyed by setting name. */
      sources: Readonly<Record<string, ConfigSource>>;
      /** Absolute path of the config file read, if any. */
      configFile: string | undefined;
      positionals: readonly string[];
      /** Non-fatal findings (unknown SLUICE_* env vars) to log once a logger exists. */
      warnings: readonly string[];
    };

interface RawValue {
  raw: unknown;
  source: ConfigSource;
}

export function loadConfig<S extends ConfigSchema>(schema: S, options: LoadConfigOptions): LoadedConfig<S> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const args = parseArgv(schema, options.argv, options.allowPositionals ?? false);
  if (args.help) return { kind: "help" };

  const warnings: string[] = [];
  const fileName = args.configFile ?? nonEmpty(env[CONFIG_FILE_ENV]);
  const configFile = fileName === undefined ? undefined : resolve(cwd, fileName);
  const fileValues =
    configFile === undefined ? new Map<string, RawValue>() : readConfigFile(schema, configFile);
  const envValues = readEnv(schema, env, warnings);

  const values: Record<string, ParsedValue> = {};
  const sources: Record<string, ConfigSource> = {};
  for (const [name, setting] of Object.entries(schema)) {
    // Every present source is validated, even an overridden one: a typo in the file should not stay
    // hidden until the day the flag that masks it is removed.
    let chosen: { value: ParsedValue; source: ConfigSource } | undefined;
    for (const candidate of [fileValues.get(name), envValues.get(name), ...(args.values.get(name) ?? [])]) {
      if (candidate === undefined) continue;
      chosen = { value: parseOrThrow(name, setting, candidate), source: candidate.source };
    }
    const key = valueKey(name, setting);
    values[key] = chosen?.value ?? defaultValue(setting);
    sources[name] = chosen?.source ?? { kind: "default" };
  }
  return {
    kind: "config",
    values: values as ConfigValues<S>,
    sources,
    configFile,
    positionals: args.positionals,
    warnings,
  };
}

export function defaultValue(setting: Setting): ParsedValue {
  switch (setting.type) {
    case "duration":
      return setting.defaultMs;
    case "string":
      return typeof setting.default === "function" ? setting.default() : setting.default;
    case "list":
      return [...setting.default];
    default:
      return setting.default;
  }
}

/** `flag --nats-url`, `env SLUICE_NATS_URL`, `config file /etc/sluice.yaml (key "natsUrl")`. */
export function describeSource(source: ConfigSource): string {
  switch (source.kind) {
    case "flag":
      return `flag ${source.flag}`;
    case "env":
      return `env ${source.variable}`;
    case "file":
      return source.key === undefined
        ? `config file ${source.file}`
        : `config file ${source.file} (key "${source.key}")`;
    case "default":
      return "default";
  }
}

function parseOrThrow(name: string, setting: Setting, candidate: RawValue): ParsedValue {
  const r = parseSettingValue(setting, candidate.raw);
  if (r.ok) return r.value;
  throw new ConfigError(
    `invalid value ${JSON.stringify(candidate.raw)} for setting "${name}" from ${describeSource(candidate.source)}: expected ${r.allowed}`,
    { setting: name, value: candidate.raw, allowed: r.allowed, source: candidate.source },
  );
}

interface ParsedArgs {
  help: boolean;
  configFile: string | undefined;
  /** Per setting, every occurrence in order (the last wins; list flags are concatenated). */
  values: Map<string, RawValue[]>;
  positionals: string[];
}

function parseArgv(schema: ConfigSchema, argv: readonly string[], allowPositionals: boolean): ParsedArgs {
  const out: ParsedArgs = { help: false, configFile: undefined, values: new Map(), positionals: [] };
  const endOfFlags = argv.indexOf("--");
  const flagArgs = endOfFlags === -1 ? argv : argv.slice(0, endOfFlags);
  // --help wins over everything else so a broken command line can still ask for help.
  if (flagArgs.includes("--help") || flagArgs.includes("-h")) return { ...out, help: true };

  for (let i = 0; i < flagArgs.length; i++) {
    const arg = flagArgs[i] as string;
    if (!arg.startsWith("-") || arg === "-") {
      if (!allowPositionals) {
        throw new ConfigError(
          `unexpected argument ${JSON.stringify(arg)}; settings are given as --name value`,
          {
            value: arg,
          },
        );
      }
      out.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const name = flag.startsWith("--") ? flag.slice(2) : "";
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const next = flagArgs[i + 1];
      // `--admin-host --admin-port 1` is a forgotten value, not a host named "--admin-port".
      if (next === undefined || next.startsWith("--")) {
        throw new ConfigError(`flag ${flag} needs a value`, { setting: name });
      }
      i++;
      return next;
    };

    if (name === "config") {
      out.configFile = takeValue();
      continue;
    }
    const setting = schema[name];
    if (setting?.noFlag === true) {
      throw new ConfigError(
        `${flag} is not accepted on the command line, where every local user can read it (ps); set ${envVarName(name)}${
          schema[`${name}-file`] === undefined ? "" : ` or pass --${name}-file`
        } instead`,
        { setting: name },
      );
    }
    if (setting !== undefined) {
      // A bare boolean flag means true and never swallows the next argument.
      const raw = setting.type === "boolean" && inline === undefined ? "true" : takeValue();
      pushValue(out.values, name, setting, { raw, source: { kind: "flag", flag } });
      continue;
    }
    const negated = name.startsWith("no-") ? name.slice(3) : undefined;
    if (negated !== undefined && schema[negated]?.type === "boolean" && inline === undefined) {
      pushValue(out.values, negated, schema[negated], { raw: "false", source: { kind: "flag", flag } });
      continue;
    }
    throw new ConfigError(`unknown flag ${flag}${suggest(name, Object.keys(schema), "--")}; see --help`, {
      value: flag,
    });
  }
  if (endOfFlags !== -1) {
    const rest = argv.slice(endOfFlags + 1);
    if (rest.length > 0 && !allowPositionals) {
      throw new ConfigError(`unexpected arguments after "--": ${rest.join(" ")}`, { value: rest });
    }
    out.positionals.push(...rest);
  }
  return out;
}

function pushValue(values: Map<string, RawValue[]>, name: string, setting: Setting, v: RawValue): void {
  const list = values.get(name) ?? [];
  if (setting.type === "list" && list.length > 0) {
    // Repeated list flags accumulate: --etcd-endpoints a --etcd-endpoints b,c → [a, b, c].
    const prev = list[list.length - 1] as RawValue;
    list[list.length - 1] = { raw: `${String(prev.raw)},${String(v.raw)}`, source: v.source };
  } else list.push(v);
  values.set(name, list);
}

function readEnv(
  schema: ConfigSchema,
  env: Readonly<Record<string, string | undefined>>,
  warnings: string[],
): Map<string, RawValue> {
  const byVar = new Map(Object.keys(schema).map((name) => [envVarName(name), name]));
  const out = new Map<string, RawValue>();
  for (const [variable, raw] of Object.entries(env)) {
    if (!variable.startsWith(ENV_PREFIX) || variable === CONFIG_FILE_ENV) continue;
    const name = byVar.get(variable);
    if (name === undefined) {
      // Other tools share the prefix, so an unknown one is only worth a warning.
      warnings.push(`ignoring unknown environment variable ${variable}`);
      continue;
    }
    // An empty variable is how shells and compose files "unset" a value; treat it as absent.
    if (raw === undefined || raw === "") continue;
    out.set(name, { raw, source: { kind: "env", variable } });
  }
  return out;
}

function readConfigFile(schema: ConfigSchema, file: string): Map<string, RawValue> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`cannot read config file ${file}: ${code ?? String(err)}`, {}, { cause: err });
  }
  let doc: unknown;
  try {
    doc = extname(file).toLowerCase() === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new ConfigError(`config file ${file} is not valid ${formatName(file)}: ${why}`, {}, { cause: err });
  }
  if (doc === null || doc === undefined) return new Map();
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(`config file ${file} must be a mapping of setting names to values`, { value: doc });
  }
  const byKey = new Map<string, string>();
  for (const name of Object.keys(schema)) {
    byKey.set(name, name);
    byKey.set(camelCase(name), name);
  }
  const out = new Map<string, RawValue>();
  for (const [key, raw] of Object.entries(doc as Record<string, unknown>)) {
    const name = byKey.get(key);
    const source: ConfigSource = { kind: "file", file, key };
    if (name === undefined) {
      throw new ConfigError(
        `unknown setting "${key}" in config file ${file}${suggest(key, Object.keys(schema), "")}`,
        { value: key, source },
      );
    }
    if (out.has(name)) {
      throw new ConfigError(`setting "${name}" is given twice in config file ${file}`, {
        setting: name,
        source,
      });
    }
    out.set(name, { raw, source });
  }
  return out;
}

function formatName(file: string): string {
  return extname(file).toLowerCase() === ".json" ? "JSON" : "YAML";
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

/** ` (did you mean --nats-url?)` when a known name is within a small edit distance. */
function suggest(input: string, names: readonly string[], prefix: string): string {
  const kebab = input.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const d = editDistance(kebab, name);
    if (d <= Math.max(2, Math.floor(name.length / 4)) && (best === undefined || d < best.distance)) {
      best = { name, distance: d };
    }
  }
  return best ? ` (did you mean ${prefix}${best.name}?)` : "";
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
    }
    prev = cur;
  }
  return prev[b.length] as number;
}
