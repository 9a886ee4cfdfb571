// Errors of the engine-scheduler sidecar. Each maps to one HTTP answer at the proxy's edge.

/** A client request the sidecar cannot schedule (bad JSON, bad header, no prompt): 400. */
export class BadRequestError extends Error {
  override readonly name = "BadRequestError";
  constructor(
    message: string,
    /** OpenAI-style error code, e.g. `invalid_json`. */
    readonly code: string,
    readonly status: 400 | 413 = 400,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The engine cannot be reached (down, killed, refusing connections): 503 for queued, 502 in flight. */
export class EngineUnavailableError extends Error {
  override readonly name = "EngineUnavailableError";
  /** A retry elsewhere may succeed. */
  readonly retryable = true;
}
