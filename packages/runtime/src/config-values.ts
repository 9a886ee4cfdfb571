// Parsing and describing one setting's value. Flags and env vars arrive as strings; config files may
// also carry native YAML/JSON numbers, booleans and arrays. Every rejection says what is allowed.

import type { Setting } from "./config-schema.js";
import { wholeMatch } from "./config-schema.js";

export type ParsedValue = string | number | boolean | readonly string[];

/** Either the parsed value or a reason naming what is allowed (the caller adds setting and source). */
export type ParseResult = { ok: true; value: ParsedValue } | { ok: false; allowed: string };

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const INT = /^[+-]?\d+$/;
const TRUE_WORDS: ReadonlySet<string> = new Set(["true", "1", "yes", "on"]);
const FALSE_WORDS: ReadonlySet<string> = new Set(["false", "0", "no", "off"]);

/** Parses `250ms`, `5s`, `1.5m`, `1h`, or `0`. A bare number is refused: `lease-ttl=5` is far more often
 * meant as seconds than milliseconds, and guessing wrong is a silent outage. */
export function parseDurationMs(text: string): number | undefined {
  const t = text.trim();
  if (t === "0") return 0;
  const m = DURATION.exec(t);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as string]!);
}

/** Shortest exact rendering: 5000 → `5s`, 250 → `250ms`, 90000 → `90s`. */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return "0";
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}

/** What values the setting accepts, used by errors, --help and the docs. */
export function describeAllowed(s: Setting): string {
  switch (s.type) {
    case "string":
      return s.pattern ? (s.patternText ?? `a string matching ${s.pattern.source}`) : "a string";
    case "int":
      return `an integer${rangeText(s.min, s.max, String)}${s.unit ? ` (${s.unit})` : ""}`;
    case "number":
      return `a number${rangeText(s.min, s.max, String)}${s.unit ? ` (${s.unit})` : ""}`;
    case "boolean":
      return "true or false";
    case "duration":
      return `a duration with a unit (250ms, 5s, 1m)${rangeText(s.minMs, s.maxMs, formatDurationMs)}`;
    case "enum":
      return `one of ${s.values.join(", ")}`;
    case "list":
      return "a comma-separated list of strings";
  }
}

function rangeText(min: number | undefined, max: number | undefined, fmt: (n: number) => string): string {
  if (min !== undefined && max !== undefined) return ` between ${fmt(min)} and ${fmt(max)}`;
  if (min !== undefined) return ` ≥ ${fmt(min)}`;
  if (max !== undefined) return ` ≤ ${fmt(max)}`;
  return "";
}

/** Parses a raw value from a flag, env var (always strings) or config file (native types allowed). */
export function parseSettingValue(s: Setting, raw: unknown): ParseResult {
  const fail: ParseResult = { ok: false, allowed: describeAllowed(s) };
  switch (s.type) {
    case "string": {
      if (typeof raw !== "string" && typeof raw !== "number") return fail;
      const v = String(raw);
      if (s.pattern && !wholeMatch(s.pattern, v)) return fail;
      return { ok: true, value: v };
    }
    case "int":
    case "number": {
      let n: number;
      if (typeof raw === "number") n = raw;
      else if (typeof raw === "string" && raw.trim() !== "") {
        if (s.type === "int" && !INT.test(raw.trim())) return fail;
        n = Number(raw.trim());
      } else return fail;
      if (!Number.isFinite(n) || (s.type === "int" && !Number.isSafeInteger(n))) return fail;
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) return fail;
      return { ok: true, value: n };
    }
    case "boolean": {
      if (typeof raw === "boolean") return { ok: true, value: raw };
      if (typeof raw !== "string") return fail;
      const w = raw.trim().toLowerCase();
      if (TRUE_WORDS.has(w)) return { ok: true, value: true };
      if (FALSE_WORDS.has(w)) return { ok: true, value: false };
      return fail;
    }
    case "duration": {
      // A bare 0 in a file is unambiguous; any other bare number is refused (see parseDurationMs).
      const ms = raw === 0 ? 0 : typeof raw === "string" ? parseDurationMs(raw) : undefined;
      if (ms === undefined) return fail;
      if ((s.minMs !== undefined && ms < s.minMs) || (s.maxMs !== undefined && ms > s.maxMs)) return fail;
      return { ok: true, value: ms };
    }
    case "enum": {
      if (typeof raw !== "string" || !s.values.includes(raw)) return fail;
      return { ok: true, value: raw };
    }
    case "list": {
      if (typeof raw === "string") {
        return {
          ok: true,
          value: raw
            .split(",")
            .map((x) => x.trim())
            .filter((x) => x !== ""),
        };
      }
      if (Array.isArray(raw) && raw.every((x) => typeof x === "string")) return { ok: true, value: [...raw] };
      return fail;
    }
  }
}

/** The default as it is shown in help and docs. */
export function describeDefault(s: Setting): string {
  if (s.defaultText !== undefined) return s.defaultText;
  if (s.secret) return "(secret)";
  switch (s.type) {
    case "duration":
      return formatDurationMs(s.defaultMs);
    case "list":
      return s.default.length === 0 ? "(empty)" : s.default.join(",");
    case "string":
      return typeof s.default === "function" ? "(computed)" : s.default === "" ? '""' : s.default;
    default:
      return String(s.default);
  }
}
