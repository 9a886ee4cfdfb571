import type { Endpoint, FinishReason } from "./request-parse.js";

/**
 * Response bodies in the exact shapes vLLM's OpenAI server produces, so the official SDKs and
 * benchmark clients parse them unchanged.
 */

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ResponseIdentity {
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  readonly model: string;
}

export function usage(promptTokens: number, completionTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/** A streamed chunk carrying generated text (and the finish reason on the last one). */
export function textChunk(
  endpoint: Endpoint,
  who: ResponseIdentity,
  text: string,
  finishReason: FinishReason | null,
  withRole: boolean,
): object {
  if (endpoint === "completions") {
    return {
      id: who.id,
      object: "text_completion",
      created: who.created,
      model: who.model,
      choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason, stop_reason: null }],
    };
  }
  const delta = withRole ? { role: "assistant", content: text } : { content: text };
  return {
    id: who.id,
    object: "chat.completion.chunk",
    created: who.created,
    model: who.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
}

/** The chat stream's opening chunk: the assistant role with empty content, as vLLM sends it. */
export function roleChunk(who: ResponseIdentity): object {
  return {
    id: who.id,
    object: "chat.completion.chunk",
    created: who.created,
    model: who.model,
    choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }],
  };
}

/** `stream_options.include_usage`: the last chunk before `[DONE]`, with no choices. */
export function usageChunk(endpoint: Endpoint, who: ResponseIdentity, totals: Usage): object {
  return {
    id: who.id,
    object: endpoint === "completions" ? "text_completion" : "chat.completion.chunk",
    created: who.created,
    model: who.model,
    choices: [],
    usage: totals,
  };
}

/** A whole non-streamed response. */
export function fullResponse(
  endpoint: Endpoint,
  who: ResponseIdentity,
  text: string,
  finishReason: FinishReason,
  totals: Usage,
): object {
  if (endpoint === "completions") {
    return {
      id: who.id,
      object: "text_completion",
      created: who.created,
      model: who.model,
      choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason, stop_reason: null }],
      usage: totals,
    };
  }
  return {
    id: who.id,
    object: "chat.completion",
    created: who.created,
    model: who.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: text, tool_calls: [] },
        logprobs: null,
        finish_reason: finishReason,
      },
    ],
    usage: totals,
  };
}

/** `GET /v1/models`. */
export function modelList(model: string, created: number, maxModelLen: number): object {
  return {
    object: "list",
    data: [
      { id: model, object: "model", created, owned_by: "sluice", root: model, max_model_len: maxModelLen },
    ],
  };
}

/** One SSE event exactly as vLLM frames it. */
export function sseData(payload: object | "[DONE]"): string {
  return `data: ${payload === "[DONE]" ? payload : JSON.stringify(payload)}\n\n`;
}
