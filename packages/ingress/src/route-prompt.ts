// The prompt in the form the router hashes: token ids as the client sent them, or the text the engine
// will tokenize. Chat messages are rendered with the engine's template so that the router's block
// hashes match the ones the engine publishes in its KV events.

import { applyChatTemplate } from "@sluice/core";
import type { RoutePrompt } from "./engine-selector.js";
import type { ApiKind } from "./request-facts.js";

/** Undefined when the request has no single routable prompt (batches, multi-part chat content). */
export function routePromptOf(kind: ApiKind, json: Record<string, unknown>): RoutePrompt | undefined {
  if (kind === "completions") {
    const prompt = json.prompt;
    if (typeof prompt === "string") return { text: prompt };
    if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === "string")
      return { text: prompt[0] };
    if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((t) => typeof t === "number")) {
      return { tokenIds: prompt as number[] };
    }
    return undefined;
  }
  const messages = json.messages;
  if (!Array.isArray(messages)) return undefined;
  const plain: { role: string; content: string }[] = [];
  for (const m of messages) {
    const { role, content } = (m ?? {}) as { role?: unknown; content?: unknown };
    if (typeof role !== "string" || typeof content !== "string") return undefined;
    plain.push({ role, content });
  }
  return { text: applyChatTemplate(plain) };
}
