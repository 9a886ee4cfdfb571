// Errors of the operator commands (`sluice events`, `sluice status`).

/** NATS or etcd did not answer within the connect deadline: the command exits 3. */
export class SharedStateUnreachableError extends Error {
  override readonly name = "SharedStateUnreachableError";
  constructor(
    readonly service: "NATS" | "etcd",
    readonly address: string,
    options?: ErrorOptions,
  ) {
    const reason = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super(`${service} is unreachable at ${address}${reason}`, options);
  }
}

/** NATS or etcd unreachable (distinct from 1 = failure and 2 = usage, so scripts can retry). */
export const EXIT_UNREACHABLE = 3;
