// What the L3 decision needs from an OpenAI request: its class, prompt size, the router's prefix
// overlap and the time already spent upstream. The ingress and router pass the last three in headers
// (documented in the README); the prompt size falls back to the body when no header carries it.
import type { IncomingHttpHeaders } from "node:http";
import { BadRequestError } from "./errors.js";

/** Request class (`critical`, `standard`, `sheddable`, or a policy class). Default: the policy's default class. */
export const CLASS_HEADER = "x-sluice-class";
/** Prompt tokens already cached on this engine (the router's prefix overlap × block size). Default 0. */
export const CACHED_TOKENS_HEADER = "x-sluice-cached-tokens";
/** Milliseconds the request spent upstream (ingress + router) before reaching the sidecar. Default 0. */
export const ELAPSED_MS_HEADER = "x-sluice-elapsed-ms";
/** Prompt length in tokens when the caller tokenized it (the ingress does). Default: from the body. */
export const PROMPT_TOKENS_HEADER = "x-sluice-prompt-tokens";
export const REQUEST_ID_HEADER = "x-request-id";

export interface RequestFacts {
  className: string;
  promptTokens: number;
  cachedTokens: number;
  upstreamElapsedMs: number;
  /** The request's output limit (`max_tokens`, or `max_completion_tokens` for chat), when it gives one. */
  maxTokens: number | undefined;
  stream: boolean;
  model: string;
}

/**
 * Rough tokens of text without a tokenizer: ~4 UTF-8 bytes per token (GPT/Llama BPEs on English).
 * Only used when no `x-sluice-prompt-tokens` header and no token-array prompt is given.
 */
export function estimateTextTokens(text: string): number {
  return Math.max(1, Math.ceil(Buffer.byteLength(text, "utf8") / 4));
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function numberHeader(headers: IncomingHttpHeaders, name: string, integer: boolean): number | undefined {
  const raw = header(headers, name);
  if (raw === undefined || raw.trim() === "") return undefined;
  const n = Number(raw);
  if (!(Number.isFinite(n) && n >= 0 && (!integer || Number.isInteger(n))))
    throw new BadRequestError(
      `header ${name} must be a ${integer ? "non-negative integer" : "non-negative number"}, got ${JSON.stringify(raw)}`,
      "invalid_header",
    );
  return n;
}

function textOfContent(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content))
    return content
      .map((part) =>
        typeof part === "object" && part !== null && typeof (part as { text?: unknown }).text === "string"
          ? (part as { text: string }).text
          : "",
      )
      .join("");
  return "";
}

/** Prompt tokens of a completions or chat body. */
function promptTokensOfBody(body: Record<string, unknown>, chat: boolean): number {
  if (chat) {
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0)
      throw new BadRequestError("`messages` must be a non-empty array", "invalid_value");
    let text = "";
    for (const m of messages) {
      if (typeof m !== "object" || m === null)
        throw new BadRequestError("every message must be an object", "invalid_value");
      text += textOfContent((m as { content?: unknown }).content);
    }
    // Chat templates add a few tokens of role markup per message.
    return estimateTextTokens(text) + 4 * messages.length;
  }
  const prompt = body.prompt;
  if (typeof prompt === "string") return estimateTextTokens(prompt);
  if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((t) => Number.isInteger(t)))
    return prompt.length;
  if (Array.isArray(prompt) && prompt.every((t) => typeof t === "string"))
    return prompt.reduce((sum: number, t: string) => sum + estimateTextTokens(t), 0) || 1;
  throw new BadRequestError(
    "`prompt` must be a string, an array of strings or an array of token ids",
    "invalid_value",
  );
}

/** Reads the scheduling facts; throws BadRequestError on a malformed body or header. */
export function requestFacts(
  headers: IncomingHttpHeaders,
  body: Buffer,
  chat: boolean,
  defaultClass: string,
): RequestFacts {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (error) {
    throw new BadRequestError("request body is not valid JSON", "invalid_json", 400, { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new BadRequestError("request body must be a JSON object", "invalid_json");
  const b = parsed as Record<string, unknown>;
  const promptTokens = numberHeader(headers, PROMPT_TOKENS_HEADER, true) ?? promptTokensOfBody(b, chat);
  if (promptTokens < 1) throw new BadRequestError(`${PROMPT_TOKENS_HEADER} must be ≥ 1`, "invalid_header");
  const cached = numberHeader(headers, CACHED_TOKENS_HEADER, true) ?? 0;
  const className = header(headers, CLASS_HEADER)?.trim() || defaultClass;
  return {
    className,
    promptTokens,
    // The overlap is a router estimate in whole blocks; it can exceed a body-based estimate.
    cachedTokens: Math.min(cached, promptTokens),
    upstreamElapsedMs: numberHeader(headers, ELAPSED_MS_HEADER, false) ?? 0,
    maxTokens: outputLimitOfBody(b, chat),
    stream: b.stream === true,
    model: typeof b.model === "string" ? b.model : "",
  };
}

/**
 * The output limit the ITL guard spreads a newcomer's prefill over. A malformed value is left for the
 * engine to refuse (the sidecar forwards the body unchanged); the guard then assumes a length.
 */
function outputLimitOfBody(body: Record<string, unknown>, chat: boolean): number | undefined {
  const raw = chat ? (body.max_completion_tokens ?? body.max_tokens) : body.max_tokens;
  return typeof raw === "number" && Number.isInteger(raw) && raw >= 1 ? raw : undefined;
}
