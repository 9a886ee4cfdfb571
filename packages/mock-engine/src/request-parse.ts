import { applyChatTemplate, type ChatMessage } from "@sluice/core";
import { ApiError, invalidParam } from "./errors.js";
import type { Tokenizer } from "./tokenizer.js";

/** Which OpenAI endpoint a request came in on. */
export type Endpoint = "completions" | "chat";

export type FinishReason = "length" | "stop";

/** A validated generation request: everything the engine and the response writer need. */
export interface GenerationRequest {
  readonly endpoint: Endpoint;
  readonly promptTokens: readonly number[];
  /** Tokens the mock will generate (it has no EOS; the length is decided up front). */
  readonly outputTokens: number;
  /** Reported when the last token is generated. */
  readonly finishReason: FinishReason;
  readonly stream: boolean;
  /** `stream_options.include_usage`: send a final chunk with `usage` before `[DONE]`. */
  readonly includeUsage: boolean;
}

export interface ParseLimits {
  readonly model: string;
  readonly maxModelLen: number;
  readonly defaultMaxTokens: number;
  /** 0 = off. */
  readonly forceOutputTokens: number;
  /** Total tokens the KV cache holds: one sequence can never need more. */
  readonly kvCapacityTokens: number;
  readonly tokenizer: Tokenizer;
}

type Body = Record<string, unknown>;

/** Parses the raw body text; throws `ApiError` 400 for anything that is not a JSON object. */
export function parseJsonBody(text: string): Body {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiError(
      `request body is not valid JSON: ${(error as Error).message}`,
      { status: 400, type: "invalid_request_error", code: "invalid_json" },
      { cause: error },
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError("request body must be a JSON object", {
      status: 400,
      type: "invalid_request_error",
      code: "invalid_json",
    });
  }
  return value as Body;
}

function optionalInt(body: Body, field: string, min: number): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw invalidParam(field, `${field} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalBool(body: Body, field: string): boolean | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") {
    throw invalidParam(field, `${field} must be a boolean, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkModel(body: Body, served: string): void {
  const model = body.model;
  // vLLM treats a missing model as the served one; the OpenAI SDKs always send it.
  if (model === undefined || model === null) return;
  if (typeof model !== "string") throw invalidParam("model", "model must be a string");
  if (model !== served) {
    throw new ApiError(`The model \`${model}\` does not exist. This server serves \`${served}\`.`, {
      status: 404,
      type: "not_found_error",
      code: "model_not_found",
      param: "model",
    });
  }
}

function checkTokenIds(tokens: readonly unknown[], vocabSize: number): number[] {
  for (const [i, token] of tokens.entries()) {
    if (typeof token !== "number" || !Number.isSafeInteger(token) || token < 0 || token >= vocabSize) {
      throw invalidParam(
        "prompt",
        `prompt[${i}] must be a token id in [0, ${vocabSize}), got ${JSON.stringify(token)}`,
      );
    }
  }
  return tokens as number[];
}

function completionPrompt(body: Body, tokenizer: Tokenizer): number[] {
  const prompt = body.prompt;
  if (typeof prompt === "string") return tokenizer.encode(prompt);
  if (Array.isArray(prompt)) {
    if (prompt.length > 0 && (typeof prompt[0] === "string" || Array.isArray(prompt[0]))) {
      throw invalidParam(
        "prompt",
        "batched prompts (an array of strings or of token arrays) are not supported; send one prompt per request",
        "unsupported_batch",
      );
    }
    return checkTokenIds(prompt, tokenizer.vocabSize);
  }
  throw invalidParam("prompt", "prompt must be a string or an array of token ids");
}

function messageContent(content: unknown, index: number): string {
  if (typeof content === "string") return content;
  if (content === null || content === undefined) return "";
  if (Array.isArray(content)) {
    let text = "";
    for (const [j, part] of content.entries()) {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (typeof p !== "object" || p === null || p.type !== "text" || typeof p.text !== "string") {
        throw invalidParam(
          `messages[${index}].content[${j}]`,
          "only text content parts ({type: 'text', text: string}) are supported",
        );
      }
      text += p.text;
    }
    return text;
  }
  throw invalidParam(
    `messages[${index}].content`,
    "message content must be a string or an array of text parts",
  );
}

function chatPrompt(body: Body, tokenizer: Tokenizer): number[] {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalidParam("messages", "messages must be a non-empty array");
  }
  const parsed: ChatMessage[] = messages.map((m: unknown, i) => {
    const message = m as { role?: unknown; content?: unknown } | null;
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      throw invalidParam(`messages[${i}]`, "each message must be an object with role and content");
    }
    if (typeof message.role !== "string" || message.role.length === 0) {
      throw invalidParam(`messages[${i}].role`, "message role must be a non-empty string");
    }
    return { role: message.role, content: messageContent(message.content, i) };
  });
  return tokenizer.encode(applyChatTemplate(parsed));
}

