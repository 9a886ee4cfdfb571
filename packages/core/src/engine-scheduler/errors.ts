// Errors of the L3 (engine-scheduler) decision code. The sidecar translates them at its edge:
// a bad option stops start-up, a bad request is answered 400, a duplicate id is a sidecar bug.

/** Options that cannot work together (or a value out of range); thrown at construction. */
export class EngineSchedulerConfigError extends Error {
  override readonly name = "EngineSchedulerConfigError";
}

/** A request handed to the queue or to a model with malformed fields (non-finite, negative, unknown class). */
export class InvalidSchedulerInputError extends Error {
  override readonly name = "InvalidSchedulerInputError";
}

/** A request id that is already queued or in the engine. */
export class DuplicateRequestIdError extends Error {
  override readonly name = "DuplicateRequestIdError";
  constructor(
    readonly requestId: string,
    options?: ErrorOptions,
  ) {
    super(`request id ${JSON.stringify(requestId)} is already queued or in the engine`, options);
  }
}

/** The queue is at its hard capacity; the decision checks the bound first, so this signals a caller bug. */
export class QueueCapacityError extends Error {
  override readonly name = "QueueCapacityError";
}
