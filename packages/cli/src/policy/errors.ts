// Failures of `sluice policy`, each carrying its exit code so the dispatcher maps them in one place.

/** Exit code when etcd cannot be reached within the connect deadline. */
export const EXIT_ETCD_UNREACHABLE = 3;

/** Bad flags, an unreadable or invalid policy file: exit 2. */
export class PolicyUsageError extends Error {
  override readonly name = "PolicyUsageError";
  readonly exitCode = 2;
  /** Extra lines printed after the message (one per validation finding). */
  readonly details: readonly string[];
  constructor(message: string, details: readonly string[] = [], options?: ErrorOptions) {
    super(message, options);
    this.details = details;
  }
}

/** etcd did not answer within the deadline or refused the connection: exit 3. */
export class EtcdUnreachableError extends Error {
  override readonly name = "EtcdUnreachableError";
  readonly exitCode = EXIT_ETCD_UNREACHABLE;
  readonly endpoints: readonly string[];
  constructor(endpoints: readonly string[], reason: string, options?: ErrorOptions) {
    super(`etcd unreachable at ${endpoints.join(", ")}: ${reason}`, options);
    this.endpoints = endpoints;
  }
}

/** Exit code when etcd rejects the credentials or the user's role does not permit the operation. */
export const EXIT_ETCD_ACCESS_DENIED = 4;

/** etcd authentication failed or RBAC denied the key: exit 4, distinct so scripts can tell it apart. */
export class EtcdAccessDeniedError extends Error {
  override readonly name = "EtcdAccessDeniedError";
  readonly exitCode = EXIT_ETCD_ACCESS_DENIED;
}

/** The operation reached etcd but cannot be done (revision compacted, key absent, …): exit 1. */
export class PolicyCommandError extends Error {
  override readonly name = "PolicyCommandError";
  readonly exitCode = 1;
}
