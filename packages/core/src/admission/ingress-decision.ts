// THE Level-1 (ingress) admission decision. It runs before the body is tokenized, on facts that
// cost nothing to obtain, against the global in-flight state of all frontends (frontend-sync.ts).
//
// Rules, checked in this order; the first that fails rejects:
//   1. fail_closed    — global state is unavailable and the policy's fail mode is `closed`.
//   2. no_capacity    — no live engine capacity (Σ kv_total_blocks = 0), unless fail mode `open`.
//   3. tenant_inflight — the request's tenant would exceed its own `maxInflight` (policy tenants).
//   4. inflight_limit — in-flight requests would exceed the class's share of `maxInflight`.
//   5. kv_overload    — in-flight KV blocks would exceed the class's share of
//                       `kvOvercommit × live KV capacity`.
//   6. predicted_ttft — the cluster's predicted TTFT for the class exceeds its objective.
//
// Class shares: class c may fill `share(c) × limit`, where share(c) is
// `policy.ingress.classLimitShare[c]` if set, else the class's `limitShare`. Under the same load the
// class with the lowest share (sheddable, 0.7) is refused first and critical (1.0) last: the whole
// cluster's load is compared with each class's own threshold.
//
// Projected load and the burst reserve: a rule compares the load *after* admitting,
//   projected = current + charge × size(this request),
// where `charge` is the number of live frontends (`view.liveInstances`) when global state is
// available. Between two syncs every peer may be admitting the same burst from the same stale view,
// so each admission reserves room for one per instance; together with frontend-sync's mirror
// accounting this limits every frontend to headroom ÷ instances between syncs, which keeps the
// global total under the limit (proved in frontend-sync.spec.ts). With one frontend, charge = 1.
//
// Tenant limits (rule 3) are a tenant's own quota, not a share of the cluster: no class share applies,
// and the tenant's in-flight count comes from its own frontend-sync view (`view.tenantLoad`, kept per
// model and tenant by the shell and carried on `ingress.state`), so the limit is global across
// frontends. Unlike the cluster rules, a tenant admission is charged once, not once per instance:
// tenant limits are small (a handful of requests), and reserving N slots per admission would cap a
// tenant at `max − N + 1` for good — a tenant limited to 4 behind 4 frontends could never have more
// than one request in flight. With charge 1 the tenant reaches its exact limit in steady state, and a
// synchronized burst can overshoot by at most N − 1 requests (one per other frontend) for one sync
// round trip; frontend-sync's mirrors still count this instance's unacknowledged admissions once per
// peer, so every frontend's view errs high, never low. Fail-static divides the tenant limit by the
// last known instance count rounding UP, so a tenant whose limit is below the instance count is not
// locked out during a bus outage (each frontend still admits one).
//
// Fail modes when global state is unavailable (sync bus down): `static` compares this instance's
// own counts with limit ÷ last known instance count; `open` compares them with the full limit;
// `closed` rejects. Either way the charge is 1 because the counts are exact and local.
//
// Retry-After (ms) is the predicted drain time, clamped to the policy's [min, max]:
//   inflight_limit: (projected − limit) / completion rate            (requests ÷ requests/s)
//   tenant_inflight: (projected − limit) / the tenant's completion rate, estimated as the cluster
//                   rate × the tenant's fraction of in-flight requests (completions follow in-flight)
//   kv_overload:    (projected − limit) / KV block release rate      (blocks ÷ blocks/s); the release
//                   rate is measured, or completion rate × mean blocks per in-flight request
//   predicted_ttft: predicted TTFT − objective   (queued work ahead drains in real time)
//   no_capacity, fail_closed: 1 s — nothing drains; long enough not to hammer, short enough to
//                   come back quickly once an engine registers or the bus reconnects.
// An unmeasured (zero) drain rate, or a request too large to fit even an idle cluster, yields the
// maximum. In fail-static mode the cluster-wide rates are scaled by 1 ÷ instances like the limits.
//
// Allocation: an admission returns a shared frozen object; only rejections allocate.

import type { ClassObjectives, RejectHttpStatus, ResolvedPolicy, TenantMapping } from "../policy/types.js";
import { InvalidAdmissionFactsError } from "./errors.js";

/**
 * Bytes of request body per prompt token when the prompt is text: OpenAI's rule of thumb for
 * English is ~4 characters per token. Body bytes ≥ prompt characters (JSON framing, multi-byte
 * UTF-8), so the estimate errs towards more tokens, i.e. towards caution.
 */
