// Filters and renders decision events for `sluice events` and `sluice status`.

import { toJsonString } from "@bufbuild/protobuf";
import { type DecisionEvent, DecisionEventSchema, Level, Outcome, Reason } from "@sluice/proto";

/** Subject tokens of `….events.{level}.{outcome}`, as every level publishes them. */
export const LEVEL_TOKENS = ["ingress", "router", "engine"] as const;
export const OUTCOME_TOKENS = ["admitted", "rejected", "held", "completed", "failed", "cancelled"] as const;

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  [Level.INGRESS]: "ingress",
  [Level.ROUTER]: "router",
  [Level.ENGINE]: "engine",
};
const OUTCOME_NAMES: Readonly<Record<number, string>> = {
  [Outcome.ADMITTED]: "admitted",
  [Outcome.REJECTED]: "rejected",
  [Outcome.HELD]: "held",
  [Outcome.COMPLETED]: "completed",
  [Outcome.FAILED]: "failed",
  [Outcome.CANCELLED]: "cancelled",
};

export const levelName = (level: Level): string => LEVEL_NAMES[level] ?? "unspecified";
export const outcomeName = (outcome: Outcome): string => OUTCOME_NAMES[outcome] ?? "unspecified";
/** `REASON_KV_LIMIT` → `kv_limit`. */
export const reasonName = (reason: Reason): string => (Reason[reason] ?? String(reason)).toLowerCase();

export interface EventFilter {
  readonly level?: string;
  readonly outcome?: string;
  readonly requestClass?: string;
}

/**
 * Whether `event` passes `filter`. Level and outcome are also in the subject filter; they are checked
 * here again because a publisher's subject and payload could disagree.
 */
export function matchesFilter(event: DecisionEvent, filter: EventFilter): boolean {
  if (filter.level !== undefined && levelName(event.level) !== filter.level) return false;
  if (filter.outcome !== undefined && outcomeName(event.outcome) !== filter.outcome) return false;
  if (filter.requestClass !== undefined && event.requestClass !== filter.requestClass) return false;
  return true;
}

const num = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(1));

/** One human-readable line (no trailing newline). */
export function formatEventLine(event: DecisionEvent): string {
  const when =
    Number.isFinite(event.timestampMs) && event.timestampMs > 0
      ? new Date(event.timestampMs).toISOString()
      : "-".padEnd(24);
  const parts = [
    when,
    levelName(event.level).padEnd(7),
    outcomeName(event.outcome).padEnd(9),
    (event.requestClass || "-").padEnd(9),
    event.reason === Reason.UNSPECIFIED ? "-" : reasonName(event.reason),
    `req=${event.requestId || "-"}`,
  ];
  if (event.model) parts.push(`model=${event.model}`);
  if (event.tenant) parts.push(`tenant=${event.tenant}`);
  if (event.observedValue !== 0 || event.limitValue !== 0) {
    parts.push(`observed=${num(event.observedValue)} limit=${num(event.limitValue)}`);
  }
  if (event.predictedTtftMs > 0) parts.push(`predicted_ttft=${num(event.predictedTtftMs)}ms`);
  if (event.retryAfterMs > 0) parts.push(`retry_after=${event.retryAfterMs}ms`);
  if (event.workerId) parts.push(`worker=${event.workerId}`);
  if (event.instanceId) parts.push(`by=${event.instanceId}`);
  return parts.join("  ");
}

/** One JSON object (proto3 JSON of the event, as published), no trailing newline. */
export function formatEventJson(event: DecisionEvent): string {
  return toJsonString(DecisionEventSchema, event);
}