/**
 * Validates an OpenAI completions or chat body against the served model and the engine's
 * limits and decides the output length. Throws `ApiError` (400 / 404) on any bad input.
 */
export function parseGenerationRequest(
  endpoint: Endpoint,
  body: Body,
  limits: ParseLimits,
): GenerationRequest {
  checkModel(body, limits.model);
  const stream = optionalBool(body, "stream") ?? false;
  const streamOptions = body.stream_options;
  let includeUsage = false;
  if (streamOptions !== undefined && streamOptions !== null) {
    if (typeof streamOptions !== "object" || Array.isArray(streamOptions)) {
      throw invalidParam("stream_options", "stream_options must be an object");
    }
    includeUsage = optionalBool(streamOptions as Body, "include_usage") ?? false;
  }
  const n = optionalInt(body, "n", 1);
  if (n !== undefined && n !== 1) throw invalidParam("n", "only n = 1 is supported");
  optionalBool(body, "ignore_eos"); // accepted for vLLM compatibility: the mock never emits EOS
  const minTokens = optionalInt(body, "min_tokens", 0) ?? 0;
  const requestedMax =
    endpoint === "chat"
      ? (optionalInt(body, "max_completion_tokens", 1) ?? optionalInt(body, "max_tokens", 1))
      : optionalInt(body, "max_tokens", 1);
  if (requestedMax !== undefined && minTokens > requestedMax) {
    throw invalidParam(
      "min_tokens",
      `min_tokens (${minTokens}) must not exceed max_tokens (${requestedMax})`,
    );
  }

  const promptTokens =
    endpoint === "chat" ? chatPrompt(body, limits.tokenizer) : completionPrompt(body, limits.tokenizer);
  if (promptTokens.length === 0) throw invalidParam("prompt", "the prompt is empty");

  let outputTokens: number;
  let finishReason: FinishReason;
  if (limits.forceOutputTokens > 0) {
    const forced = Math.max(limits.forceOutputTokens, minTokens);
    outputTokens = requestedMax === undefined ? forced : Math.min(forced, requestedMax);
    finishReason = requestedMax !== undefined && outputTokens >= requestedMax ? "length" : "stop";
  } else {
    outputTokens = requestedMax ?? Math.max(limits.defaultMaxTokens, minTokens);
    finishReason = "length";
  }

  const totalTokens = promptTokens.length + outputTokens;
  if (totalTokens > limits.maxModelLen) {
    throw new ApiError(
      `This model's maximum context length is ${limits.maxModelLen} tokens. However, you requested ${totalTokens} tokens (${promptTokens.length} in the messages, ${outputTokens} in the completion). Please reduce the length of the messages or completion.`,
      { status: 400, type: "invalid_request_error", code: "context_length_exceeded", param: "messages" },
    );
  }
  if (totalTokens > limits.kvCapacityTokens) {
    throw new ApiError(
      `The request needs ${totalTokens} tokens of KV cache but the engine holds only ${limits.kvCapacityTokens}.`,
      { status: 400, type: "invalid_request_error", code: "context_length_exceeded", param: "prompt" },
    );
  }
  return { endpoint, promptTokens, outputTokens, finishReason, stream, includeUsage };
}