export const PROMPT_BYTES_PER_TOKEN = 4;

/** Retry-After used when nothing drains (no capacity, fail-closed); clamped by policy like any other. */
export const NO_DRAIN_RETRY_AFTER_MS = 1000;

/** Estimated prompt tokens of a text prompt from the request body size (no tokenizer). */
export function estimatePromptTokensFromBytes(
  bodyBytes: number,
  bytesPerToken = PROMPT_BYTES_PER_TOKEN,
): number {
  if (!(bodyBytes >= 0) || !(bytesPerToken > 0)) {
    throw new InvalidAdmissionFactsError(
      `bodyBytes ${bodyBytes} / bytesPerToken ${bytesPerToken} out of range`,
    );
  }
  return Math.ceil(bodyBytes / bytesPerToken);
}

/**
 * KV blocks a request can occupy by its end: ceil((prompt + max_tokens) / block_size). The whole
 * budget is counted from admission on because L1 cannot know how long the answer will be, and
 * because it is what the engine must be able to hold if the request runs to max_tokens.
 */
export function requestKvBlocks(promptTokens: number, maxTokens: number, blockSize: number): number {
  return Math.ceil((promptTokens + maxTokens) / blockSize);
}

/** Cheap facts about one request, taken before tokenizing. */
export interface IngressFacts {
  /** Resolved class name (`resolveClass`); an unknown name is treated as the default class. */
  readonly className: string;
  /** Token-array prompts: their length; text: `estimatePromptTokensFromBytes(body bytes)`. */
  readonly promptTokens: number;
  /** The request's `max_tokens` (or the shell's default for it when absent). */
  readonly maxTokens: number;
  /** Tenant id (policy `tenants[].tenant`) when known; its `maxInflight` applies (rule 3). */
  readonly tenant?: string | undefined;
  /**
   * Requests this one decision admits together, all or none (Envoy's `hits_addend`); default 1.
   * Every rule charges `count` requests of this size.
   */
  readonly count?: number | undefined;
}

/** One tenant's in-flight load for rule 3, from its own frontend-sync view. */
export interface TenantLoad {
  /** False when the sync bus is down: the counts are this instance's and the fail mode applies. */
  readonly globalStateAvailable: boolean;
  /** The tenant's admitted, unfinished requests of this model (global incl. mirrors, or local). */
  readonly inflightRequests: number;
  /** Live frontends (≥ 1); when state is unavailable, the last known count. */
  readonly liveInstances: number;
}

/** The state L1 decides against; built by the shell from frontend-sync, etcd and cluster.load. */
export interface IngressView {
  /** False when the sync bus is down: the policy's fail mode applies and the counts are local. */
  readonly globalStateAvailable: boolean;
  /** Admitted, unfinished requests: global (see frontend-sync) when available, else this instance's. */
  readonly inflightRequests: number;
  /** KV blocks of those requests (`requestKvBlocks` each), same scope as `inflightRequests`. */
  readonly inflightKvBlocks: number;
  /** Live frontends sharing the limits (≥ 1); when state is unavailable, the last known count. */
  readonly liveInstances: number;
  /** Σ kv_total_blocks of live engines (etcd registrations). */
  readonly kvCapacityBlocks: number;
  /** Engines' block size in tokens. */
  readonly kvBlockSize: number;
  /** Cluster-wide completions per second (EWMA); 0 = not measured yet. */
  readonly completionRatePerS: number;
  /** Cluster-wide KV blocks released per second (EWMA); 0 = derive from the completion rate. */
  readonly kvBlockReleaseRatePerS: number;
  /** Cluster-predicted TTFT per class name (from `cluster.load`); undefined until it exists. */
  readonly predictedTtftMsByClass: Readonly<Record<string, number>> | undefined;
  /** When the cluster load carrying those predictions was produced (same clock as `nowMs`). */
  readonly clusterLoadAtMs: number;
  /**
   * Load of `facts.tenant`; required when that tenant has a `maxInflight` (a shell that forgets it
   * gets InvalidAdmissionFactsError rather than a silently unlimited tenant).
   */
  readonly tenantLoad?: TenantLoad | undefined;
}

export type IngressRejectReason =
  | "tenant_inflight"
  | "inflight_limit"
  | "kv_overload"
  | "predicted_ttft"
  | "no_capacity"
  | "fail_closed";

export interface IngressAdmit {
  readonly admitted: true;
}

