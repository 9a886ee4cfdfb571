// Errors of the engine model. One class per failure kind; callers (mock-engine HTTP server, simulator)
// map them to a 400 / a rejected trace entry rather than crashing.

/** A request field is malformed (non-integer sizes, too many block hashes, duplicate id…). */
export class InvalidEngineRequestError extends Error {
  override readonly name = "InvalidEngineRequestError";
  readonly requestId: string;
  constructor(requestId: string, message: string, options?: ErrorOptions) {
    super(`request ${JSON.stringify(requestId)}: ${message}`, options);
    this.requestId = requestId;
  }
}

/**
 * The request could never run: its longest sequence (prompt + max_tokens − 1 tokens) needs more blocks
 * than the cache can give one request. Rejected at `add` so it cannot block the FCFS queue forever.
 */
export class RequestTooLongError extends Error {
  override readonly name = "RequestTooLongError";
  readonly requestId: string;
  readonly neededBlocks: number;
  readonly availableBlocks: number;
  constructor(requestId: string, neededBlocks: number, availableBlocks: number, options?: ErrorOptions) {
    super(
      `request ${JSON.stringify(requestId)} needs ${neededBlocks} KV blocks but at most ${availableBlocks} can be given to one request`,
      options,
    );
    this.requestId = requestId;
    this.neededBlocks = neededBlocks;
    this.availableBlocks = availableBlocks;
  }
}

/** `step(nowMs)` was called before the previous step's outputs (its `nowMs + durationMs`). */
export class EngineBusyError extends Error {
  override readonly name = "EngineBusyError";
  readonly nowMs: number;
  readonly busyUntilMs: number;
  constructor(nowMs: number, busyUntilMs: number, options?: ErrorOptions) {
    super(`engine step at ${nowMs} ms while the previous step runs until ${busyUntilMs} ms`, options);
    this.nowMs = nowMs;
    this.busyUntilMs = busyUntilMs;
  }
}

/** Invalid engine options or step-time profile (caught at start-up). */
export class EngineConfigError extends Error {
  override readonly name = "EngineConfigError";
}
