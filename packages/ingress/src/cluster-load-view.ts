// The aggregator's `cluster.load` as the ingress needs it: per model, the predicted TTFT of each class
// on the best engine right now, and when it arrived (on this process's clock, so staleness is judged
// without trusting the aggregator's clock). This is how the ingress learns the cluster's predicted
// load without subscribing to every engine (DESIGN §3); L1 rejects on it once it is fresh
// (`ingress.max_cluster_load_age_ms`).
import { fromBinary } from "@bufbuild/protobuf";
import { type ClusterLoad, ClusterLoadSchema } from "@sluice/proto";

export interface ClusterPrediction {
  /** Predicted TTFT per class name, ms. */
  readonly predictedTtftMsByClass: Readonly<Record<string, number>>;
  /** When the snapshot carrying it arrived here, ms (the ingress's clock). */
  readonly atMs: number;
}

export interface ClusterLoadView {
  /** Applies one `cluster.load` message; throws on a malformed one (the caller counts and drops it). */
  receive(data: Uint8Array, nowMs: number): void;
  /** Latest prediction for a model, or undefined when no aggregator has spoken about it. */
  predictionFor(model: string): ClusterPrediction | undefined;
}

export function createClusterLoadView(): ClusterLoadView {
  const byModel = new Map<string, ClusterPrediction>();
  let lastSeq = -1n;
  let lastLeader = "";
  return {
    receive(data, nowMs) {
      const load: ClusterLoad = fromBinary(ClusterLoadSchema, data);
      // A new leader restarts its sequence; from the same leader an older seq is a stale redelivery.
      if (load.leaderId === lastLeader && load.seq <= lastSeq) return;
      lastLeader = load.leaderId;
      lastSeq = load.seq;
      for (const model of load.models) {
        const predicted: Record<string, number> = {};
        for (const headroom of model.classHeadroom) {
          if (Number.isFinite(headroom.predictedTtftMs) && headroom.predictedTtftMs >= 0) {
            predicted[headroom.requestClass] = headroom.predictedTtftMs;
          }
        }
        byModel.set(model.model, { predictedTtftMsByClass: predicted, atMs: nowMs });
      }
    },
    predictionFor: (model) => byModel.get(model),
  };
}
