import { MockEngineConfigError } from "./errors.js";

/** Options of the OpenAI-compatible HTTP front of the mock engine. */
export interface ApiOptions {
  /** Model name served and reported in responses and metrics labels. */
  model?: string;
  /**
   * Maximum prompt + output tokens of one request (vLLM's `max_model_len`); longer requests
   * get 400 `context_length_exceeded`.
   */
  maxModelLen?: number;
  /**
   * Output tokens when a request sets neither `max_tokens` nor `max_completion_tokens`. vLLM
   * uses 16 for completions and `max_model_len − prompt` for chat; the latter only makes sense
   * with a model that emits EOS, which the mock never does, so both endpoints use this value.
   */
  defaultMaxTokens?: number;
  /**
   * Benchmark knob: every request generates exactly this many tokens (capped by its own
   * `max_tokens` when it sets one; `min_tokens` raises it). 0 = off: requests generate
   * `max_tokens` tokens, as vLLM does with `ignore_eos`.
   */
  forceOutputTokens?: number;
  /** Request bodies over this size get 413. */
  maxBodyBytes?: number;
  /** Time allowed to receive the request headers. */
  headersTimeoutMs?: number;
  /** Time allowed to receive the whole request (headers and body); responses are not bounded. */
  requestTimeoutMs?: number;
  /** Idle keep-alive connections are closed after this long. */
  keepAliveTimeoutMs?: number;
}

export const DEFAULT_MODEL = "mock-llm";
export const DEFAULT_MAX_MODEL_LEN = 32_768;
export const DEFAULT_MAX_TOKENS = 16;
export const DEFAULT_FORCE_OUTPUT_TOKENS = 0;
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new MockEngineConfigError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

export function apiOptionsWithDefaults(options: ApiOptions = {}): Required<ApiOptions> {
  const resolved: Required<ApiOptions> = {
    model: options.model ?? DEFAULT_MODEL,
    maxModelLen: positiveInt("maxModelLen", options.maxModelLen ?? DEFAULT_MAX_MODEL_LEN),
    defaultMaxTokens: positiveInt("defaultMaxTokens", options.defaultMaxTokens ?? DEFAULT_MAX_TOKENS),
    forceOutputTokens: options.forceOutputTokens ?? DEFAULT_FORCE_OUTPUT_TOKENS,
    maxBodyBytes: positiveInt("maxBodyBytes", options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES),
    headersTimeoutMs: positiveInt("headersTimeoutMs", options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS),
    requestTimeoutMs: positiveInt("requestTimeoutMs", options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS),
    keepAliveTimeoutMs: positiveInt(
      "keepAliveTimeoutMs",
      options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
    ),
  };
  if (resolved.model.length === 0) throw new MockEngineConfigError("model must not be empty");
  if (!Number.isSafeInteger(resolved.forceOutputTokens) || resolved.forceOutputTokens < 0) {
    throw new MockEngineConfigError(
      `forceOutputTokens must be a non-negative integer, got ${resolved.forceOutputTokens}`,
    );
  }
  if (resolved.headersTimeoutMs > resolved.requestTimeoutMs) {
    throw new MockEngineConfigError(
      `headersTimeoutMs (${resolved.headersTimeoutMs}) must not exceed requestTimeoutMs (${resolved.requestTimeoutMs})`,
    );
  }
  return resolved;
}
