// The aggregator's whole computation: from live engine registrations (capacity), each engine's
// latest observed load snapshot and the routers' predicted per-worker load, one view per model of
// capacity, used (observed and predicted, kept apart), per-class admission headroom and freshness.
// Pure: the shell passes facts and "now"; nothing here reads a clock or the network.

import { BUILT_IN_CLASSES, DEFAULT_POLICY } from "../policy/defaults.js";
import { ClusterAggregateConfigError } from "./errors.js";

/** An engine's registration (`engines/{worker}`): what it can hold. */
export interface EngineCapacity {
  readonly workerId: string;
  readonly model: string;
  readonly kvTotalBlocks: number;
  readonly maxNumSeqs: number;
}

/** The latest `EngineLoad` of one engine plus when this process received it. */
export interface ObservedEngineLoad {
  readonly waiting: number;
  readonly running: number;
  readonly kvUsedBlocks: number;
  readonly pendingPrefillTokens: number;
  /** Measured prefill throughput; 0 when not measured yet. */
  readonly prefillTokensPerS: number;
  /** Arrival time on the aggregator's clock (engine clocks are not trusted to agree with ours). */
  readonly receivedAtMs: number;
}

/** Routers' prediction for one worker (from `router.sync`), never merged into the observation. */
export interface PredictedWorkerLoad {
  readonly activeBlocks: number;
  readonly pendingPrefillTokens: number;
  readonly requests: number;
}

/** One ingress's latest `IngressState`, summed per model, with its own liveness bound. */
export interface IngressInflight {
  readonly instanceId: string;
  readonly receivedAtMs: number;
  /** Older than this it is a dead or partitioned ingress and ignored (≈ 3 of its heartbeats). */
  readonly staleAfterMs: number;
  readonly models: readonly {
    readonly model: string;
    readonly requests: number;
    readonly kvBlocks: number;
  }[];
}

/** A class's share of the cluster limits (from the policy). */
export interface ClassShare {
  readonly name: string;
  /** Fraction (0..1] of each limit the class may fill. */
  readonly limitShare: number;
}

export interface ClusterAggregateOptions {
  /** An engine whose latest snapshot is older than this (or that has none) is flagged stale. */
  readonly staleAfterMs: number;
  /** KV admission limit as a multiple of capacity (policy `ingress.kv_overcommit`). */
  readonly kvOvercommit: number;
  readonly classes: readonly ClassShare[];
  /** Absolute KV-block change per model that counts as "changed" (below it, only heartbeats publish). */
  readonly changeKvBlocks: number;
  /** Absolute pending-prefill-token change per model that counts as "changed". */
  readonly changePrefillTokens: number;
}

/** Three missed 1 s heartbeats: an engine this quiet is likely gone or partitioned. */
export const DEFAULT_STALE_AFTER_MS = 3_000;

export const DEFAULT_CLUSTER_AGGREGATE_OPTIONS: Readonly<ClusterAggregateOptions> = Object.freeze({
  staleAfterMs: DEFAULT_STALE_AFTER_MS,
  kvOvercommit: DEFAULT_POLICY.ingress.kvOvercommit,
  classes: BUILT_IN_CLASSES.map((c) => Object.freeze({ name: c.name, limitShare: c.limitShare })),
  changeKvBlocks: 1,
  changePrefillTokens: 1,
});

export function clusterAggregateOptionsWithDefaults(
  options: Partial<ClusterAggregateOptions> = {},
): ClusterAggregateOptions {
  const o: ClusterAggregateOptions = { ...DEFAULT_CLUSTER_AGGREGATE_OPTIONS, ...options };
  if (!(o.staleAfterMs > 0) || !Number.isFinite(o.staleAfterMs)) {
    throw new ClusterAggregateConfigError(`staleAfterMs must be a finite number > 0, got ${o.staleAfterMs}`);
  }
  if (!(o.kvOvercommit > 0) || !Number.isFinite(o.kvOvercommit)) {
    throw new ClusterAggregateConfigError(`kvOvercommit must be a finite number > 0, got ${o.kvOvercommit}`);
  }
  if (o.classes.length === 0) throw new ClusterAggregateConfigError("classes must not be empty");
  for (const c of o.classes) {
    if (!(c.limitShare > 0 && c.limitShare <= 1)) {
      throw new ClusterAggregateConfigError(
        `class ${c.name}: limitShare must be in (0, 1], got ${c.limitShare}`,
      );
    }
  }
  for (const key of ["changeKvBlocks", "changePrefillTokens"] as const) {
    if (!(o[key] >= 1) || !Number.isFinite(o[key])) {
      throw new ClusterAggregateConfigError(`${key} must be a finite number >= 1, got ${o[key]}`);
    }
  }
  return o;
}

export interface ClassHeadroomView {
  readonly requestClass: string;
  /** Requests the class may still admit; negative = over its share. */
  readonly inflightRequests: number;
  /** KV blocks the class may still admit; negative = over its share. */
  readonly kvBlocks: number;
  /** Pending prefill on the least-loaded engine at its measured rate; 0 when no engine has a rate. */
  readonly predictedTtftMs: number;
}

