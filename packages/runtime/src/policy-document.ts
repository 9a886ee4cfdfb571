// Policy documents: YAML or JSON text → proto3 JSON → `sluice.v1.Policy` → core's validated
// `ResolvedPolicy`. The CLI uses this to refuse a bad file and every process uses it on each stored
// revision, so "valid" means exactly the same thing on both sides.
//
// protobuf-es rejects unknown fields and bad enum names, but its messages name the proto field, not
// where it is in the document. So the shape is checked first by walking the JSON against the message
// descriptor (every finding with its path, value and what is allowed), and protobuf-es then decodes
// a document already known to fit.

import {
  type DescEnum,
  type DescField,
  type DescMessage,
  fromJson,
  type JsonObject,
  type JsonValue,
  ScalarType,
  toJson,
} from "@bufbuild/protobuf";
import { PolicyError, type PolicyInput, type ResolvedPolicy, withPolicyDefaults } from "@sluice/core";
import { FailMode, HttpRejectStatus, type Policy, PolicySchema } from "@sluice/proto";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { DEFAULT_POLICY_KEY } from "./keys.js";
import { DOCUMENT_PATH, PolicyDocumentError, type PolicyIssue } from "./policy-errors.js";

/** A policy that passed every check. Immutable. */
export interface ParsedPolicy {
  /** Policy key name: a model, or `_default`. */
  readonly model: string;
  readonly message: Policy;
  /** Canonical proto3 JSON (fields at their zero value omitted): the stored form. */
  readonly json: JsonObject;
  /** Every default applied, validated by core. */
  readonly resolved: ResolvedPolicy;
}

export interface ParsePolicyOptions {
  /**
   * Key the document is for (a model or `_default`). The document's `model` field must be empty
   * or equal to it; an empty one is filled in, so the stored form always names its key.
   * Default `_default`.
   */
  readonly model?: string;
}

/**
 * Deepest `[` / `{` nesting a policy may have (real ones reach 4). The YAML parser recurses per level:
 * a 100 000-level document overflows its stack, and V8 can abort the whole process (a fatal regexp
 * allocation failure) while the parser builds its error, so such text is refused before parsing.
 */
export const MAX_POLICY_NESTING = 64;

/** Deepest flow-collection nesting of `text`, brackets inside quoted strings not counted. */
function flowNestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote !== "") {
      if (ch === "\\" && quote === '"') i++;
      else if (ch === quote) quote = "";
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "[" || ch === "{") deepest = Math.max(deepest, ++depth);
    else if (ch === "]" || ch === "}") depth = Math.max(0, depth - 1);
  }
  return deepest;
}

/** Parses YAML or JSON text (JSON is YAML) and validates it. @throws PolicyDocumentError */
export function parsePolicyText(text: string, options: ParsePolicyOptions = {}): ParsedPolicy {
  const depth = flowNestingDepth(text);
  if (depth > MAX_POLICY_NESTING) {
    throw new PolicyDocumentError([
      {
        path: DOCUMENT_PATH,
        message: `is nested ${depth} levels deep; a policy needs at most ${MAX_POLICY_NESTING}`,
      },
    ]);
  }
  let value: unknown;
  try {
    value = parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const at = err.linePos?.[0];
      const where = at === undefined ? "" : ` at line ${at.line}, column ${at.col}`;
      const first = err.message.split("\n")[0] ?? err.message;
      throw new PolicyDocumentError([{ path: DOCUMENT_PATH, message: `syntax error${where}: ${first}` }], {
        cause: err,
      });
    }
    throw new PolicyDocumentError([{ path: DOCUMENT_PATH, message: `cannot be parsed: ${String(err)}` }], {
      cause: err,
    });
  }
  return parsePolicyValue(value, options);
}

/**
 * Parses a stored value (`{prefix}/policies/…`), which is proto3 JSON: JSON.parse rather than the YAML
 * parser, so applying a revision stays cheap on every process. @throws PolicyDocumentError
 */