export interface IngressReject {
  readonly admitted: false;
  readonly level: "ingress";
  readonly reason: IngressRejectReason;
  /** Class the request was judged in. */
  readonly class: string;
  /** The number the rule compared (projected requests, projected blocks, predicted TTFT ms). */
  readonly observed: number;
  /** The threshold it exceeded (the class's share of the limit, or its TTFT objective ms). */
  readonly limit: number;
  /** Predicted drain time, clamped to the policy's bounds, whole ms. */
  readonly retryAfterMs: number;
  /** The policy's rejection status. */
  readonly httpStatus: RejectHttpStatus;
}

export type IngressDecision = IngressAdmit | IngressReject;

const ADMIT: IngressAdmit = Object.freeze({ admitted: true });

// Guards floor() against products such as 0.7 × 30 = 20.999999999999996.
const FLOOR_EPSILON = 1e-9;

function classOf(name: string, policy: ResolvedPolicy): ClassObjectives {
  const classes = policy.classes;
  for (let i = 0; i < classes.length; i++) {
    const c = classes[i]!;
    if (c.name === name) return c;
  }
  for (let i = 0; i < classes.length; i++) {
    const c = classes[i]!;
    if (c.name === policy.defaultClass) return c;
  }
  throw new InvalidAdmissionFactsError(`policy has no default class ${policy.defaultClass}`);
}

const tenantTables = new WeakMap<ResolvedPolicy, ReadonlyMap<string, TenantMapping>>();

/** The policy's mapping of `tenant`, if any (one table per policy revision, built on first use). */
export function tenantMappingOf(policy: ResolvedPolicy, tenant: string): TenantMapping | undefined {
  let table = tenantTables.get(policy);
  if (table === undefined) {
    table = new Map(policy.tenants.map((t) => [t.tenant, t]));
    tenantTables.set(policy, table);
  }
  return table.get(tenant);
}

/** The tenant's in-flight limit under `policy`; 0 = none (unknown tenant, or no limit set). */
export function tenantInflightLimitOf(policy: ResolvedPolicy, tenant: string | undefined): number {
  if (tenant === undefined || tenant === "") return 0;
  return tenantMappingOf(policy, tenant)?.maxInflight ?? 0;
}

function reject(
  reason: IngressRejectReason,
  cls: ClassObjectives,
  observed: number,
  limit: number,
  drainMs: number,
  policy: ResolvedPolicy,
): IngressReject {
  const { retryAfterMinMs, retryAfterMaxMs, httpStatus } = policy.rejection;
  const bounded =
    drainMs > retryAfterMaxMs || !(drainMs >= 0) ? retryAfterMaxMs : Math.max(drainMs, retryAfterMinMs);
  return {
    admitted: false,
    level: "ingress",
    reason,
    class: cls.name,
    observed,
    limit,
    retryAfterMs: Math.ceil(bounded),
    httpStatus,
  };
}

/** Time to release `excess` units at `ratePerS`; Infinity when nothing is known to drain. */
function drainMs(excess: number, ratePerS: number): number {
  return ratePerS > 0 ? (excess / ratePerS) * 1000 : Number.POSITIVE_INFINITY;
}

/**
 * Decides whether one request may enter. Pure: everything it needs is in the arguments.
 * @param nowMs current time on the clock `view.clusterLoadAtMs` uses (only for cluster-load age).
 */
