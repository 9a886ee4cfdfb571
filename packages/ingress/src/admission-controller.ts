// The ingress's admission controller: turns a request's cheap facts plus the global view (core's
// frontend-sync per model: own exact counts + live peers + mirrors) and live engine capacity into
// core's L1 decision (`decideIngress`), and hands out exactly-once slots. Used by the HTTP proxy and
// usable by a gRPC Admission service alike.
//
// Per-tenant limits: when the request's tenant has a `maxInflight` in the enforced (or shadow) policy,
// its admissions are also counted in the tenant's own frontend-sync view (ModelSync.tenantView), which
// rides on `ingress.state`, and the slot's single release releases both.

import {
  ADMIT_VERDICT,
  compareShadow,
  decideIngress,
  type IngressDecision,
  type IngressRejectReason,
  type IngressView,
  requestKvBlocks,
  type ShadowComparison,
  type ShadowVerdict,
  tenantInflightLimitOf,
} from "@sluice/core";
import type { ClusterPrediction } from "./cluster-load-view.js";
import type { EngineDirectory } from "./engine-registry.js";
import { enginesOf } from "./engine-registry.js";
import type { InflightLedger, Slot } from "./inflight-ledger.js";
import type { PolicyInForce } from "./ingress-policies.js";
import { type ModelSync, TENANT_BUCKET } from "./model-sync.js";

/** Block size assumed for the KV charge when no live engine of the model reports one. */
export const DEFAULT_CHARGE_BLOCK_SIZE = 16;

export interface AdmissionRequest {
  requestId: string;
  model: string;
  requestClass: string;
  promptTokens: number;
  /** Output budget charged: the request's max_tokens or the ingress default. */
  maxTokens: number;
  /** Tenant id ("" or absent when anonymous); its per-tenant limit applies. */
  tenant?: string | undefined;
}

export interface Rejection {
  reason: IngressRejectReason;
  requestClass: string;
  observed: number;
  limit: number;
  retryAfterMs: number;
  status: 429 | 503 | 529;
  policyRevision: number;
}

export type AdmissionResult =
  | { admitted: true; slot: Slot; chargedKvBlocks: number; decisionNs: number }
  | { admitted: false; rejection: Rejection; chargedKvBlocks: number; decisionNs: number };

export type BatchAdmissionResult =
  | { admitted: true; slots: Slot[]; chargedKvBlocks: number; decisionNs: number }
  | { admitted: false; rejection: Rejection; chargedKvBlocks: number; decisionNs: number };

export interface AdmissionController {
  check(request: AdmissionRequest): AdmissionResult;
  /**
   * `count` requests of the same shape decided together, all or none (Envoy's `hits_addend`): one
   * decision charging `count` requests, then `count` slots (ids `{requestId}`, `{requestId}#2`, …).
   * `chargedKvBlocks` is per request.
   */
  checkBatch(request: AdmissionRequest, count: number): BatchAdmissionResult;
}

export interface AdmissionControllerOptions {
  ledger: InflightLedger;
  sync: ModelSync;
  engines: EngineDirectory;
  policyFor(model: string): PolicyInForce;
  /** Shadow candidate of a model (never enforced); undefined — the normal case — costs one lookup. */
  shadowFor?(model: string): PolicyInForce | undefined;
  /** Called once per request judged by a shadow candidate, with both verdicts. */
  onShadow?(report: IngressShadowReport): void;
  /** The aggregator's latest predicted TTFT per class for a model (`cluster.load`), if any. */
  clusterPrediction?(model: string): ClusterPrediction | undefined;
  nowMs(): number;
}

export interface IngressShadowReport {
  readonly request: AdmissionRequest;
  readonly comparison: ShadowComparison;
  readonly enforcedRevision: number;
  readonly shadowRevision: number;
}

/** L1 has no hold: a decision is an admit or a reject with its reason code. */
function verdictOf(decision: IngressDecision): ShadowVerdict {
  if (decision.admitted) return ADMIT_VERDICT;
  return { outcome: "reject", reason: decision.reason, observed: decision.observed, limit: decision.limit };
}