export function parseStoredPolicy(text: string, options: ParsePolicyOptions = {}): ParsedPolicy {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PolicyDocumentError(
      [{ path: DOCUMENT_PATH, message: `stored policies are proto3 JSON: ${errorText(err)}` }],
      { cause: err },
    );
  }
  return parsePolicyValue(value, options);
}

/**
 * The `model` field a policy text names, without validating anything else; undefined when it names
 * none or does not parse. Lets a CLI default the policy key to what the file says.
 */
export function policyModelOf(text: string): string | undefined {
  if (flowNestingDepth(text) > MAX_POLICY_NESTING) return undefined;
  try {
    const doc = parseYaml(text) as unknown;
    const model = typeof doc === "object" && doc !== null ? (doc as { model?: unknown }).model : undefined;
    return typeof model === "string" && model !== "" ? model : undefined;
  } catch {
    return undefined;
  }
}

/** Validates an already-parsed proto3 JSON value. @throws PolicyDocumentError */
export function parsePolicyValue(value: unknown, options: ParsePolicyOptions = {}): ParsedPolicy {
  const model = options.model ?? DEFAULT_POLICY_KEY;
  if (value === null || value === undefined) {
    throw new PolicyDocumentError([
      { path: DOCUMENT_PATH, message: "is empty; a policy is a mapping of fields ({} means all defaults)" },
    ]);
  }
  const issues: PolicyIssue[] = [];
  checkMessage(PolicySchema, value, "", issues);
  if (issues.length > 0) throw new PolicyDocumentError(issues);

  let message: Policy;
  try {
    message = fromJson(PolicySchema, value as JsonValue);
  } catch (err) {
    // The walk above should have caught everything protobuf-es refuses; keep its words if not.
    throw new PolicyDocumentError([{ path: DOCUMENT_PATH, message: errorText(err) }], { cause: err });
  }
  if (message.model === "") message.model = model;
  else if (message.model !== model) {
    throw new PolicyDocumentError([
      {
        path: "model",
        message: `${JSON.stringify(message.model)} does not match the policy key ${JSON.stringify(model)} (leave it empty or use the key's name)`,
      },
    ]);
  }

  let resolved: ResolvedPolicy;
  try {
    resolved = withPolicyDefaults(policyInputFromMessage(message));
  } catch (err) {
    if (err instanceof PolicyError) {
      const prefix = `policy field ${err.field}: `;
      const text = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
      throw new PolicyDocumentError([{ path: err.field, message: text }], { cause: err });
    }
    throw err;
  }
  const json = toJson(PolicySchema, message) as JsonObject;
  return Object.freeze({ model, message, json: deepFreezeJson(json), resolved });
}

/** The stored form: proto3 JSON, two-space indented so `etcdctl get` stays readable. */
export function serializePolicy(policy: ParsedPolicy): string {
  return `${JSON.stringify(policy.json, null, 2)}\n`;
}

