// Plain TypeScript mirror of `sluice.v1.Policy` (proto/sluice/v1/policy.proto) with every default
// applied. Core must not depend on @sluice/proto; the process shells convert the wire message into
// a `PolicyInput` and call `withPolicyDefaults`. Field names follow the proto3 JSON names so the
// conversion is mechanical.

/** What a level does when the shared state it decides on is unavailable or stale. */
export type FailMode = "static" | "open" | "closed";

/** HTTP status a rejection is answered with (429 default; 503 / 529 by policy). */
export type RejectHttpStatus = 429 | 503 | 529;

/** One request class with its objectives and its share of every level's limits. */
export interface ClassObjectives {
  /** `[a-z0-9_-]{1,32}`, as used in headers, tenant mappings and metrics. */
  readonly name: string;
  /** Higher is more important; lower priorities are shed first. */
  readonly priority: number;
  /** Time-to-first-token objective from ingress arrival. */
  readonly ttftObjectiveMs: number;
  /** Mean inter-token latency objective. */
  readonly itlObjectiveMs: number;
  /** Fraction (0..1] of each level's limit this class may fill. */
  readonly limitShare: number;
}

/** A tenant (set of API keys) mapped to a class. */
export interface TenantMapping {
  readonly tenant: string;
  /** Lowercase hex SHA-256 digests of the tenant's API keys. */
  readonly apiKeySha256: readonly string[];
  /** Class of this tenant's requests (already defaulted to the policy's default class). */
  readonly requestClass: string;
  /** Concurrent requests of this tenant across all frontends; 0 = no tenant limit. */
  readonly maxInflight: number;
  /** May choose any class per request with `x-sluice-class`. */
  readonly trusted: boolean;
}

/** L1 (ingress) limits. */
export interface IngressLimits {
  /** Concurrent requests across all frontends; 0 = no count limit. */
  readonly maxInflight: number;
  /** In-flight KV blocks limit as a multiple of the live engines' `kv_total_blocks`. */
  readonly kvOvercommit: number;
  /** Per-class override of `ClassObjectives.limitShare` at L1 only. */
  readonly classLimitShare: Readonly<Record<string, number>>;
  /** Cluster-load snapshots older than this are not trusted for the predicted-TTFT rule. */
  readonly maxClusterLoadAgeMs: number;
  /**
   * Whether L1 rejects on the cluster-predicted TTFT at all. Not on the wire yet (the proto has no
   * field); it exists so the simulator can compare L1 with and without the rule. Default true.
   */
  readonly predictedTtftCheck: boolean;
}

/** L2 (router) busy thresholds and hold queue. */
export interface RouterLimits {
  readonly busyDecodeBlockFraction: number;
  /** 0 = use `busyPrefillBatchRatio`. */
  readonly busyPendingPrefillTokens: number;
  readonly busyPrefillBatchRatio: number;
  readonly busyTtftObjectiveFraction: number;
  /** Requests held per class while every engine is busy; classes not listed are never held. */
  readonly classMaxHeld: Readonly<Record<string, number>>;
  readonly maxHoldMs: number;
  readonly overlapScoreWeight: number;
}

/** L3 (engine-scheduler) queue limits. */
export interface EngineLimits {
  /** 0 = the engine's max_num_seqs. */
  readonly maxInflight: number;
  /** 0 disables queueing. */
  readonly maxQueue: number;
  /** 0 = the class's ttftObjectiveMs. */
  readonly maxQueueMs: number;
  readonly ttftMarginMs: number;
}

/** How rejections reach clients. */
export interface RejectionSettings {
  readonly httpStatus: RejectHttpStatus;
  readonly retryAfterMinMs: number;
  readonly retryAfterMaxMs: number;
}

/** A complete, validated policy: every field set. Produced only by `withPolicyDefaults`. */
export interface ResolvedPolicy {
  readonly model: string;
  readonly description: string;
  /** Sorted by priority, highest first. */
  readonly classes: readonly ClassObjectives[];
  readonly defaultClass: string;
  readonly tenants: readonly TenantMapping[];
  readonly ingress: IngressLimits;
  readonly router: RouterLimits;
  readonly engine: EngineLimits;
  readonly rejection: RejectionSettings;
  readonly failMode: FailMode;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A class as written in a policy: built-in names may omit fields (0 / absent = default). */
export type ClassInput = { name: string } & Partial<Omit<Mutable<ClassObjectives>, "name">>;
/** A tenant as written in a policy. */
export type TenantInput = { tenant: string } & Partial<Omit<Mutable<TenantMapping>, "tenant">>;

/**
 * A policy as written (proto3 JSON shape, camelCase). Absent fields and, as in proto3, plain
 * numbers equal to 0 take their defaults; map entries and `engine.maxQueue` keep an explicit 0.
 */
export interface PolicyInput {
  model?: string;
  description?: string;
  classes?: ClassInput[];
  defaultClass?: string;
  tenants?: TenantInput[];
  ingress?: Partial<Mutable<IngressLimits>>;
  router?: Partial<Mutable<RouterLimits>>;
  engine?: Partial<Mutable<EngineLimits>>;
  rejection?: Partial<Mutable<RejectionSettings>>;
  failMode?: FailMode;
}
