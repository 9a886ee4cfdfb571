// Shadow mode (DESIGN §3): a candidate policy is evaluated beside the enforcing one on the same facts
// and the same view, never enforced, and the two verdicts are compared. A verdict is reduced to what
// an operator tuning a policy asks — would this request have been admitted, held or rejected, and
// why — so the comparison is the same shape at every level. Pure: the process shells count and
// publish what `compareShadow` returns.

/** What a level decided (or would have decided) for one request on arrival. */
export type ShadowOutcome = "admit" | "hold" | "reject";

export interface ShadowVerdict {
  readonly outcome: ShadowOutcome;
  /** Reason code of a rejection or hold (the level's own codes); undefined when admitted. */
  readonly reason: string | undefined;
  /** The quantity compared for `reason` (ms, tokens, blocks or requests); 0 when admitted. */
  readonly observed: number;
  /** The threshold it was compared with, same unit; 0 when admitted. */
  readonly limit: number;
}

export const ADMIT_VERDICT: ShadowVerdict = Object.freeze({
  outcome: "admit",
  reason: undefined,
  observed: 0,
  limit: 0,
});

export interface ShadowComparison {
  readonly enforced: ShadowVerdict;
  readonly shadow: ShadowVerdict;
  /** Outcomes differ, or both rejected for different reasons (a hold is compared by outcome only). */
  readonly disagree: boolean;
}

export function compareShadow(enforced: ShadowVerdict, shadow: ShadowVerdict): ShadowComparison {
  const disagree =
    enforced.outcome !== shadow.outcome ||
    (enforced.outcome === "reject" && enforced.reason !== shadow.reason);
  return { enforced, shadow, disagree };
}

/** The `events.{level}.shadow` document (JSON, readable with `nats sub`). */
export interface ShadowDecisionEvent {
  readonly type: "shadow";
  readonly level: string;
  readonly instanceId: string;
  readonly requestId: string;
  readonly requestClass: string;
  readonly model: string;
  readonly enforced: ShadowVerdict & { readonly policyRevision: number };
  readonly shadow: ShadowVerdict & { readonly policyRevision: number };
  /** Unix epoch ms. */
  readonly timestampMs: number;
}

export interface ShadowEventInput {
  readonly level: string;
  readonly instanceId: string;
  readonly requestId: string;
  readonly requestClass: string;
  readonly model: string;
  readonly comparison: ShadowComparison;
  readonly enforcedRevision: number;
  readonly shadowRevision: number;
  readonly timestampMs: number;
}

export function shadowDecisionEvent(input: ShadowEventInput): ShadowDecisionEvent {
  const { comparison } = input;
  return {
    type: "shadow",
    level: input.level,
    instanceId: input.instanceId,
    requestId: input.requestId,
    requestClass: input.requestClass,
    model: input.model,
    enforced: { ...comparison.enforced, policyRevision: input.enforcedRevision },
    shadow: { ...comparison.shadow, policyRevision: input.shadowRevision },
    timestampMs: input.timestampMs,
  };
}
