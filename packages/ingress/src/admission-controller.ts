// The ingress's admission controller: turns a request's cheap facts plus the global view (core's
// frontend-sync per model: own exact counts + live peers + mirrors) and live engine capacity into
// core's L1 decision (`decideIngress`), and hands out exactly-once slots. Used by the HTTP proxy and
// usable by a gRPC Admission service alike.

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
} from "@sluice/core";
import type { ClusterPrediction } from "./cluster-load-view.js";
import type { EngineDirectory } from "./engine-registry.js";
import { enginesOf } from "./engine-registry.js";
import type { InflightLedger, Slot } from "./inflight-ledger.js";
import type { PolicyInForce } from "./ingress-policies.js";
import type { ModelSync } from "./model-sync.js";

/** Block size assumed for the KV charge when no live engine of the model reports one. */
export const DEFAULT_CHARGE_BLOCK_SIZE = 16;

export interface AdmissionRequest {
  requestId: string;
  model: string;
  requestClass: string;
  promptTokens: number;
  /** Output budget charged: the request's max_tokens or the ingress default. */
  maxTokens: number;
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

export interface AdmissionController {
  check(request: AdmissionRequest): AdmissionResult;
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
  };

  return {
    check(request) {
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
      const facts = {
        className: request.requestClass,
        promptTokens: request.promptTokens,
        maxTokens: request.maxTokens,
      };
      const decision = decideIngress(facts, view, policy, now);
      const shadow = options.shadowFor?.(request.model);
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
      const decisionNs = Number(process.hrtime.bigint() - started);
      if (!decision.admitted) {
        return {
          admitted: false,
          chargedKvBlocks,
          decisionNs,
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
      const modelView = sync.view(request.model);
      modelView.admitted(request.requestClass, chargedKvBlocks);
      const slot = ledger.acquire(
        request.requestId,
        request.model,
        request.requestClass,
        chargedKvBlocks,
        () => modelView.released(request.requestClass, chargedKvBlocks),
      );
      return { admitted: true, slot, chargedKvBlocks, decisionNs };
    },
  };
}
