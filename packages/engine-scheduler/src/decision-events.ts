// Lifecycle decision events on NATS `….events.engine.{queued|admitted|first_token|done|rejected}`,
// proto3 JSON of `sluice.v1.DecisionEvent` so `nats sub` reads them. The subject carries the L3 step;
// the `outcome` field uses the closest shared enum value: queued → HELD (not terminal), admitted and
// first_token → ADMITTED, done → COMPLETED / FAILED / CANCELLED, rejected → REJECTED.
import { create } from "@bufbuild/protobuf";
import { DecisionEventSchema, Level, type Outcome, Reason } from "@sluice/proto";
import { protoJsonCodec } from "@sluice/runtime";

export type EngineEventStep = "queued" | "admitted" | "first_token" | "done" | "rejected";

export interface EngineEventInput {
  requestId: string;
  className: string;
  outcome: Outcome;
  reason?: string;
  observed?: number;
  limit?: number;
  predictedTtftMs?: number;
  retryAfterMs?: number;
}

const REASONS: Readonly<Record<string, Reason>> = {
  predicted_ttft: Reason.PREDICTED_TTFT,
  queue_timeout: Reason.QUEUE_TIME,
  queue_full: Reason.QUEUE_FULL,
  itl_guard: Reason.PREDICTED_ITL,
};

export interface DecisionEventPublisher {
  emit(step: EngineEventStep, input: EngineEventInput): void;
}

export function createDecisionEventPublisher(deps: {
  publish: (subject: string, data: Uint8Array) => void;
  subjectOf: (level: string, outcome: string) => string;
  workerId: string;
  model: string;
}): DecisionEventPublisher {
  const codec = protoJsonCodec(DecisionEventSchema);
  return {
    emit(step, input) {
      const event = create(DecisionEventSchema, {
        requestId: input.requestId,
        requestClass: input.className,
        model: deps.model,
        level: Level.ENGINE,
        outcome: input.outcome,
        reason:
          input.reason === undefined ? Reason.UNSPECIFIED : (REASONS[input.reason] ?? Reason.UNSPECIFIED),
        observedValue: input.observed ?? 0,
        limitValue: input.limit ?? 0,
        predictedTtftMs: input.predictedTtftMs ?? 0,
        retryAfterMs: Math.max(0, Math.round(input.retryAfterMs ?? 0)),
        timestampMs: Date.now(),
        instanceId: deps.workerId,
        workerId: deps.workerId,
      });
      try {
        deps.publish(deps.subjectOf("engine", step), codec.encode(event));
      } catch {
        // Events are best effort: a closed connection must never fail a request.
      }
    },
  };
}
