// L1 in the simulator: core's `decideIngress` fed the way one `sluice ingress` is fed in production.
//
// One simulated ingress, so its view is exact (DESIGN §4's multi-frontend sync is not simulated):
// in-flight requests and in-flight KV blocks (`requestKvBlocks` of prompt + max_tokens, max_tokens = the
// trace's output length) of admitted, unfinished requests; KV capacity = Σ engines' blocks; completion
// rate measured from completions. The cluster-predicted TTFT per class comes from core's
// `aggregateClusterLoad` (what `sluice aggregator` publishes on `cluster.load`) over the engine snapshots
// that have reached the ingress side — i.e. `--load-delay-ms` stale — plus the router's predicted load
// when the policy has an L2 router (it publishes it on `router.sync`).

import {
  aggregateClusterLoad as aggregate,
  type ClusterAggregateOptions,
  clusterAggregateOptionsWithDefaults,
  decideIngress,
  type EngineCapacity,
  type IngressView,
  type ObservedEngineLoad,
  type PredictedWorkerLoad,
  type ResolvedPolicy,
  requestKvBlocks,
} from "@sluice/core";
import type {
  AdmissionDecision,
  ClusterView,
  EngineObservation,
  PolicyContext,
  PolicyRequest,
} from "./policy.js";

/** Smoothing of the completion-interval estimate behind the completion rate (weight of a new interval). */
export const INGRESS_COMPLETION_RATE_ALPHA = 0.05;

/** Worker id of simulated engine `index`, shared by every sluice-* component. */
export function workerIdOf(index: number): string {
  return `engine-${index}`;
}

export interface SimIngress {
  admit(request: PolicyRequest, view: ClusterView, nowMs: number): AdmissionDecision;
  onComplete(nowMs: number): void;
  onRelease(request: PolicyRequest): void;
  onObservation(engine: number, observation: EngineObservation, nowMs: number): void;
}

export interface SimIngressOptions {
  policy: ResolvedPolicy;
  context: PolicyContext;
  /** The L2 router's predicted per-worker load, when there is one. */
  predictedLoad?: () => ReadonlyMap<string, PredictedWorkerLoad>;
}

const MODEL = "sim";

export function createSimIngress(options: SimIngressOptions): SimIngress {
  const { policy, context } = options;
  const blockSize = context.blockSize;
  const engines: EngineCapacity[] = [];
  for (let e = 0; e < context.engineCount; e++) {
    engines.push({
      workerId: workerIdOf(e),
      model: MODEL,
      kvTotalBlocks: context.numGpuBlocks,
      maxNumSeqs: context.maxNumSeqs,
    });
  }
  const aggregateOptions: ClusterAggregateOptions = clusterAggregateOptionsWithDefaults({
    kvOvercommit: policy.ingress.kvOvercommit,
    classes: policy.classes.map((c) => ({ name: c.name, limitShare: c.limitShare })),
  });
  const observed = new Map<string, ObservedEngineLoad>();
  const noPrediction: ReadonlyMap<string, PredictedWorkerLoad> = new Map();
  let inflightKvBlocks = 0;
  let lastCompletionMs: number | undefined;
  let meanCompletionGapMs = 0;
  let clusterDirty = false;
  let predictedTtftMsByClass: Record<string, number> | undefined;
  let clusterLoadAtMs = Number.NEGATIVE_INFINITY;

  const refreshCluster = (nowMs: number): void => {
    // The router's prediction changes with every routing decision, so with L2 the view is always fresh.
    if (!clusterDirty && options.predictedLoad === undefined) return;
    clusterDirty = false;
    const [view] = aggregateClusterLoad(nowMs);
    if (view === undefined) return;
    const byClass: Record<string, number> = {};
    for (const h of view.classHeadroom) byClass[h.requestClass] = h.predictedTtftMs;
    predictedTtftMsByClass = byClass;
    clusterLoadAtMs = nowMs;
  };
  const aggregateClusterLoad = (nowMs: number) =>
    aggregate(
      {
        engines,
        observed,
        predicted: options.predictedLoad?.() ?? noPrediction,
        nowMs,
      },
      aggregateOptions,
    );

  return {
    admit(request, view, nowMs) {
      refreshCluster(nowMs);
      const ingressView: IngressView = {
        globalStateAvailable: true,
        inflightRequests: view.inFlight,
        inflightKvBlocks,
        liveInstances: 1,
        kvCapacityBlocks: context.engineCount * context.numGpuBlocks,
        kvBlockSize: blockSize,
        completionRatePerS: meanCompletionGapMs > 0 ? 1000 / meanCompletionGapMs : 0,
        kvBlockReleaseRatePerS: 0,
        predictedTtftMsByClass,
        clusterLoadAtMs,
      };
      const decision = decideIngress(
        {
          className: request.requestClass,
          promptTokens: request.promptTokens,
          maxTokens: request.outputTokens,
        },
        ingressView,
        policy,
        nowMs,
      );
      if (!decision.admitted) {
        return { admit: false, level: "L1", reason: decision.reason, retryAfterMs: decision.retryAfterMs };
      }
      inflightKvBlocks += requestKvBlocks(request.promptTokens, request.outputTokens, blockSize);
      return { admit: true };
    },
    onComplete(nowMs) {
      if (lastCompletionMs !== undefined) {
        const gap = nowMs - lastCompletionMs;
        meanCompletionGapMs =
          meanCompletionGapMs === 0
            ? gap
            : meanCompletionGapMs + INGRESS_COMPLETION_RATE_ALPHA * (gap - meanCompletionGapMs);
      }
      lastCompletionMs = nowMs;
    },
    onRelease(request) {
      inflightKvBlocks -= requestKvBlocks(request.promptTokens, request.outputTokens, blockSize);
    },
    onObservation(engine, observation, nowMs) {
      const { load } = observation;
      observed.set(workerIdOf(engine), {
        waiting: load.waiting,
        running: load.running,
        kvUsedBlocks: load.kvUsedBlocks,
        pendingPrefillTokens: load.pendingPrefillTokens,
        prefillTokensPerS: observation.prefillTokensPerS,
        receivedAtMs: nowMs,
      });
      clusterDirty = true;
    },
  };
}