export function decideIngress(
  facts: IngressFacts,
  view: IngressView,
  policy: ResolvedPolicy,
  nowMs: number,
): IngressDecision {
  const { promptTokens, maxTokens } = facts;
  if (!(promptTokens >= 0 && maxTokens >= 0 && promptTokens + maxTokens < Number.POSITIVE_INFINITY)) {
    throw new InvalidAdmissionFactsError(
      `promptTokens ${promptTokens} and maxTokens ${maxTokens} must be finite ≥ 0`,
    );
  }
  const count = facts.count ?? 1;
  if (!(Number.isInteger(count) && count >= 1)) {
    throw new InvalidAdmissionFactsError(`count must be an integer ≥ 1, got ${count}`);
  }
  const cls = classOf(facts.className, policy);
  const ingress = policy.ingress;
  const failMode = policy.failMode;
  const global = view.globalStateAvailable;

  // 1. Global state unavailable and the policy prefers refusing to guessing.
  if (!global && failMode === "closed") {
    return reject("fail_closed", cls, 0, 0, NO_DRAIN_RETRY_AFTER_MS, policy);
  }
  // 2. Nothing to run on. Fail-open leaves it to the upstream to answer.
  const capacity = view.kvCapacityBlocks;
  if (!(capacity > 0) && failMode !== "open") {
    return reject("no_capacity", cls, 0, 0, NO_DRAIN_RETRY_AFTER_MS, policy);
  }

  const share = ingress.classLimitShare[cls.name] ?? cls.limitShare;
  const instances = Math.max(view.liveInstances || 1, 1);
  const charge = global ? instances : 1;
  const scale = !global && failMode === "static" ? 1 / instances : 1;
  const completionRate = view.completionRatePerS * scale;

  // 3. The tenant's own in-flight limit (see the header: charged once, fail-static rounds up).
  const tenantMax = tenantInflightLimitOf(policy, facts.tenant);
  if (tenantMax > 0) {
    const tenantLoad = view.tenantLoad;
    if (tenantLoad === undefined) {
      throw new InvalidAdmissionFactsError(
        `tenant ${facts.tenant} has maxInflight ${tenantMax} but the view carries no tenantLoad`,
      );
    }
    const tenantGlobal = tenantLoad.globalStateAvailable;
    const tenantInstances = Math.max(tenantLoad.liveInstances || 1, 1);
    const limit = !tenantGlobal && failMode === "static" ? Math.ceil(tenantMax / tenantInstances) : tenantMax;
    const projected = tenantLoad.inflightRequests + count;
    if (projected > limit) {
      // The tenant's completions are estimated as its fraction of the in-flight requests.
      const fraction =
        view.inflightRequests > 0 ? Math.min(1, tenantLoad.inflightRequests / view.inflightRequests) : 0;
      return reject(
        "tenant_inflight",
        cls,
        projected,
        limit,
        count > limit ? Number.POSITIVE_INFINITY : drainMs(projected - limit, completionRate * fraction),
        policy,
      );
    }
  }

  // 4. In-flight requests.
  if (ingress.maxInflight > 0) {
    const limit = Math.floor(share * ingress.maxInflight * scale + FLOOR_EPSILON);
    const projected = view.inflightRequests + charge * count;
    if (projected > limit) {
      return reject(
        "inflight_limit",
        cls,
        projected,
        limit,
        drainMs(projected - limit, completionRate),
        policy,
      );
    }
  }

  // 5. In-flight KV load.
  if (capacity > 0) {
    if (!(view.kvBlockSize >= 1)) {
      throw new InvalidAdmissionFactsError(
        `view.kvBlockSize must be ≥ 1 when capacity is known, got ${view.kvBlockSize}`,
      );
    }
    const blocks = requestKvBlocks(promptTokens, maxTokens, view.kvBlockSize) * count;
    const limit = Math.floor(share * ingress.kvOvercommit * capacity * scale + FLOOR_EPSILON);
    const projected = view.inflightKvBlocks + charge * blocks;
    if (projected > limit) {
      let releaseRate = view.kvBlockReleaseRatePerS * scale;
      if (!(releaseRate > 0) && view.inflightRequests > 0) {
        releaseRate = completionRate * (view.inflightKvBlocks / view.inflightRequests);
      }
      // A request that could not fit an idle cluster never drains into room: say so with the maximum.
      const wait =
        charge * blocks > limit ? Number.POSITIVE_INFINITY : drainMs(projected - limit, releaseRate);
      return reject("kv_overload", cls, projected, limit, wait, policy);
    }
  }

  // 6. Cluster-predicted TTFT, only while the prediction is fresh. Stale predictions are skipped in
  // static/open mode and refused in closed mode, as the policy's fail mode says.
  const predictions = view.predictedTtftMsByClass;
  if (ingress.predictedTtftCheck && predictions !== undefined) {
    const predictedMs = predictions[cls.name];
    if (predictedMs !== undefined) {
      if (nowMs - view.clusterLoadAtMs <= ingress.maxClusterLoadAgeMs) {
        if (predictedMs > cls.ttftObjectiveMs) {
          return reject(
            "predicted_ttft",
            cls,
            predictedMs,
            cls.ttftObjectiveMs,
            predictedMs - cls.ttftObjectiveMs,
            policy,
          );
        }
      } else if (failMode === "closed") {
        return reject(
          "fail_closed",
          cls,
          nowMs - view.clusterLoadAtMs,
          ingress.maxClusterLoadAgeMs,
          NO_DRAIN_RETRY_AFTER_MS,
          policy,
        );
      }
    }
  }

  return ADMIT;
}
