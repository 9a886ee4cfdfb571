// Errors of `sluice aggregator`. Malformed input is counted and dropped, never thrown to the top.

/** The JetStream events stream could not be created or updated (JetStream disabled, limits refused…). */
export class EventsStreamError extends Error {
  override readonly name = "EventsStreamError";
}
