/**
 * The chat template of `sluice mock-engine`, shared with the router and the ingress: the router
 * hashes the same text the engine tokenizes, so prefix overlap is only found if all three agree —
 * which is why there is exactly one copy. A minimal ChatML-style template. Real engines apply the model's own Jinja template; any
 * fixed template serves the mock as long as it is deterministic and puts the conversation in
 * order, so that multi-turn chats sharing history share a token (and KV block) prefix.
 */
export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

export function applyChatTemplate(messages: readonly ChatMessage[]): string {
  let text = "";
  for (const message of messages) text += `<|im_start|>${message.role}\n${message.content}<|im_end|>\n`;
  return `${text}<|im_start|>assistant\n`;
}
