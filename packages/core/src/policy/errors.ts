// Errors of policy handling. A policy is validated once when it is loaded; the shells refuse it
// (`sluice policy set`) or keep their last good policy, so nothing here is thrown on a hot path.

/** The policy document is invalid; `field` is the proto3 JSON path of the offending field. */
export class PolicyError extends Error {
  override readonly name = "PolicyError";
  readonly field: string;
  constructor(field: string, message: string, options?: ErrorOptions) {
    super(`policy field ${field}: ${message}`, options);
    this.field = field;
  }
}
