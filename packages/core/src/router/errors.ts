// Errors of the L2 (router) core. One class per failure kind; the router process maps them to a
// REASON_INVALID_REQUEST rejection or a dropped-and-counted message rather than crashing.

/** Router options or policy values are invalid (thrown at start-up / policy load). */
export class RouterConfigError extends Error {
  override readonly name = "RouterConfigError";
}

/** A KV event, routing call or sync delta has a malformed field (bad id, negative size…). */
export class RouterInputError extends Error {
  override readonly name = "RouterInputError";
}
