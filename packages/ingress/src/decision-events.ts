// Decision events (`….events.ingress.{outcome}`, proto3 JSON of `sluice.v1.DecisionEvent`) so an
// operator's `nats sub` sees every admission, rejection and terminal outcome with its numbers.

import { Level, Outcome, Reason } from "@sluice/proto";
import { encodeDecisionEventJson } from "@sluice/runtime";

export type EventOutcome = "admitted" | "rejected" | "completed" | "failed" | "cancelled";

export interface IngressEvent {
  requestId: string;
  requestClass: string;
  tenant: string;
  model: string;
  outcome: EventOutcome;
  /** L1 reason or edge error code (`kv_limit`, `invalid_json`, `no_engine`, …). */
  reason?: string;
  observed?: number;
  limit?: number;
  retryAfterMs?: number;
  workerId?: string;
  policyRevision?: number;
}

/** Where events go; the process publishes to NATS, tests may collect them. */
export interface EventSink {
  emit(event: IngressEvent): void;
}

export const noopEventSink: EventSink = { emit() {} };

const OUTCOMES: Readonly<Record<EventOutcome, Outcome>> = {
  admitted: Outcome.ADMITTED,
  rejected: Outcome.REJECTED,
  completed: Outcome.COMPLETED,
  failed: Outcome.FAILED,
  cancelled: Outcome.CANCELLED,
};

export function reasonOf(reason: string | undefined): Reason {
  switch (reason) {
    case undefined:
      return Reason.UNSPECIFIED;
    case "inflight_limit":
      return Reason.INFLIGHT_LIMIT;
    case "tenant_inflight":
      return Reason.TENANT_LIMIT;
    case "kv_overload":
      return Reason.KV_LIMIT;
    case "predicted_ttft":
      return Reason.PREDICTED_TTFT;
    case "no_capacity":
    case "fail_closed":
      return Reason.FAIL_CLOSED;
    case "no_engine":
      return Reason.NO_ENGINES;
    case "upstream_timeout":
      return Reason.DEADLINE_EXCEEDED;
    default:
      // Edge validation failures (invalid_json, request_too_large, model_not_found, …).
      return reason.startsWith("upstream") ? Reason.UNSPECIFIED : Reason.INVALID_REQUEST;
  }
}

export interface Publisher {
  publish(subject: string, data: Uint8Array): void;
}

/** Longest an event waits in the batch before it is published. */
export const DEFAULT_EVENT_FLUSH_INTERVAL_MS = 5;
/** A batch this large is published at once, whatever its age. */
export const DEFAULT_EVENT_FLUSH_MAX_EVENTS = 256;

export interface NatsEventSink extends EventSink {
  /** Publishes the queued events now (on shutdown, before the connection closes). */
  flush(): void;
}

export interface NatsEventSinkOptions {
  flushIntervalMs?: number;
  flushMaxEvents?: number;
}

/**
 * Encodes events as proto3 JSON on `{subjectPrefix}.events.ingress.{outcome}`; skipped while NATS is
 * down. Events are queued and published together at most `flushIntervalMs` later (or once
 * `flushMaxEvents` are queued): nats.js writes to its socket once per macrotask that published, so a
 * flush per event — or per event-loop turn, which at 1 000 req/s is nearly the same thing — costs a
 * syscall per event (two events per request). Batching on a few milliseconds makes it one write per
 * batch and moves the encoding (`encodeDecisionEventJson`) off the request path. Events are for
 * operators' streams, so a few milliseconds of delay costs nothing; each keeps its own timestamp.
 */
export function natsEventSink(
  publisher: () => Publisher | undefined,
  subjectPrefix: string,
  instanceId: string,
  nowMs: () => number,
  options: NatsEventSinkOptions = {},
): NatsEventSink {
  const flushIntervalMs = options.flushIntervalMs ?? DEFAULT_EVENT_FLUSH_INTERVAL_MS;
  const flushMaxEvents = options.flushMaxEvents ?? DEFAULT_EVENT_FLUSH_MAX_EVENTS;
  const encoder = new TextEncoder();
  let queued: { event: IngressEvent; atMs: number }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    const batch = queued;
    queued = [];
    const nc = publisher();
    if (!nc) return;
    for (const { event, atMs } of batch) {
      try {
        nc.publish(
          `${subjectPrefix}.events.ingress.${event.outcome}`,
          encoder.encode(
            encodeDecisionEventJson({
              requestId: event.requestId,
              requestClass: event.requestClass,
              tenant: event.tenant,
              model: event.model,
              level: Level.INGRESS,
              outcome: OUTCOMES[event.outcome],
              reason: reasonOf(event.reason),
              observedValue: event.observed ?? 0,
              limitValue: event.limit ?? 0,
              retryAfterMs: event.retryAfterMs ?? 0,
              timestampMs: atMs,
              instanceId,
              workerId: event.workerId ?? "",
              policyRevision: event.policyRevision ?? 0,
            }),
          ),
        );
      } catch {
        // A closed/draining connection throws; events are best effort and must never fail a request.
      }
    }
  };
  return {
    emit(event) {
      if (!publisher()) return;
      queued.push({ event, atMs: nowMs() });
      if (queued.length >= flushMaxEvents) flush();
      else if (timer === undefined) {
        timer = setTimeout(flush, flushIntervalMs);
        timer.unref();
      }
    },
    flush,
  };
}
