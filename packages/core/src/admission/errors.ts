// Errors of the admission decisions and the frontend sync state. The shells validate request bodies
// before they build facts, so these mark programming errors or corrupt peer messages, never load.

/** A fact handed to a decision is not a finite, non-negative number (or names no class). */
export class InvalidAdmissionFactsError extends Error {
  override readonly name = "InvalidAdmissionFactsError";
}

/** A peer's `ingress.state` snapshot is malformed; the shell drops and counts it. */
export class InvalidPeerSnapshotError extends Error {
  override readonly name = "InvalidPeerSnapshotError";
  readonly instanceId: string;
  constructor(instanceId: string, message: string, options?: ErrorOptions) {
    super(`ingress.state from ${JSON.stringify(instanceId)}: ${message}`, options);
    this.instanceId = instanceId;
  }
}

/** Frontend sync options are invalid (caught at start-up). */
export class FrontendSyncConfigError extends Error {
  override readonly name = "FrontendSyncConfigError";
}