export interface ModelLoadView {
  readonly model: string;
  readonly liveEngines: number;
  readonly capacityKvBlocks: number;
  readonly capacitySeqs: number;
  readonly observedKvUsedBlocks: number;
  readonly observedWaiting: number;
  readonly observedRunning: number;
  readonly observedPendingPrefillTokens: number;
  readonly observedPrefillTokensPerS: number;
  readonly predictedRequests: number;
  readonly predictedActiveBlocks: number;
  readonly predictedPendingPrefillTokens: number;
  /** In-flight requests summed over live ingresses (admitted at L1, not yet finished). */
  readonly ingressInflightRequests: number;
  /** In-flight KV blocks (prompt + max_tokens estimate) summed over live ingresses. */
  readonly ingressInflightKvBlocks: number;
  readonly classHeadroom: readonly ClassHeadroomView[];
  /** Age of the oldest contributing snapshot; `staleAfterMs` or more means the view is untrustworthy. */
  readonly freshnessMs: number;
  /** Engines with no snapshot or one older than `staleAfterMs`, sorted. */
  readonly staleWorkerIds: readonly string[];
}

export interface ClusterFacts {
  readonly engines: Iterable<EngineCapacity>;
  readonly observed: ReadonlyMap<string, ObservedEngineLoad>;
  readonly predicted: ReadonlyMap<string, PredictedWorkerLoad>;
  /** Ingress snapshots; stale ones are skipped. Absent = no ingress reports. */
  readonly ingress?: Iterable<IngressInflight>;
  readonly nowMs: number;
}

interface ModelAccumulator {
  workers: string[];
  capacityKvBlocks: number;
  capacitySeqs: number;
  observedKvUsedBlocks: number;
  observedWaiting: number;
  observedRunning: number;
  observedPendingPrefillTokens: number;
  observedPrefillTokensPerS: number;
  predictedRequests: number;
  predictedActiveBlocks: number;
  predictedPendingPrefillTokens: number;
  // Headroom uses, per engine, the larger of observed and predicted: the prediction knows what was
  // just routed, the observation knows what the engine really holds; either can be the fresher one.
  effectiveKvUsed: number;
  effectiveRequests: number;
  ingressRequests: number;
  ingressKvBlocks: number;
  bestTtftMs: number | undefined;
  freshnessMs: number;
  stale: string[];
}

const nonNegative = (n: number): number => (Number.isFinite(n) && n > 0 ? n : 0);

