/**
 * Errors of the mock engine. `ApiError` is the one that reaches clients: it carries the HTTP
 * status and the OpenAI error fields, so the HTTP edge renders every failure the same way.
 */

/** OpenAI-compatible error `type` values this server emits. */
export type ApiErrorType =
  | "invalid_request_error"
  | "not_found_error"
  | "server_error"
  | "service_unavailable";

export interface ApiErrorFields {
  readonly status: number;
  readonly type: ApiErrorType;
  /** Machine-readable reason, e.g. `invalid_json`, `model_not_found`, `context_length_exceeded`. */
  readonly code: string;
  /** The request field at fault, when there is one. */
  readonly param?: string | null;
}

/** A request failure rendered as `{"error":{"message","type","param","code"}}` with `status`. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: number;
  readonly type: ApiErrorType;
  readonly code: string;
  readonly param: string | null;

  constructor(message: string, fields: ApiErrorFields, options?: ErrorOptions) {
    super(message, options);
    this.status = fields.status;
    this.type = fields.type;
    this.code = fields.code;
    this.param = fields.param ?? null;
  }

  toJSON(): { error: { message: string; type: string; param: string | null; code: string } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 for a request field with the wrong type or value. */
export function invalidParam(param: string, message: string, code = "invalid_value"): ApiError {
  return new ApiError(message, { status: 400, type: "invalid_request_error", code, param });
}

/** Invalid command-line options or option combinations, found at start-up. */
export class MockEngineConfigError extends Error {
  override readonly name = "MockEngineConfigError";
}

/** The engine is shutting down or otherwise cannot take work. */
export class EngineStoppedError extends Error {
  override readonly name = "EngineStoppedError";
}
