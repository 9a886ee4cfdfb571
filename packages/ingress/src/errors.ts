/**
 * Errors of the ingress. `HttpError` is the one that reaches clients: it carries the HTTP status and
 * the OpenAI error fields, so every failure at the edge renders as `{"error":{message,type,param,code}}`
 * and is counted under its `code`.
 */

/** OpenAI-compatible error `type` values the ingress emits. */
export type HttpErrorType =
  | "invalid_request_error"
  | "not_found_error"
  | "rate_limit_error"
  | "server_error"
  | "service_unavailable";

export interface HttpErrorFields {
  readonly status: number;
  readonly type: HttpErrorType;
  /** Machine-readable reason (`invalid_json`, `model_not_found`, `no_engine`, …); also the metric label. */
  readonly code: string;
  /** The request field at fault, when there is one. */
  readonly param?: string | null;
}

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

export class HttpError extends Error {
  override readonly name = "HttpError";
  readonly status: number;
  readonly type: HttpErrorType;
  readonly code: string;
  readonly param: string | null;

  constructor(message: string, fields: HttpErrorFields, options?: ErrorOptions) {
    super(message, options);
    this.status = fields.status;
    this.type = fields.type;
    this.code = fields.code;
    this.param = fields.param ?? null;
  }

  toJSON(): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 for a request field with the wrong type or value. */
export function invalidParam(param: string, message: string, code = "invalid_value"): HttpError {
  return new HttpError(message, { status: 400, type: "invalid_request_error", code, param });
}

/** Invalid settings or option combinations, found at start-up. */
export class IngressConfigError extends Error {
  override readonly name = "IngressConfigError";
}

/** The upstream engine failed before or while answering; retryable on another engine. */
export class UpstreamError extends Error {
  override readonly name = "UpstreamError";
  readonly retryable = true;
}

/**
 * A `ShouldRateLimit` request Sluice cannot judge (no descriptors, empty or conflicting entries, no
 * model, bad numbers). Answered with gRPC INVALID_ARGUMENT; Envoy then applies its own
 * `failure_mode_deny` (allow by default), so a misconfigured route never crashes anything.
 */
export class RlsRequestError extends Error {
  override readonly name = "RlsRequestError";
}