export function createAdmissionController(options: AdmissionControllerOptions): AdmissionController {
  const { ledger, sync } = options;
  // Reused for every decision: the L1 decision must not allocate on the admit path.
  const view: { -readonly [K in keyof IngressView]: IngressView[K] } = {
    globalStateAvailable: true,
    inflightRequests: 0,
    inflightKvBlocks: 0,
    liveInstances: 1,
    kvCapacityBlocks: 0,
    kvBlockSize: DEFAULT_CHARGE_BLOCK_SIZE,
    completionRatePerS: 0,
    kvBlockReleaseRatePerS: 0,
    predictedTtftMsByClass: undefined,
    clusterLoadAtMs: 0,
    tenantLoad: undefined,
  };

  type Decided =
    | { admitted: true; chargedKvBlocks: number; started: bigint; tenantTracked: boolean }
    | { admitted: false; rejection: Rejection; chargedKvBlocks: number; decisionNs: number };

  const decide = (request: AdmissionRequest, count: number): Decided => {
    const started = process.hrtime.bigint();
    const now = options.nowMs();
    const { policy, revision } = options.policyFor(request.model);
    const engines = enginesOf(options.engines, request.model);
    const blockSize = engines[0]?.blockSize ?? DEFAULT_CHARGE_BLOCK_SIZE;
    const load = sync.load(request.model, now);
    view.globalStateAvailable = load.globalStateAvailable;
    view.inflightRequests = load.inflightRequests;
    view.inflightKvBlocks = load.inflightKvBlocks;
    view.liveInstances = load.liveInstances;
    view.kvCapacityBlocks = engines.reduce((n, e) => n + e.kvTotalBlocks, 0);
    view.kvBlockSize = blockSize;
    // Own completion rate × instances approximates the cluster-wide drain rate (peers share load).
    view.completionRatePerS = ledger.completionRatePerS(now) * load.liveInstances;
    const prediction = options.clusterPrediction?.(request.model);
    view.predictedTtftMsByClass = prediction?.predictedTtftMsByClass;
    view.clusterLoadAtMs = prediction?.atMs ?? 0;
    const shadow = options.shadowFor?.(request.model);
    const tenant = request.tenant || undefined;
    // A tenant is tracked when either policy limits it, so the shadow verdict sees real counts too.
    const tenantTracked =
      tenant !== undefined &&
      (tenantInflightLimitOf(policy, tenant) > 0 ||
        (shadow !== undefined && tenantInflightLimitOf(shadow.policy, tenant) > 0));
    view.tenantLoad = tenantTracked ? sync.tenantView(request.model, tenant).load(now) : undefined;
    const facts = {
      className: request.requestClass,
      promptTokens: request.promptTokens,
      maxTokens: request.maxTokens,
      tenant,
      count,
    };
    const decision = decideIngress(facts, view, policy, now);
    if (shadow !== undefined && options.onShadow !== undefined) {
      // Same facts, same view, same clock, before the ledger changes; the verdict is only reported.
      const candidate = decideIngress(facts, view, shadow.policy, now);
      options.onShadow({
        request,
        comparison: compareShadow(verdictOf(decision), verdictOf(candidate)),
        enforcedRevision: revision,
        shadowRevision: shadow.revision,
      });
    }
    const chargedKvBlocks = requestKvBlocks(request.promptTokens, request.maxTokens, blockSize);
    if (!decision.admitted) {
      return {
        admitted: false,
        chargedKvBlocks,
        decisionNs: Number(process.hrtime.bigint() - started),
        rejection: {
          reason: decision.reason,
          requestClass: decision.class,
          observed: decision.observed,
          limit: decision.limit,
          retryAfterMs: decision.retryAfterMs,
          status: decision.httpStatus,
          policyRevision: revision,
        },
      };
    }
    return { admitted: true, chargedKvBlocks, started, tenantTracked };
  };

  const acquire = (
    request: AdmissionRequest,
    requestId: string,
    kvBlocks: number,
    tenantTracked: boolean,
  ) => {
    const modelView = sync.view(request.model);
    modelView.admitted(request.requestClass, kvBlocks);
    const tenantView =
      tenantTracked && request.tenant ? sync.tenantView(request.model, request.tenant) : undefined;
    tenantView?.admitted(TENANT_BUCKET, 0);
    return ledger.acquire(requestId, request.model, request.requestClass, kvBlocks, () => {
      modelView.released(request.requestClass, kvBlocks);
      tenantView?.released(TENANT_BUCKET, 0);
    });
  };

  return {
    check(request) {
      const d = decide(request, 1);
      if (!d.admitted) return d;
      const slot = acquire(request, request.requestId, d.chargedKvBlocks, d.tenantTracked);
      const decisionNs = Number(process.hrtime.bigint() - d.started);
      return { admitted: true, slot, chargedKvBlocks: d.chargedKvBlocks, decisionNs };
    },
    checkBatch(request, count) {
      const d = decide(request, count);
      if (!d.admitted) return d;
      const slots: Slot[] = [];
      for (let i = 1; i <= count; i++) {
        const id = i === 1 ? request.requestId : `${request.requestId}#${i}`;
        slots.push(acquire(request, id, d.chargedKvBlocks, d.tenantTracked));
      }
      const decisionNs = Number(process.hrtime.bigint() - d.started);
      return { admitted: true, slots, chargedKvBlocks: d.chargedKvBlocks, decisionNs };
    },
  };
}
