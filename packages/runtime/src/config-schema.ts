// The declarative settings schema every Sluice process uses. A setting is named in kebab case
// (`nats-url`); the loader derives its flag (`--nats-url`), env var (`SLUICE_NATS_URL`) and the key of the
// parsed config object (`natsUrl`; durations get an `Ms` suffix: `lease-ttl` → `leaseTtlMs`) from that
// one name, so the three can never drift apart.

import { ConfigSchemaError } from "./errors.js";

interface SettingBase {
  /** One line for --help and the generated docs. */
  description: string;
  /** Rendered instead of the default value in help/docs when the default is computed at start-up. */
  defaultText?: string;
  /** Value is masked in help and in the effective-config log line. */
  secret?: boolean;
  /**
   * Refused as a flag: only env var or config file. For inline secrets, because a command line is
   * readable by every local user (`ps`, /proc/<pid>/cmdline) and ends up in shell history.
   */
  noFlag?: boolean;
}

export interface StringSetting extends SettingBase {
  type: "string";
  default: string | (() => string);
  /** Whole-value pattern; `patternText` explains it in errors (`a NATS subject token`). */
  pattern?: RegExp;
  patternText?: string;
}

export interface IntSetting extends SettingBase {
  type: "int";
  default: number;
  min?: number;
  max?: number;
  /** Unit shown in help (`tokens`, `blocks`); the setting name should carry it too where ambiguous. */
  unit?: string;
}

export interface NumberSetting extends SettingBase {
  type: "number";
  default: number;
  min?: number;
  max?: number;
  unit?: string;
}

export interface BooleanSetting extends SettingBase {
  type: "boolean";
  default: boolean;
}

/** A duration written with a unit (`250ms`, `5s`, `1.5m`, `1h`); the parsed value is milliseconds. */
export interface DurationSetting extends SettingBase {
  type: "duration";
  defaultMs: number;
  minMs?: number;
  maxMs?: number;
}

export interface EnumSetting<V extends string = string> extends SettingBase {
  type: "enum";
  values: readonly V[];
  default: V;
}

/** Comma-separated in flags and env, a YAML/JSON array (or comma-separated string) in files. */
export interface ListSetting extends SettingBase {
  type: "list";
  default: readonly string[];
}

export type Setting =
  | StringSetting
  | IntSetting
  | NumberSetting
  | BooleanSetting
  | DurationSetting
  | EnumSetting
  | ListSetting;

export type ConfigSchema = Readonly<Record<string, Setting>>;

type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;

type KeyOf<Name extends string, S extends Setting> = S extends DurationSetting
  ? `${CamelCase<Name>}Ms`
  : CamelCase<Name>;

type ValueOf<S extends Setting> = S extends StringSetting
  ? string
  : S extends IntSetting | NumberSetting | DurationSetting
    ? number
    : S extends BooleanSetting
      ? boolean
      : S extends EnumSetting<infer V>
        ? V
        : S extends ListSetting
          ? readonly string[]
          : never;

/** The parsed configuration: camelCase keys, durations in `…Ms`. */
export type ConfigValues<S extends ConfigSchema> = {
  readonly [K in keyof S & string as KeyOf<K, S[K]>]: ValueOf<S[K]>;
};

const SETTING_NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
/** Names the loader handles itself; a schema may not redefine them. */
const RESERVED_NAMES: ReadonlySet<string> = new Set(["help", "config", "version"]);

export function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Key of a setting in the parsed config object. */
export function valueKey(name: string, setting: Setting): string {
  return setting.type === "duration" ? `${camelCase(name)}Ms` : camelCase(name);
}

export function envVarName(name: string): string {
  return `SLUICE_${name.toUpperCase().replace(/-/g, "_")}`;
}

/**
 * Declares a schema and checks it is self-consistent (names, bounds, defaults), throwing
 * ConfigSchemaError at start-up rather than letting a bad default reach production.
 * `const` keeps enum values literal so `ConfigValues` types them as a union.
 */
export function defineSchema<const S extends ConfigSchema>(schema: S): S {
  for (const [name, setting] of Object.entries(schema)) checkSetting(name, setting);
  return schema;
}

/** Union of schemas; a setting defined twice is a schema error, not a silent override. */
export function mergeSchemas<const A extends ConfigSchema, const B extends ConfigSchema>(a: A, b: B): A & B {
  for (const name of Object.keys(b)) {
    if (Object.hasOwn(a, name)) throw new ConfigSchemaError(`setting "${name}" is defined twice`);
  }
  return { ...a, ...b };
}

function checkSetting(name: string, s: Setting): void {
  if (!SETTING_NAME.test(name)) {
    throw new ConfigSchemaError(`setting name "${name}" is not kebab case (e.g. "nats-url")`);
  }
  if (RESERVED_NAMES.has(name)) throw new ConfigSchemaError(`setting name "${name}" is reserved`);
  if (s.description.trim() === "") throw new ConfigSchemaError(`setting "${name}" has no description`);
  if (s.noFlag === true && s.secret !== true) {
    throw new ConfigSchemaError(`setting "${name}": noFlag is for secrets; mark it secret too`);
  }
  const bad = (why: string): never => {
    throw new ConfigSchemaError(`setting "${name}": ${why}`);
  };
  switch (s.type) {
    case "int":
    case "number": {
      if (s.min !== undefined && s.max !== undefined && s.min > s.max) bad("min > max");
      if (s.type === "int" && !Number.isSafeInteger(s.default)) bad("default is not an integer");
      if (!Number.isFinite(s.default)) bad("default is not finite");
      if (s.min !== undefined && s.default < s.min) bad(`default ${s.default} < min ${s.min}`);
      if (s.max !== undefined && s.default > s.max) bad(`default ${s.default} > max ${s.max}`);
      break;
    }
    case "duration": {
      if (s.minMs !== undefined && s.maxMs !== undefined && s.minMs > s.maxMs) bad("minMs > maxMs");
      if (!Number.isFinite(s.defaultMs) || s.defaultMs < 0) bad("defaultMs is not a non-negative number");
      if (s.minMs !== undefined && s.defaultMs < s.minMs) bad(`defaultMs < minMs`);
      if (s.maxMs !== undefined && s.defaultMs > s.maxMs) bad(`defaultMs > maxMs`);
      break;
    }
    case "enum": {
      if (s.values.length === 0) bad("enum has no values");
      if (!s.values.includes(s.default)) bad(`default "${s.default}" is not one of its values`);
      break;
    }
    case "string": {
      if (s.pattern && typeof s.default === "string" && !wholeMatch(s.pattern, s.default)) {
        bad(`default "${s.default}" does not match its pattern`);
      }
      break;
    }
    case "boolean":
    case "list":
      break;
  }
}

export function wholeMatch(pattern: RegExp, value: string): boolean {
  const m = new RegExp(pattern.source, pattern.flags.replace("g", "")).exec(value);
  return m !== null && m.index === 0 && m[0].length === value.length;
}
