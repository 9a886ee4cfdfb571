// Errors of the process shell (config, admin server, gRPC, shutdown). One class per failure kind,
// `name` set, platform errors kept as `cause` so logs show both our message and the original.

/** Where a configuration value came from; part of every config error so the operator knows what to fix. */
export type ConfigSource =
  | { kind: "flag"; flag: string }
  | { kind: "env"; variable: string }
  | { kind: "file"; file: string; key?: string }
  | { kind: "default" };

export interface ConfigErrorDetails {
  /** Setting name in kebab case (`nats-url`), when the error is about one setting. */
  setting?: string;
  /** The offending raw value as the operator wrote it. */
  value?: unknown;
  /** Human description of what is allowed (`a duration like 250ms, 5s, 1m`). */
  allowed?: string;
  source?: ConfigSource;
}

/**
 * Invalid or unknown configuration. Process entry points turn it into exit code 2 with `message` on
 * stderr, so the message alone must tell the operator what to change.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly setting: string | undefined;
  readonly value: unknown;
  readonly allowed: string | undefined;
  readonly source: ConfigSource | undefined;

  constructor(message: string, details: ConfigErrorDetails = {}, options?: ErrorOptions) {
    super(message, options);
    this.setting = details.setting;
    this.value = details.value;
    this.allowed = details.allowed;
    this.source = details.source;
  }
}

/** A schema that contradicts itself (bad setting name, default outside its own bounds): a programming error. */
export class ConfigSchemaError extends Error {
  override readonly name = "ConfigSchemaError";
}

/** The admin HTTP server could not bind its address (port in use, bad host). */
export class AdminServerError extends Error {
  override readonly name = "AdminServerError";
}

/** The gRPC server could not bind or start. */
export class GrpcServerError extends Error {
  override readonly name = "GrpcServerError";
}

/**
 * A gRPC call through the deadline client failed. `code` is the grpc status code (4 = DEADLINE_EXCEEDED,
 * 14 = UNAVAILABLE …); `retryable` marks the codes where retrying elsewhere or later can succeed.
 */
export class GrpcCallError extends Error {
  override readonly name = "GrpcCallError";
  readonly code: number;
  readonly method: string;
  readonly retryable: boolean;

  constructor(message: string, details: { code: number; method: string }, options?: ErrorOptions) {
    super(message, options);
    this.code = details.code;
    this.method = details.method;
    this.retryable = RETRYABLE_GRPC_CODES.has(details.code);
  }
}

// UNAVAILABLE and RESOURCE_EXHAUSTED are transient by definition; DEADLINE_EXCEEDED is not retried
// blindly because the caller's own budget is usually spent too.
const RETRYABLE_GRPC_CODES: ReadonlySet<number> = new Set([8, 14]);

/**
 * The NATS client or etcd session was closed before the awaited thing happened (first connect,
 * lease grant, a registration being written). Not retryable: the owner shut it down on purpose.
 */
export class ConnectionClosedError extends Error {
  override readonly name = "ConnectionClosedError";
}

/** A secret or certificate file (password, token, NKey seed, creds, TLS) cannot be read or is empty. */
export class SecretFileError extends Error {
  override readonly name = "SecretFileError";
}
