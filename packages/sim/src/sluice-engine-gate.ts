// L3 in the simulator: core's `createEngineDecision`, driven the way `sluice engine-scheduler`'s
// scheduler drives it (packages/engine-scheduler/src/scheduler.ts): `offer` on arrival, then a pump
// (`reevaluate`, then `nextAdmission` until it stops admitting) on arrival, first token, finish and every
// `reevaluateIntervalMs` while anything is queued. Only admitted requests enter the engine model. The
// online models learn from the simulated timings: prefill from engine admission → first token, decode
// from one gap per engine step (the options document per-step sampling), KV usage exact from the model.
// The TTFT clock counts from ingress arrival (`upstreamElapsedMs`), and the prefix overlap is the one the
// L2 router found (0 without a router: the sidecar alone does not know the engine's cache).

import {
  createEngineDecision,
  type EngineDecision,
  engineDecisionOptionsFromPolicy,
  type ResolvedPolicy,
} from "@sluice/core";
import type { PolicyContext, PolicyRequest, SimEngineGate, SimGateOffer, SimGatePump } from "./policy.js";

/** The sidecar's default `--reevaluate-interval`. */
export const DEFAULT_GATE_REEVALUATE_INTERVAL_MS = 10;

export interface SimEngineGateOptions {
  policy: ResolvedPolicy;
  context: PolicyContext;
  reevaluateIntervalMs?: number;
}

export function createSimEngineGate(options: SimEngineGateOptions): SimEngineGate & {
  readonly decision: EngineDecision;
} {
  const { policy, context } = options;
  const decision = createEngineDecision(
    engineDecisionOptionsFromPolicy(policy, {
      maxNumSeqs: context.maxNumSeqs,
      maxNumBatchedTokens: context.maxNumBatchedTokens,
      kvTotalTokens: context.numGpuBlocks * context.blockSize,
    }),
  );
  let queued = 0;
  return {
    decision,
    reevaluateIntervalMs: options.reevaluateIntervalMs ?? DEFAULT_GATE_REEVALUATE_INTERVAL_MS,
    offer(request: PolicyRequest, cachedTokens: number, nowMs: number): SimGateOffer {
      const result = decision.offer(
        {
          id: String(request.index),
          className: request.requestClass,
          promptTokens: request.promptTokens,
          // The request's max_tokens, as the sidecar passes it: what lets the ITL guard spread a
          // newcomer's prefill over the running requests' remaining tokens.
          maxTokens: request.outputTokens,
          cachedTokens,
          upstreamElapsedMs: Math.max(0, nowMs - request.arrivalMs),
        },
        nowMs,
      );
      if (!result.admit) {
        return { admit: false, reason: result.rejection.reason, retryAfterMs: result.rejection.retryAfterMs };
      }
      queued++;
      return { admit: true };
    },
    pump(nowMs: number, kvUsage: number): SimGatePump {
      const out: SimGatePump = { admit: [], reject: [] };
      for (const { id, rejection } of decision.reevaluate(nowMs)) {
        queued--;
        out.reject.push({
          request: Number(id),
          reason: rejection.reason,
          retryAfterMs: rejection.retryAfterMs,
        });
      }
      for (;;) {
        const release = decision.nextAdmission(nowMs, { kvUsage });
        if (release.kind !== "admit") break;
        queued--;
        out.admit.push(Number(release.id));
      }
      return out;
    },
    queued: () => queued,
    onFirstToken(request: number, nowMs: number): void {
      decision.onFirstToken(String(request), nowMs);
    },
    onFinished(request: number): void {
      decision.onFinished(String(request));
    },
    observeDecode(gapMs: number, batchSize: number, kvUsage: number): void {
      decision.models.observeDecode({ gapMs, batchSize, kvUsage });
    },
    prefillTokensPerS(): number {
      const estimates = decision.models.estimates();
      return estimates.prefillSamples > 0 ? estimates.prefillTokensPerS : 0;
    },
  };
}
