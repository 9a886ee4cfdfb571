// Errors of the router process. Wire-facing failures become `sluice.v1.Rejection`s with
// REASON_INVALID_REQUEST; malformed NATS / etcd inputs are dropped and counted, never thrown out.

/** A Route / MarkPrefillDone / Release request is malformed (bad id, no prompt, bad token id…). */
export class RouteRequestError extends Error {
  override readonly name = "RouteRequestError";
}

/** A message from NATS or an etcd value could not be understood (dropped and counted). */
export class MalformedInputError extends Error {
  override readonly name = "MalformedInputError";
}

/** Invalid combination of settings, found at start-up. */
export class RouterSettingsError extends Error {
  override readonly name = "RouterSettingsError";
}