/** Computes one view per model with at least one registered engine, sorted by model name. */
export function aggregateClusterLoad(facts: ClusterFacts, options: ClusterAggregateOptions): ModelLoadView[] {
  const byModel = new Map<string, ModelAccumulator>();
  for (const engine of facts.engines) {
    let acc = byModel.get(engine.model);
    if (acc === undefined) {
      acc = {
        workers: [],
        capacityKvBlocks: 0,
        capacitySeqs: 0,
        observedKvUsedBlocks: 0,
        observedWaiting: 0,
        observedRunning: 0,
        observedPendingPrefillTokens: 0,
        observedPrefillTokensPerS: 0,
        predictedRequests: 0,
        predictedActiveBlocks: 0,
        predictedPendingPrefillTokens: 0,
        effectiveKvUsed: 0,
        effectiveRequests: 0,
        ingressRequests: 0,
        ingressKvBlocks: 0,
        bestTtftMs: undefined,
        freshnessMs: 0,
        stale: [],
      };
      byModel.set(engine.model, acc);
    }
    acc.workers.push(engine.workerId);
    acc.capacityKvBlocks += nonNegative(engine.kvTotalBlocks);
    acc.capacitySeqs += nonNegative(engine.maxNumSeqs);

    const observed = facts.observed.get(engine.workerId);
    const predicted = facts.predicted.get(engine.workerId);
    let ageMs: number = options.staleAfterMs;
    if (observed !== undefined) {
      ageMs = Math.max(0, facts.nowMs - observed.receivedAtMs);
      acc.observedKvUsedBlocks += nonNegative(observed.kvUsedBlocks);
      acc.observedWaiting += nonNegative(observed.waiting);
      acc.observedRunning += nonNegative(observed.running);
      acc.observedPendingPrefillTokens += nonNegative(observed.pendingPrefillTokens);
      acc.observedPrefillTokensPerS += nonNegative(observed.prefillTokensPerS);
    }
    if (observed === undefined || ageMs >= options.staleAfterMs) acc.stale.push(engine.workerId);
    acc.freshnessMs = Math.max(acc.freshnessMs, ageMs);
    if (predicted !== undefined) {
      acc.predictedRequests += nonNegative(predicted.requests);
      acc.predictedActiveBlocks += nonNegative(predicted.activeBlocks);
      acc.predictedPendingPrefillTokens += nonNegative(predicted.pendingPrefillTokens);
    }
    acc.effectiveKvUsed += Math.max(
      nonNegative(observed?.kvUsedBlocks ?? 0),
      nonNegative(predicted?.activeBlocks ?? 0),
    );
    acc.effectiveRequests += Math.max(
      nonNegative(observed?.running ?? 0) + nonNegative(observed?.waiting ?? 0),
      nonNegative(predicted?.requests ?? 0),
    );
    const rate = nonNegative(observed?.prefillTokensPerS ?? 0);
    if (rate > 0) {
      const pending = Math.max(
        nonNegative(observed?.pendingPrefillTokens ?? 0),
        nonNegative(predicted?.pendingPrefillTokens ?? 0),
      );
      const ttftMs = (pending / rate) * 1000;
      acc.bestTtftMs = acc.bestTtftMs === undefined ? ttftMs : Math.min(acc.bestTtftMs, ttftMs);
    }
  }

  for (const ingress of facts.ingress ?? []) {
    const ageMs = Math.max(0, facts.nowMs - ingress.receivedAtMs);
    if (ageMs > ingress.staleAfterMs) continue;
    for (const m of ingress.models) {
      const acc = byModel.get(m.model);
      if (acc === undefined) continue; // no live engine serves it: nothing to admit against
      acc.ingressRequests += nonNegative(m.requests);
      acc.ingressKvBlocks += nonNegative(m.kvBlocks);
      acc.freshnessMs = Math.max(acc.freshnessMs, ageMs);
    }
  }

  const views: ModelLoadView[] = [];
  for (const [model, acc] of [...byModel].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const kvLimit = acc.capacityKvBlocks * options.kvOvercommit;
    views.push({
      model,
      liveEngines: acc.workers.length,
      capacityKvBlocks: acc.capacityKvBlocks,
      capacitySeqs: acc.capacitySeqs,
      observedKvUsedBlocks: acc.observedKvUsedBlocks,
      observedWaiting: acc.observedWaiting,
      observedRunning: acc.observedRunning,
      observedPendingPrefillTokens: acc.observedPendingPrefillTokens,
      observedPrefillTokensPerS: acc.observedPrefillTokensPerS,
      predictedRequests: acc.predictedRequests,
      predictedActiveBlocks: acc.predictedActiveBlocks,
      predictedPendingPrefillTokens: acc.predictedPendingPrefillTokens,
      ingressInflightRequests: acc.ingressRequests,
      ingressInflightKvBlocks: acc.ingressKvBlocks,
      // The ingresses' in-flight counts include what engines hold, so the larger of the two is used.
      classHeadroom: options.classes.map((c) => ({
        requestClass: c.name,
        inflightRequests:
          Math.floor(acc.capacitySeqs * c.limitShare) - Math.max(acc.effectiveRequests, acc.ingressRequests),
        kvBlocks: Math.floor(kvLimit * c.limitShare) - Math.max(acc.effectiveKvUsed, acc.ingressKvBlocks),
        predictedTtftMs: acc.bestTtftMs ?? 0,
      })),
      freshnessMs: Math.round(acc.freshnessMs),
      staleWorkerIds: acc.stale.sort(),
    });
  }
  return views;
}

/**
 * Whether `next` differs from `prev` enough to publish now rather than wait for the heartbeat.
 * Freshness is ignored (it changes every millisecond); an engine turning stale is not.
 */
export function clusterLoadChanged(
  prev: readonly ModelLoadView[] | undefined,
  next: readonly ModelLoadView[],
  options: Pick<ClusterAggregateOptions, "changeKvBlocks" | "changePrefillTokens">,
): boolean {
  if (prev === undefined || prev.length !== next.length) return true;
  for (let i = 0; i < next.length; i++) {
    const a = prev[i];
    const b = next[i];
    if (a === undefined || b === undefined || a.model !== b.model) return true;
    if (
      a.liveEngines !== b.liveEngines ||
      a.capacityKvBlocks !== b.capacityKvBlocks ||
      a.capacitySeqs !== b.capacitySeqs ||
      a.observedWaiting !== b.observedWaiting ||
      a.observedRunning !== b.observedRunning ||
      a.predictedRequests !== b.predictedRequests ||
      a.ingressInflightRequests !== b.ingressInflightRequests ||
      a.staleWorkerIds.join(",") !== b.staleWorkerIds.join(",")
    ) {
      return true;
    }
    if (
      Math.abs(a.observedKvUsedBlocks - b.observedKvUsedBlocks) >= options.changeKvBlocks ||
      Math.abs(a.predictedActiveBlocks - b.predictedActiveBlocks) >= options.changeKvBlocks ||
      Math.abs(a.ingressInflightKvBlocks - b.ingressInflightKvBlocks) >= options.changeKvBlocks ||
      Math.abs(a.observedPendingPrefillTokens - b.observedPendingPrefillTokens) >=
        options.changePrefillTokens ||
      Math.abs(a.predictedPendingPrefillTokens - b.predictedPendingPrefillTokens) >=
        options.changePrefillTokens
    ) {
      return true;
    }
  }
  return false;
}
