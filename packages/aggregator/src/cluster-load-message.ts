import { create } from "@bufbuild/protobuf";
import type { ModelLoadView } from "@sluice/core";
import { type ClusterLoad, ClusterLoadSchema } from "@sluice/proto";

// uint32 / int32 wire fields: clamp so a huge sum or a negative headroom cannot wrap around.
const u32 = (n: number): number => Math.min(0xffff_ffff, Math.max(0, Math.round(n)));
const i32 = (n: number): number => Math.min(0x7fff_ffff, Math.max(-0x8000_0000, Math.round(n)));

/** The `sluice.v1.ClusterLoad` message for `views`. */
export function toClusterLoad(
  views: readonly ModelLoadView[],
  leaderId: string,
  seq: bigint,
  timestampMs: number,
): ClusterLoad {
  return create(ClusterLoadSchema, {
    leaderId,
    seq,
    timestampMs,
    models: views.map((v) => ({
      model: v.model,
      liveEngines: u32(v.liveEngines),
      capacityKvBlocks: u32(v.capacityKvBlocks),
      capacitySeqs: u32(v.capacitySeqs),
      observedKvUsedBlocks: u32(v.observedKvUsedBlocks),
      observedWaiting: u32(v.observedWaiting),
      observedRunning: u32(v.observedRunning),
      observedPendingPrefillTokens: u32(v.observedPendingPrefillTokens),
      observedPrefillTokensPerS: v.observedPrefillTokensPerS,
      // The proto's "predicted in-flight" is the ingresses' admitted-not-finished sum; the routers'
      // per-worker prediction reaches the wire as pending prefill tokens (and in the headroom).
      predictedInflightRequests: u32(v.ingressInflightRequests),
      predictedInflightKvBlocks: u32(v.ingressInflightKvBlocks),
      predictedPendingPrefillTokens: u32(v.predictedPendingPrefillTokens),
      classHeadroom: v.classHeadroom.map((h) => ({
        requestClass: h.requestClass,
        inflightRequests: i32(h.inflightRequests),
        kvBlocks: i32(h.kvBlocks),
        predictedTtftMs: h.predictedTtftMs,
      })),
      freshnessMs: u32(v.freshnessMs),
    })),
  });
}