/** The wire message in core's input shape (proto3 JSON names; enums mapped to core's values). */
export function policyInputFromMessage(p: Policy): PolicyInput {
  const input: PolicyInput = {
    model: p.model,
    description: p.description,
    classes: p.classes.map((c) => ({
      name: c.name,
      priority: c.priority,
      ttftObjectiveMs: c.ttftObjectiveMs,
      itlObjectiveMs: c.itlObjectiveMs,
      limitShare: c.limitShare,
    })),
    defaultClass: p.defaultClass,
    tenants: p.tenants.map((t) => ({
      tenant: t.tenant,
      apiKeySha256: [...t.apiKeySha256],
      requestClass: t.requestClass,
      maxInflight: t.maxInflight,
      trusted: t.trusted,
    })),
  };
  if (p.ingress !== undefined) {
    input.ingress = {
      maxInflight: p.ingress.maxInflight,
      kvOvercommit: p.ingress.kvOvercommit,
      classLimitShare: { ...p.ingress.classLimitShare },
      maxClusterLoadAgeMs: p.ingress.maxClusterLoadAgeMs,
    };
  }
  if (p.router !== undefined) {
    input.router = {
      busyDecodeBlockFraction: p.router.busyDecodeBlockFraction,
      busyPendingPrefillTokens: p.router.busyPendingPrefillTokens,
      busyPrefillBatchRatio: p.router.busyPrefillBatchRatio,
      busyTtftObjectiveFraction: p.router.busyTtftObjectiveFraction,
      classMaxHeld: { ...p.router.classMaxHeld },
      maxHoldMs: p.router.maxHoldMs,
      overlapScoreWeight: p.router.overlapScoreWeight,
    };
  }
  if (p.engine !== undefined) {
    input.engine = {
      maxInflight: p.engine.maxInflight,
      maxQueueMs: p.engine.maxQueueMs,
      ttftMarginMs: p.engine.ttftMarginMs,
    };
    // `optional`: unset means the default, an explicit 0 disables queueing.
    if (p.engine.maxQueue !== undefined) input.engine.maxQueue = p.engine.maxQueue;
  }
  if (p.rejection !== undefined) {
    input.rejection = {
      retryAfterMinMs: p.rejection.retryAfterMinMs,
      retryAfterMaxMs: p.rejection.retryAfterMaxMs,
    };
    const status = HTTP_STATUS[p.rejection.httpStatus];
    if (status !== undefined) input.rejection.httpStatus = status;
  }
  const failMode = FAIL_MODE[p.failMode];
  if (failMode !== undefined) input.failMode = failMode;
  return input;
}

const HTTP_STATUS: Partial<Record<HttpRejectStatus, 429 | 503 | 529>> = {
  [HttpRejectStatus.TOO_MANY_REQUESTS]: 429,
  [HttpRejectStatus.SERVICE_UNAVAILABLE]: 503,
  [HttpRejectStatus.OVERLOADED]: 529,
};

const FAIL_MODE: Partial<Record<FailMode, "static" | "open" | "closed">> = {
  [FailMode.STATIC]: "static",
  [FailMode.OPEN]: "open",
  [FailMode.CLOSED]: "closed",
};

// ---- shape check against the descriptor ------------------------------------------------------

function show(value: unknown): string {
  if (value === undefined) return "undefined";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "a mapping" : `${show(value)}`;
}

function join(base: string, name: string): string {
  return base === "" ? name : `${base}.${name}`;
}

function checkMessage(desc: DescMessage, value: unknown, path: string, issues: PolicyIssue[]): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    issues.push({
      path: path === "" ? DOCUMENT_PATH : path,
      message: `${typeName(value)} is not a mapping of ${desc.name} fields`,
    });
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    const field = desc.fields.find((f) => f.jsonName === key || f.name === key);
    if (field === undefined) {
      issues.push({
        path: join(path, key),
        message: `unknown field${suggestion(key, desc)}; ${desc.name} fields are ${desc.fields.map((f) => f.jsonName).join(", ")}`,
      });
      continue;
    }
    if (v === null) continue; // proto3 JSON: null means the default
    checkField(field, v, join(path, field.jsonName), issues);
  }
}

function suggestion(key: string, desc: DescMessage): string {
  const lower = key.toLowerCase().replace(/_/g, "");
  const near = desc.fields.find((f) => f.jsonName.toLowerCase() === lower || distance(f.jsonName, key) <= 2);
  return near === undefined ? "" : ` (did you mean ${JSON.stringify(near.jsonName)}?)`;
}

