// The cheap facts L1 decides on, read from the JSON body without tokenizing (DESIGN §1: the L1
// decision runs before tokenization). Validation is limited to the fields the ingress itself uses;
// everything else is the engine's business and is forwarded untouched.

import { estimatePromptTokensFromBytes } from "@sluice/core";
import { HttpError, invalidParam } from "./errors.js";

export type ApiKind = "completions" | "chat";

export interface RequestFacts {
  kind: ApiKind;
  model: string;
  stream: boolean;
  /** The request's own output budget, undefined when it sets none. */
  maxTokens: number | undefined;
  /** Prompt length: exact for token arrays, estimated from the body size for text. */
  promptTokens: number;
  /** Body bytes the text estimate used (0 for token arrays). */
  promptBytes: number;
}

/** Per-message overhead of chat templates (role markers, separators), in tokens. */
export const CHAT_MESSAGE_OVERHEAD_TOKENS = 4;

/** Parses the body and extracts the facts; throws `HttpError` 400 on malformed JSON or wrong field types. */
export function parseRequestFacts(
  kind: ApiKind,
  body: string,
): { facts: RequestFacts; json: Record<string, unknown> } {
  const bodyBytes = Buffer.byteLength(body);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new HttpError(
      "request body is not valid JSON",
      { status: 400, type: "invalid_request_error", code: "invalid_json" },
      { cause: error },
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new HttpError("request body must be a JSON object", {
      status: 400,
      type: "invalid_request_error",
      code: "invalid_json",
    });
  }
  const json = parsed as Record<string, unknown>;
  const model = json.model;
  if (typeof model !== "string" || model === "") {
    throw invalidParam("model", "`model` is required and must be a non-empty string", "missing_model");
  }
  const stream = json.stream ?? false;
  if (typeof stream !== "boolean") throw invalidParam("stream", "`stream` must be a boolean");
  const maxTokens = readMaxTokens(json, kind);
  const prompt =
    kind === "completions"
      ? measurePrompt(json.prompt, bodyBytes)
      : measureMessages(json.messages, bodyBytes);
  return { facts: { kind, model, stream, maxTokens, ...prompt }, json };
}

function readMaxTokens(json: Record<string, unknown>, kind: ApiKind): number | undefined {
  // Chat's newer name wins when both are present, as in the OpenAI API.
  const param =
    kind === "chat" && json.max_completion_tokens !== undefined ? "max_completion_tokens" : "max_tokens";
  const value = json[param];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw invalidParam(param, `\`${param}\` must be a positive integer`);
  }
  return value;
}

type PromptSize = Pick<RequestFacts, "promptTokens" | "promptBytes">;

// Text prompts are estimated from the whole body size (core's bytes-per-token rule): no tokenizer and
// no walk over the text, and the JSON framing only errs towards charging more KV, not less.
function measurePrompt(prompt: unknown, bodyBytes: number): PromptSize {
  const bad = () =>
    invalidParam(
      "prompt",
      "`prompt` must be a string, an array of strings, or an array (of arrays) of token ids",
    );
  if (typeof prompt === "string") return textSize(bodyBytes);
  if (!Array.isArray(prompt) || prompt.length === 0) throw bad();
  if (prompt.every((p) => typeof p === "string")) {
    return textSize(bodyBytes);
  }
  if (prompt.every(isTokenId)) return { promptTokens: prompt.length, promptBytes: 0 };
  if (prompt.every((p) => Array.isArray(p) && p.length > 0 && p.every(isTokenId))) {
    return { promptTokens: prompt.reduce((n: number, p: unknown[]) => n + p.length, 0), promptBytes: 0 };
  }
  throw bad();
}

function measureMessages(messages: unknown, bodyBytes: number): PromptSize {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalidParam("messages", "`messages` must be a non-empty array of message objects");
  }
  for (const [i, message] of messages.entries()) {
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      throw invalidParam(`messages[${i}]`, "each message must be an object with `role` and `content`");
    }
    const { role, content } = message as Record<string, unknown>;
    if (typeof role !== "string") throw invalidParam(`messages[${i}].role`, "`role` must be a string");
    checkContent(content, i);
  }
  const size = textSize(bodyBytes);
  return {
    promptTokens: size.promptTokens + messages.length * CHAT_MESSAGE_OVERHEAD_TOKENS,
    promptBytes: bodyBytes,
  };
}

function checkContent(content: unknown, index: number): void {
  if (content === null || content === undefined || typeof content === "string") return; // null: tool calls
  if (Array.isArray(content)) {
    for (const part of content) {
      if (typeof part !== "object" || part === null) {
        throw invalidParam(`messages[${index}].content`, "content parts must be objects");
      }
    }
    return;
  }
  throw invalidParam(`messages[${index}].content`, "`content` must be a string or an array of content parts");
}

function textSize(bytes: number): PromptSize {
  return { promptTokens: estimatePromptTokensFromBytes(bytes), promptBytes: bytes };
}

function isTokenId(value: unknown): boolean {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
