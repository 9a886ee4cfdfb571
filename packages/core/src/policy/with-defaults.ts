// Turns a policy as written into a complete, validated `ResolvedPolicy`. Validation happens here,
// once per policy revision, so the decisions can trust every field without checking it again.

import { BUILT_IN_CLASSES, DEFAULT_POLICY } from "./defaults.js";
import { PolicyError } from "./errors.js";
import type {
  ClassInput,
  ClassObjectives,
  FailMode,
  PolicyInput,
  RejectHttpStatus,
  ResolvedPolicy,
  TenantMapping,
} from "./types.js";

const CLASS_NAME = /^[a-z0-9_-]{1,32}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const FAIL_MODES: readonly FailMode[] = ["static", "open", "closed"];
const HTTP_STATUSES: readonly RejectHttpStatus[] = [429, 503, 529];

/** proto3 semantics: an absent field and a plain number 0 both mean "use the default". */
function orDefault(value: number | undefined, fallback: number): number {
  return value === undefined || value === 0 ? fallback : value;
}

function finiteAtLeast(field: string, value: number, min: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new PolicyError(field, `must be a finite number ≥ ${min}, got ${String(value)}`);
  }
  return value;
}

function integerAtLeast(field: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new PolicyError(field, `must be an integer ≥ ${min}, got ${String(value)}`);
  }
  return value;
}

function fraction(field: string, value: number, allowZero: boolean): number {
  if (typeof value !== "number" || !(value <= 1) || !(allowZero ? value >= 0 : value > 0)) {
    throw new PolicyError(
      field,
      `must be a fraction in ${allowZero ? "[0, 1]" : "(0, 1]"}, got ${String(value)}`,
    );
  }
  return value;
}

function resolveClasses(input: ClassInput[] | undefined): ClassObjectives[] {
  if (input === undefined || input.length === 0) return [...BUILT_IN_CLASSES];
  const seen = new Set<string>();
  const out = input.map((c, i): ClassObjectives => {
    const at = `classes[${i}]`;
    if (typeof c.name !== "string" || !CLASS_NAME.test(c.name)) {
      throw new PolicyError(`${at}.name`, `must match ${CLASS_NAME.source}, got ${JSON.stringify(c.name)}`);
    }
    if (seen.has(c.name)) throw new PolicyError(`${at}.name`, `duplicate class ${JSON.stringify(c.name)}`);
    seen.add(c.name);
    const builtIn = BUILT_IN_CLASSES.find((b) => b.name === c.name);
    const need = (field: "priority" | "ttftObjectiveMs" | "itlObjectiveMs"): number => {
      const v = orDefault(c[field], builtIn?.[field] ?? 0);
      if (v === 0) throw new PolicyError(`${at}.${field}`, `is required for the custom class ${c.name}`);
      return integerAtLeast(`${at}.${field}`, v, 1);
    };
    return {
      name: c.name,
      priority: need("priority"),
      ttftObjectiveMs: need("ttftObjectiveMs"),
      itlObjectiveMs: need("itlObjectiveMs"),
      // A custom class without a share may fill the whole limit, like `critical`.
      limitShare: fraction(`${at}.limitShare`, orDefault(c.limitShare, builtIn?.limitShare ?? 1), false),
    };
  });
  // Stable sort: equal priorities keep their written order.
  return out.sort((a, b) => b.priority - a.priority);
}

function knownClass(field: string, name: string, classes: readonly ClassObjectives[]): string {
  if (!classes.some((c) => c.name === name)) {
    throw new PolicyError(
      field,
      `unknown class ${JSON.stringify(name)} (classes: ${classes.map((c) => c.name).join(", ")})`,
    );
  }
  return name;
}

function classMap(
  field: string,
  map: Readonly<Record<string, number>> | undefined,
  classes: readonly ClassObjectives[],
  check: (entry: string, v: number) => number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(map ?? {})) {
    knownClass(`${field}.${name}`, name, classes);
    out[name] = check(`${field}.${name}`, v);
  }
  return out;
}

/**
 * Applies the documented defaults to `input` and validates the result.
 * @throws PolicyError naming the first invalid field.
 */
