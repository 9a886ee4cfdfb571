// L2 in the simulator: core's `createL2Router` over a `createPrefixIndex` fed by the engines' KV events
// and a `createWorkerLoad` prediction, exactly the pieces `sluice router` wires to NATS. The simulator
// delivers KV events and load snapshots `--load-delay-ms` after the engine produced them (the index and
// the observation lag; the router's own prediction is immediate), and calls `drain` whenever capacity
// may have freed and at the hold queue's next expiry.

import {
  type BlockHash,
  createL2Router,
  createPrefixIndex,
  createWorkerLoad,
  type KvEvent,
  type PredictedWorkerLoad,
  type ResolvedPolicy,
  type RouterDecisionOptions,
  type RouterWorker,
  routerDecisionOptionsWithDefaults,
} from "@sluice/core";
import type {
  EngineObservation,
  PolicyContext,
  PolicyRequest,
  SimRouteDrain,
  SimRouteOutcome,
  SimRouter,
} from "./policy.js";
import { createRng } from "./rng.js";
import { workerIdOf } from "./sluice-ingress.js";

export interface SimRouterOptions {
  policy: ResolvedPolicy;
  context: PolicyContext;
  decision?: Partial<Omit<RouterDecisionOptions, "busyChecks">> & {
    busyChecks?: Partial<RouterDecisionOptions["busyChecks"]>;
  };
  /** Seeds the router's RNG (only used with temperature > 0). */
  seed: number;
}

export interface SluiceSimRouter extends SimRouter {
  /** The prediction the aggregator would read from `router.sync`, per worker id. */
  predictedLoad(): ReadonlyMap<string, PredictedWorkerLoad>;
}

export function createSimRouter(options: SimRouterOptions): SluiceSimRouter {
  const { policy, context } = options;
  const index = createPrefixIndex({ initialWorkerCapacity: Math.max(1, context.engineCount) });
  const load = createWorkerLoad({ replicaId: "sim-router" });
  const router = createL2Router({
    index,
    load,
    policy,
    options: routerDecisionOptionsWithDefaults(options.decision ?? {}),
    random: createRng(options.seed),
  });
  const workers: RouterWorker[] = [];
  const engineOfWorker = new Map<string, number>();
  const eventIds: bigint[] = [];
  for (let e = 0; e < context.engineCount; e++) {
    const workerId = workerIdOf(e);
    workers.push({
      workerId,
      kvTotalBlocks: context.numGpuBlocks,
      maxNumBatchedTokens: context.maxNumBatchedTokens,
      blockSize: context.blockSize,
    });
    engineOfWorker.set(workerId, e);
    eventIds.push(0n);
  }
  const promptTokensOf = new Map<string, number>();
  const cachedTokens = (requestId: string, overlapBlocks: number): number =>
    Math.min(promptTokensOf.get(requestId) ?? 0, overlapBlocks * context.blockSize);
  const engineOf = (workerId: string): number => {
    const e = engineOfWorker.get(workerId);
    if (e === undefined) throw new Error(`router chose unknown worker ${workerId}`);
    return e;
  };

  return {
    wantsKvEvents: true,
    route(request: PolicyRequest, blockHashes: readonly BlockHash[], nowMs: number): SimRouteOutcome {
      const requestId = String(request.index);
      promptTokensOf.set(requestId, request.promptTokens);
      const out = router.route(
        {
          requestId,
          requestClass: request.requestClass,
          promptTokens: request.promptTokens,
          blockHashes,
          arrivalMs: request.arrivalMs,
        },
        workers,
        nowMs,
      );
      if (out.kind === "held") return { kind: "held" };
      if (out.kind === "rejected") {
        promptTokensOf.delete(requestId);
        return { kind: "rejected", reason: out.decision.reason, retryAfterMs: out.decision.retryAfterMs };
      }
      return {
        kind: "routed",
        engine: engineOf(out.decision.workerId),
        cachedTokens: cachedTokens(requestId, out.decision.overlapBlocks),
      };
    },
    drain(nowMs: number): SimRouteDrain {
      const out = router.drain(workers, nowMs);
      const result: SimRouteDrain = { routed: [], rejected: [] };
      for (const r of out.rejected) {
        promptTokensOf.delete(r.requestId);
        result.rejected.push({
          request: Number(r.requestId),
          reason: r.decision.reason,
          retryAfterMs: r.decision.retryAfterMs,
        });
      }
      for (const r of out.routed) {
        result.routed.push({
          request: Number(r.requestId),
          engine: engineOf(r.decision.workerId),
          cachedTokens: cachedTokens(r.requestId, r.decision.overlapBlocks),
        });
      }
      return result;
    },
    cachedTokensByEngine(request: PolicyRequest, blockHashes: readonly BlockHash[]): Map<number, number> {
      const out = new Map<number, number>();
      if (blockHashes.length === 0) return out;
      for (const [workerId, blocks] of index.findMatches(blockHashes)) {
        out.set(engineOf(workerId), Math.min(request.promptTokens, blocks * context.blockSize));
      }
      return out;
    },
    heldCount: () => router.heldCount(),
    nextExpiryMs: () => router.nextExpiryMs(),
    onKvEvents(engine: number, events: readonly KvEvent[]): void {
      const workerId = workerIdOf(engine);
      for (const event of events) {
        eventIds[engine] = (eventIds[engine] as bigint) + 1n;
        index.applyEvent(workerId, eventIds[engine] as bigint, event);
      }
    },
    onObservation(engine: number, observation: EngineObservation): void {
      const { load: l } = observation;
      load.observe(workerIdOf(engine), {
        kvUsedBlocks: l.kvUsedBlocks,
        kvTotalBlocks: l.kvTotalBlocks,
        pendingPrefillTokens: l.pendingPrefillTokens,
        waiting: l.waiting,
        running: l.running,
        prefillTokensPerS: observation.prefillTokensPerS,
        kvBlocksReleasedPerS: 0,
        observedAtMs: observation.takenAtMs,
      });
    },
    onFirstToken(request: number, nowMs: number): void {
      router.prefillDone(String(request), nowMs);
    },
    onRelease(request: number, nowMs: number): void {
      const requestId = String(request);
      promptTokensOf.delete(requestId);
      router.release(requestId, nowMs);
    },
    predictedLoad(): ReadonlyMap<string, PredictedWorkerLoad> {
      const out = new Map<string, PredictedWorkerLoad>();
      for (const w of workers) {
        const v = load.load(w.workerId);
        out.set(w.workerId, {
          activeBlocks: v.predictedActiveBlocks,
          pendingPrefillTokens: v.predictedPendingPrefillTokens,
          requests: v.predictedRequests,
        });
      }
      return out;
    },
  };
}
