import type { ServerResponse } from "node:http";
import type { SequenceListener } from "./driver.js";
import {
  fullResponse,
  type ResponseIdentity,
  roleChunk,
  sseData,
  textChunk,
  usage,
  usageChunk,
} from "./openai-format.js";
import type { GenerationRequest } from "./request-parse.js";
import type { VllmMetrics } from "./vllm-metrics.js";

export interface SessionDeps {
  readonly metrics: VllmMetrics;
  /** Output token ids the mock cycles through. */
  readonly fillerTokens: readonly number[];
  readonly decodeToken: (tokenId: number) => string;
}

/**
 * One in-flight generation: turns the driver's token deliveries into an SSE stream or a single
 * JSON body on `res`, and records vLLM's per-request metrics (times in engine ms).
 */
export function createGenerationSession(
  request: GenerationRequest,
  who: ResponseIdentity,
  arrivalMs: number,
  res: ServerResponse,
  deps: SessionDeps,
): SequenceListener {
  const { metrics, fillerTokens, decodeToken } = deps;
  let generated = 0;
  let lastTokenMs = arrivalMs;
  let text = "";

  if (request.stream) {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-request-id": who.id,
    });
    // Clients see the 200 at once (as with vLLM) rather than at the first token.
    res.flushHeaders();
  }

  return {
    // The driver's `first` flag is not used: after a preemption the engine may report a first token
    // again (re-prefill), but the client already has its first token.
    onToken(atMs) {
      if (generated >= request.outputTokens) return;
      const token = fillerTokens[generated % fillerTokens.length] ?? 0;
      generated += 1;
      if (generated === 1) metrics.observeFirstToken((atMs - arrivalMs) / 1000, request.promptTokens.length);
      else metrics.observeToken((atMs - lastTokenMs) / 1000);
      lastTokenMs = atMs;
      const piece = decodeToken(token);
      if (!request.stream) {
        text += piece;
        return;
      }
      if (res.destroyed) return;
      if (generated === 1 && request.endpoint === "chat") res.write(sseData(roleChunk(who)));
      const last = generated === request.outputTokens;
      res.write(sseData(textChunk(request.endpoint, who, piece, last ? request.finishReason : null, false)));
    },
    onFinish(atMs) {
      metrics.observeFinish((atMs - arrivalMs) / 1000, request.finishReason);
      const totals = usage(request.promptTokens.length, generated);
      if (res.destroyed) return;
      if (!request.stream) {
        const body = JSON.stringify(fullResponse(request.endpoint, who, text, request.finishReason, totals));
        res.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "x-request-id": who.id,
        });
        res.end(body);
        return;
      }
      if (request.includeUsage) res.write(sseData(usageChunk(request.endpoint, who, totals)));
      res.end(sseData("[DONE]"));
    },
  };
}
