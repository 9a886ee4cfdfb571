// Lifecycle decision events on NATS `….events.engine.{queued|admitted|first_token|done|rejected}`,
// proto3 JSON of `sluice.v1.DecisionEvent` so `nats sub` reads them. The subject carries the L3 step;
// the `outcome` field uses the closest shared enum value: queued → HELD (not terminal), admitted and
// first_token → ADMITTED, done → COMPLETED / FAILED / CANCELLED, rejected → REJECTED. On first_token,
// `observed_value` is the measured TTFT and `predicted_ttft_ms` the prediction it is audited against.
//
// Cost on the request path: `emit` only records the event (with its timestamp); the events are encoded
// and published together after the turn (the sidecar's `AfterTurn`: right after it when idle, a little
// later while requests are in flight), so the proxy's own socket writes go first and several events
// leave in one NATS write instead of one each. The
// encoder writes the proto3 JSON directly (`encodeDecisionEventJson` from the runtime; a reflective
// protobuf-es `create` + `toJsonString` costs ~50 µs an event); `decision-events.spec.ts` checks it
// byte for byte against the reflective codec.
import { Level, type Outcome, Reason } from "@sluice/proto";
import { encodeDecisionEventJson } from "@sluice/runtime";

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
  /** Records one event; it is published right after the current event-loop turn. */
  emit(step: EngineEventStep, input: EngineEventInput): void;
  /** Publishes what is recorded now (tests, shutdown). */
  flush(): void;
  /** Flushes and stops: later events are dropped. */
  close(): void;
}

export interface DecisionEventDeps {
  publish: (subject: string, data: Uint8Array) => void;
  subjectOf: (level: string, outcome: string) => string;
  workerId: string;
  model: string;
  /**
   * Runs the flush after the current turn; default `setImmediate`. The sidecar passes its shared
   * `AfterTurn`, so events and load snapshots of one turn leave in one NATS write.
   */
  schedule?: (flush: () => void) => void;
}

/** What `toJsonString(DecisionEventSchema, event)` gives, for the fields the sidecar sets. */
export function encodeEngineDecisionEvent(
  deps: Pick<DecisionEventDeps, "workerId" | "model">,
  input: EngineEventInput,
  timestampMs: number,
): string {
  return encodeDecisionEventJson({
    requestId: input.requestId,
    requestClass: input.className,
    model: deps.model,
    level: Level.ENGINE,
    outcome: input.outcome,
    reason: input.reason === undefined ? Reason.UNSPECIFIED : (REASONS[input.reason] ?? Reason.UNSPECIFIED),
    observedValue: input.observed ?? 0,
    limitValue: input.limit ?? 0,
    predictedTtftMs: input.predictedTtftMs ?? 0,
    retryAfterMs: input.retryAfterMs ?? 0,
    timestampMs,
    instanceId: deps.workerId,
    workerId: deps.workerId,
  });
}

interface Recorded {
  step: EngineEventStep;
  input: EngineEventInput;
  timestampMs: number;
}

const utf8 = new TextEncoder();

export function createDecisionEventPublisher(deps: DecisionEventDeps): DecisionEventPublisher {
  // The subject of each step, built once (subjectOf builds a string each call).
  const subjects = new Map<EngineEventStep, string>();
  const subjectOf = (step: EngineEventStep) => {
    let s = subjects.get(step);
    if (s === undefined) {
      s = deps.subjectOf("engine", step);
      subjects.set(step, s);
    }
    return s;
  };
  const schedule = deps.schedule ?? ((task: () => void) => void setImmediate(task));
  let pending: Recorded[] = [];
  let scheduled = false;
  let closed = false;

  const flush = () => {
    scheduled = false;
    const batch = pending;
    pending = [];
    for (const e of batch) {
      try {
        deps.publish(subjectOf(e.step), utf8.encode(encodeEngineDecisionEvent(deps, e.input, e.timestampMs)));
      } catch {
        // Events are best effort: a closed connection must never fail a request.
      }
    }
  };

  return {
    emit(step, input) {
      if (closed) return;
      pending.push({ step, input, timestampMs: Date.now() });
      if (!scheduled) {
        scheduled = true;
        schedule(flush);
      }
    },
    flush,
    close() {
      flush();
      closed = true;
    },
  };
}
