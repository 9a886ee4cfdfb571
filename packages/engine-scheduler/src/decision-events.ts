// Lifecycle decision events on NATS `….events.engine.{queued|admitted|first_token|done|rejected}`,
// proto3 JSON of `sluice.v1.DecisionEvent` so `nats sub` reads them. The subject carries the L3 step;
// the `outcome` field uses the closest shared enum value: queued → HELD (not terminal), admitted and
// first_token → ADMITTED, done → COMPLETED / FAILED / CANCELLED, rejected → REJECTED. On first_token,
// `observed_value` is the measured TTFT and `predicted_ttft_ms` the prediction it is audited against.
//
// Cost on the request path: `emit` only records the event (with its timestamp); the events of one
// event-loop turn are encoded and published together just after it (setImmediate), so the proxy's own
// socket writes go first and one turn's events leave in one NATS write instead of one each. The
// encoder writes the proto3 JSON directly (a reflective protobuf-es `create` + `toJsonString` costs
// ~50 µs an event); `decision-events.spec.ts` checks it byte for byte against the reflective codec.
import { Level, LevelSchema, Outcome, OutcomeSchema, Reason, ReasonSchema } from "@sluice/proto";

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

const enumNames = (values: ReadonlyArray<{ number: number; name: string }>) =>
  new Map(values.map((v) => [v.number, v.name]));
const LEVEL_NAMES = enumNames(LevelSchema.values);
const OUTCOME_NAMES = enumNames(OutcomeSchema.values);
const REASON_NAMES = enumNames(ReasonSchema.values);
// Fail at load rather than publish a wrong name should the generated enums ever be renamed.
for (const [names, schema] of [
  [LEVEL_NAMES, LevelSchema],
  [OUTCOME_NAMES, OutcomeSchema],
  [REASON_NAMES, ReasonSchema],
] as const)
  if (names.size === 0) throw new Error(`${schema.typeName} has no values`);

/** A proto3 JSON double: finite numbers as JSON numbers, NaN and ±Infinity as strings. */
const jsonDouble = (v: number): number | string =>
  Number.isFinite(v) ? v : Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";

/** What `toJsonString(DecisionEventSchema, event)` gives, for the fields the sidecar sets. */
export function encodeEngineDecisionEvent(
  deps: Pick<DecisionEventDeps, "workerId" | "model">,
  input: EngineEventInput,
  timestampMs: number,
): string {
  // Field order and omitted defaults as protobuf-es writes them (declaration order, implicit presence).
  const out: Record<string, string | number> = {};
  if (input.requestId !== "") out.requestId = input.requestId;
  if (input.className !== "") out.requestClass = input.className;
  if (deps.model !== "") out.model = deps.model;
  out.level = LEVEL_NAMES.get(Level.ENGINE)!;
  if (input.outcome !== Outcome.UNSPECIFIED)
    out.outcome = OUTCOME_NAMES.get(input.outcome) ?? (input.outcome as number);
  const reason =
    input.reason === undefined ? Reason.UNSPECIFIED : (REASONS[input.reason] ?? Reason.UNSPECIFIED);
  if (reason !== Reason.UNSPECIFIED) out.reason = REASON_NAMES.get(reason)!;
  const observed = input.observed ?? 0;
  if (observed !== 0) out.observedValue = jsonDouble(observed);
  const limit = input.limit ?? 0;
  if (limit !== 0) out.limitValue = jsonDouble(limit);
  const predicted = input.predictedTtftMs ?? 0;
  if (predicted !== 0) out.predictedTtftMs = jsonDouble(predicted);
  // uint32 on the wire: clamped into its range (NaN and negatives are 0, i.e. omitted).
  const retryAfterMs = Math.round(input.retryAfterMs ?? 0);
  if (retryAfterMs > 0) out.retryAfterMs = Math.min(retryAfterMs, 0xffff_ffff);
  if (timestampMs !== 0) out.timestampMs = timestampMs;
  if (deps.workerId !== "") {
    out.instanceId = deps.workerId;
    out.workerId = deps.workerId;
  }
  return JSON.stringify(out);
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
