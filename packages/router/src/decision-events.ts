// Decision events on NATS `….events.router.{routed|held|rejected}`: proto3 JSON of
// `sluice.v1.DecisionEvent`, so `nats sub` reads them. Best effort: publishing never fails a call.
import { create } from "@bufbuild/protobuf";
import { DecisionEventSchema, Level, Outcome, Reason } from "@sluice/proto";
import { protoJsonCodec } from "@sluice/runtime";
import type { RouteRejectReason } from "./router-service.js";

export const REJECT_REASONS: Readonly<Record<RouteRejectReason, Reason>> = {
  no_engines: Reason.NO_ENGINES,
  all_engines_busy: Reason.ALL_ENGINES_BUSY,
  predicted_ttft: Reason.PREDICTED_TTFT,
  hold_queue_full: Reason.HOLD_QUEUE_FULL,
  hold_timeout: Reason.HOLD_TIMEOUT,
  deadline_exceeded: Reason.DEADLINE_EXCEEDED,
  invalid_request: Reason.INVALID_REQUEST,
};

export interface RouterEventInput {
  requestId: string;
  requestClass: string;
  model: string;
  reason?: RouteRejectReason;
  observed?: number;
  limit?: number;
  predictedTtftMs?: number;
  retryAfterMs?: number;
  workerId?: string;
  policyRevision?: number;
}

export interface RouterEventPublisher {
  emit(outcome: "routed" | "held" | "rejected", input: RouterEventInput): void;
}

const OUTCOMES = { routed: Outcome.ADMITTED, held: Outcome.HELD, rejected: Outcome.REJECTED } as const;

export function createRouterEventPublisher(deps: {
  publish: (subject: string, data: Uint8Array) => void;
  subjectOf: (level: string, outcome: string) => string;
  instanceId: string;
}): RouterEventPublisher {
  const codec = protoJsonCodec(DecisionEventSchema);
  return {
    emit(outcome, input) {
      const event = create(DecisionEventSchema, {
        requestId: input.requestId,
        requestClass: input.requestClass,
        model: input.model,
        level: Level.ROUTER,
        outcome: OUTCOMES[outcome],
        reason: input.reason === undefined ? Reason.UNSPECIFIED : REJECT_REASONS[input.reason],
        observedValue: input.observed ?? 0,
        limitValue: input.limit ?? 0,
        predictedTtftMs: input.predictedTtftMs ?? 0,
        retryAfterMs: Math.max(0, Math.round(input.retryAfterMs ?? 0)),
        timestampMs: Date.now(),
        instanceId: deps.instanceId,
        workerId: input.workerId ?? "",
        policyRevision: BigInt(input.policyRevision ?? 0),
      });
      try {
        deps.publish(deps.subjectOf("router", outcome), codec.encode(event));
      } catch {
        // Best effort: a closed connection must never fail a routing call.
      }
    },
  };
}