/** Levenshtein distance; field names are short. */
function distance(a: string, b: string): number {
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

function checkField(field: DescField, value: unknown, path: string, issues: PolicyIssue[]): void {
  switch (field.fieldKind) {
    case "scalar":
      checkScalar(field.scalar, value, path, issues);
      return;
    case "enum":
      checkEnum(field.enum, value, path, issues);
      return;
    case "message":
      checkMessage(field.message, value, path, issues);
      return;
    case "list": {
      if (!Array.isArray(value)) {
        issues.push({ path, message: `${typeName(value)} is not a list` });
        return;
      }
      value.forEach((item: unknown, i) => {
        const at = `${path}[${i}]`;
        if (item === null) issues.push({ path: at, message: "null is not allowed in a list" });
        else if (field.listKind === "message") checkMessage(field.message, item, at, issues);
        else if (field.listKind === "enum") checkEnum(field.enum, item, at, issues);
        else checkScalar(field.scalar, item, at, issues);
      });
      return;
    }
    case "map": {
      if (typeof value !== "object" || Array.isArray(value)) {
        issues.push({ path, message: `${typeName(value)} is not a mapping` });
        return;
      }
      for (const [key, item] of Object.entries(value as object)) {
        const at = `${path}.${key}`;
        if (field.mapKind === "message") checkMessage(field.message, item, at, issues);
        else if (field.mapKind === "enum") checkEnum(field.enum, item, at, issues);
        else checkScalar(field.scalar, item, at, issues);
      }
      return;
    }
  }
}

function checkEnum(desc: DescEnum, value: unknown, path: string, issues: PolicyIssue[]): void {
  const names = desc.values.map((v) => v.name);
  const ok =
    (typeof value === "string" && names.includes(value)) ||
    (typeof value === "number" && desc.values.some((v) => v.number === value));
  if (!ok) issues.push({ path, message: `${show(value)} is not one of ${names.join(", ")}` });
}

const INT_RANGES: Partial<Record<ScalarType, readonly [number, number]>> = {
  [ScalarType.UINT32]: [0, 4_294_967_295],
  [ScalarType.FIXED32]: [0, 4_294_967_295],
  [ScalarType.INT32]: [-2_147_483_648, 2_147_483_647],
  [ScalarType.SINT32]: [-2_147_483_648, 2_147_483_647],
  [ScalarType.SFIXED32]: [-2_147_483_648, 2_147_483_647],
  [ScalarType.INT64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [ScalarType.SINT64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [ScalarType.SFIXED64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [ScalarType.UINT64]: [0, Number.MAX_SAFE_INTEGER],
  [ScalarType.FIXED64]: [0, Number.MAX_SAFE_INTEGER],
};

const NON_FINITE = ["NaN", "Infinity", "-Infinity"];

function checkScalar(type: ScalarType, value: unknown, path: string, issues: PolicyIssue[]): void {
  switch (type) {
    case ScalarType.STRING:
      if (typeof value !== "string") issues.push({ path, message: `${typeName(value)} is not a string` });
      return;
    case ScalarType.BOOL:
      if (typeof value !== "boolean") {
        issues.push({ path, message: `${typeName(value)} is not a boolean (true or false)` });
      }
      return;
    case ScalarType.BYTES:
      if (typeof value !== "string") {
        issues.push({ path, message: `${typeName(value)} is not a base64 string` });
      }
      return;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT: {
      // proto3 JSON also allows numbers as strings and the three non-finite names.
      const n = typeof value === "string" && !NON_FINITE.includes(value) ? numeric(value) : value;
      if (!(typeof n === "number" || (typeof value === "string" && NON_FINITE.includes(value)))) {
        issues.push({ path, message: `${typeName(value)} is not a number` });
      }
      return;
    }
    default: {
      const n = typeof value === "string" ? numeric(value) : value;
      if (typeof n !== "number") {
        issues.push({ path, message: `${typeName(value)} is not a number` });
        return;
      }
      const [min, max] = INT_RANGES[type] ?? [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
      if (!Number.isInteger(n)) {
        issues.push({
          path,
          message: `${show(value)} is not an integer (must be a whole number ${min}..${max})`,
        });
      } else if (n < min || n > max) {
        issues.push({ path, message: `${show(value)} is out of range (must be ${min}..${max})` });
      }
    }
  }
}

function numeric(text: string): number | undefined {
  if (text.trim() === "" || text !== text.trim()) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function deepFreezeJson<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreezeJson(v);
    Object.freeze(value);
  }
  return value;
}
