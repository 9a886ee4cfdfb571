// The `policy_rejected` event a process publishes when it ignores an invalid stored policy, on
// `….events.{level}.policy_rejected`. `sluice.v1.DecisionEvent` describes a request's decision and has
// no place for a policy key or a validation error, so this event is its own JSON document (readable
// with `nats sub`, like the decision events).

import type { PolicyIssue } from "./policy-errors.js";
import type { PolicyKind } from "./policy-keys.js";
import type { PolicyRejected } from "./policy-watch.js";
import type { Subjects } from "./subjects.js";

export const POLICY_REJECTED_OUTCOME = "policy_rejected";

export interface PolicyRejectedEvent {
  readonly type: typeof POLICY_REJECTED_OUTCOME;
  /** Level of the process that refused it (`ingress`, `router`, `engine`, …). */
  readonly level: string;
  readonly instanceId: string;
  readonly key: string;
  readonly model: string;
  readonly kind: PolicyKind;
  readonly revision: number;
  /** First invalid field. */
  readonly field: string;
  readonly error: string;
  readonly issues: readonly PolicyIssue[];
  /** Revision still in force for this key; null when none (the fallback applies). */
  readonly keptRevision: number | null;
  /** Unix epoch ms. */
  readonly timestampMs: number;
}

export interface PolicyRejectedMessage {
  readonly subject: string;
  readonly event: PolicyRejectedEvent;
  /** UTF-8 JSON of `event`, ready to publish. */
  readonly data: Uint8Array;
}

const encoder = new TextEncoder();

/** Builds the event for `rejection`; the caller publishes `data` on `subject`. */
export function policyRejectedMessage(
  rejection: PolicyRejected,
  context: {
    readonly subjects: Subjects;
    readonly level: string;
    readonly instanceId: string;
    readonly nowMs: number;
  },
): PolicyRejectedMessage {
  const event: PolicyRejectedEvent = {
    type: POLICY_REJECTED_OUTCOME,
    level: context.level,
    instanceId: context.instanceId,
    key: rejection.key,
    model: rejection.model,
    kind: rejection.kind,
    revision: rejection.revision,
    field: rejection.field,
    error: rejection.error.message,
    issues: rejection.error.issues,
    keptRevision: rejection.keptRevision ?? null,
    timestampMs: context.nowMs,
  };
  return {
    subject: context.subjects.events(context.level, POLICY_REJECTED_OUTCOME),
    event,
    data: encoder.encode(JSON.stringify(event)),
  };
}