export function withPolicyDefaults(input: PolicyInput = {}): ResolvedPolicy {
  const d = DEFAULT_POLICY;
  const classes = resolveClasses(input.classes);
  const defaultClass = knownClass("defaultClass", input.defaultClass || d.defaultClass, classes);

  const keyOwners = new Map<string, string>();
  const tenantIds = new Set<string>();
  const tenants = (input.tenants ?? []).map((t, i): TenantMapping => {
    const at = `tenants[${i}]`;
    if (typeof t.tenant !== "string" || t.tenant.length === 0)
      throw new PolicyError(`${at}.tenant`, "is required");
    if (tenantIds.has(t.tenant))
      throw new PolicyError(`${at}.tenant`, `duplicate tenant ${JSON.stringify(t.tenant)}`);
    tenantIds.add(t.tenant);
    const keys = (t.apiKeySha256 ?? []).map((k, j) => {
      if (typeof k !== "string" || !SHA256_HEX.test(k)) {
        throw new PolicyError(`${at}.apiKeySha256[${j}]`, "must be 64 lowercase hex characters");
      }
      const owner = keyOwners.get(k);
      if (owner !== undefined)
        throw new PolicyError(`${at}.apiKeySha256[${j}]`, `already belongs to tenant ${owner}`);
      keyOwners.set(k, t.tenant);
      return k;
    });
    return {
      tenant: t.tenant,
      apiKeySha256: Object.freeze(keys),
      requestClass: knownClass(`${at}.requestClass`, t.requestClass || defaultClass, classes),
      maxInflight: integerAtLeast(`${at}.maxInflight`, t.maxInflight ?? 0, 0),
      trusted: t.trusted === true,
    };
  });

  const ing = input.ingress ?? {};
  const ingress = {
    maxInflight: integerAtLeast("ingress.maxInflight", ing.maxInflight ?? 0, 0),
    kvOvercommit: finiteAtLeast(
      "ingress.kvOvercommit",
      orDefault(ing.kvOvercommit, d.ingress.kvOvercommit),
      0,
    ),
    classLimitShare: classMap("ingress.classLimitShare", ing.classLimitShare, classes, (f, v) =>
      fraction(f, v, true),
    ),
    maxClusterLoadAgeMs: integerAtLeast(
      "ingress.maxClusterLoadAgeMs",
      orDefault(ing.maxClusterLoadAgeMs, d.ingress.maxClusterLoadAgeMs),
      1,
    ),
    predictedTtftCheck: ing.predictedTtftCheck ?? d.ingress.predictedTtftCheck,
  };

  const r = input.router ?? {};
  const heldDefaults: Record<string, number> = {};
  for (const c of classes) {
    const builtIn = d.router.classMaxHeld[c.name];
    if (builtIn !== undefined) heldDefaults[c.name] = builtIn;
  }
  const router = {
    busyDecodeBlockFraction: fraction(
      "router.busyDecodeBlockFraction",
      orDefault(r.busyDecodeBlockFraction, d.router.busyDecodeBlockFraction),
      false,
    ),
    busyPendingPrefillTokens: integerAtLeast(
      "router.busyPendingPrefillTokens",
      r.busyPendingPrefillTokens ?? 0,
      0,
    ),
    busyPrefillBatchRatio: finiteAtLeast(
      "router.busyPrefillBatchRatio",
      orDefault(r.busyPrefillBatchRatio, d.router.busyPrefillBatchRatio),
      0,
    ),
    busyTtftObjectiveFraction: finiteAtLeast(
      "router.busyTtftObjectiveFraction",
      orDefault(r.busyTtftObjectiveFraction, d.router.busyTtftObjectiveFraction),
      0,
    ),
    classMaxHeld: {
      ...heldDefaults,
      ...classMap("router.classMaxHeld", r.classMaxHeld, classes, (f, v) => integerAtLeast(f, v, 0)),
    },
    maxHoldMs: integerAtLeast("router.maxHoldMs", orDefault(r.maxHoldMs, d.router.maxHoldMs), 1),
    overlapScoreWeight: finiteAtLeast(
      "router.overlapScoreWeight",
      orDefault(r.overlapScoreWeight, d.router.overlapScoreWeight),
      0,
    ),
  };

  const e = input.engine ?? {};
  const engine = {
    maxInflight: integerAtLeast("engine.maxInflight", e.maxInflight ?? 0, 0),
    // `optional` on the wire: an explicit 0 disables queueing.
    maxQueue: integerAtLeast("engine.maxQueue", e.maxQueue ?? d.engine.maxQueue, 0),
    maxQueueMs: integerAtLeast("engine.maxQueueMs", e.maxQueueMs ?? 0, 0),
    ttftMarginMs: integerAtLeast("engine.ttftMarginMs", orDefault(e.ttftMarginMs, d.engine.ttftMarginMs), 0),
  };

  const rej = input.rejection ?? {};
  const httpStatus = rej.httpStatus ?? d.rejection.httpStatus;
  if (!HTTP_STATUSES.includes(httpStatus)) {
    throw new PolicyError(
      "rejection.httpStatus",
      `must be one of ${HTTP_STATUSES.join(", ")}, got ${httpStatus}`,
    );
  }
  const rejection = {
    httpStatus,
    retryAfterMinMs: integerAtLeast(
      "rejection.retryAfterMinMs",
      orDefault(rej.retryAfterMinMs, d.rejection.retryAfterMinMs),
      0,
    ),
    retryAfterMaxMs: integerAtLeast(
      "rejection.retryAfterMaxMs",
      orDefault(rej.retryAfterMaxMs, d.rejection.retryAfterMaxMs),
      1,
    ),
  };
  if (rejection.retryAfterMinMs > rejection.retryAfterMaxMs) {
    throw new PolicyError(
      "rejection.retryAfterMinMs",
      `(${rejection.retryAfterMinMs}) must not exceed retryAfterMaxMs (${rejection.retryAfterMaxMs})`,
    );
  }

  const failMode = input.failMode ?? d.failMode;
  if (!FAIL_MODES.includes(failMode)) {
    throw new PolicyError("failMode", `must be one of ${FAIL_MODES.join(", ")}, got ${String(failMode)}`);
  }

  return deepFreeze({
    model: input.model || d.model,
    description: input.description ?? "",
    classes,
    defaultClass,
    tenants,
    ingress,
    router,
    engine,
    rejection,
    failMode,
  });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
