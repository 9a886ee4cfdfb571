// `sluice.v1.DecisionEvent` as proto3 JSON, written directly: every level publishes one or more
// decision events per request, and a reflective protobuf-es `create` + `toJsonString` costs ~50 µs
// an event — on the admission path's CPU budget. The output is byte for byte what `toJsonString`
// gives (field declaration order, defaults omitted, enum names, int64 as a string, non-finite doubles
// as strings); `decision-event-json.spec.ts` checks that against the reflective codec.
import { Level, LevelSchema, Outcome, OutcomeSchema, Reason, ReasonSchema } from "@sluice/proto";

/** The fields of a `DecisionEvent`, as `create(DecisionEventSchema, …)` takes them; absent = default. */
export interface DecisionEventFields {
  requestId?: string;
  requestClass?: string;
  tenant?: string;
  model?: string;
  level?: Level;
  outcome?: Outcome;
  reason?: Reason;
  observedValue?: number;
  limitValue?: number;
  predictedTtftMs?: number;
  retryAfterMs?: number;
  timestampMs?: number;
  instanceId?: string;
  workerId?: string;
  policyRevision?: bigint | number;
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

/** What `toJsonString(DecisionEventSchema, create(DecisionEventSchema, e))` gives. */
export function encodeDecisionEventJson(e: DecisionEventFields): string {
  const out: Record<string, string | number> = {};
  if (e.requestId) out.requestId = e.requestId;
  if (e.requestClass) out.requestClass = e.requestClass;
  if (e.tenant) out.tenant = e.tenant;
  if (e.model) out.model = e.model;
  if (e.level !== undefined && e.level !== Level.UNSPECIFIED) out.level = LEVEL_NAMES.get(e.level) ?? e.level;
  if (e.outcome !== undefined && e.outcome !== Outcome.UNSPECIFIED)
    out.outcome = OUTCOME_NAMES.get(e.outcome) ?? e.outcome;
  if (e.reason !== undefined && e.reason !== Reason.UNSPECIFIED)
    out.reason = REASON_NAMES.get(e.reason) ?? e.reason;
  // `!== 0` rather than truthiness: NaN is not the default, protobuf-es writes it as "NaN".
  if (e.observedValue !== undefined && e.observedValue !== 0) out.observedValue = jsonDouble(e.observedValue);
  if (e.limitValue !== undefined && e.limitValue !== 0) out.limitValue = jsonDouble(e.limitValue);
  if (e.predictedTtftMs !== undefined && e.predictedTtftMs !== 0)
    out.predictedTtftMs = jsonDouble(e.predictedTtftMs);
  // uint32 on the wire: clamped into its range (NaN and negatives are 0, i.e. omitted).
  const retryAfterMs = Math.round(e.retryAfterMs ?? 0);
  if (retryAfterMs > 0) out.retryAfterMs = Math.min(retryAfterMs, 0xffff_ffff);
  if (e.timestampMs !== undefined && e.timestampMs !== 0) out.timestampMs = jsonDouble(e.timestampMs);
  if (e.instanceId) out.instanceId = e.instanceId;
  if (e.workerId) out.workerId = e.workerId;
  if (e.policyRevision !== undefined && BigInt(e.policyRevision) !== 0n)
    out.policyRevision = BigInt(e.policyRevision).toString();
  return JSON.stringify(out);
}
