// Sends one streaming OpenAI request over node:http and measures it as it streams: the first token, every
// token gap, and how it ended. node:http with one keep-alive agent (no socket limit) rather than fetch:
// thousands of concurrent streams need no per-request stream adapters, and SSE bytes are parsed as they come.

import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { RequestOutcome } from "./outcome.js";
import { simLevelOf } from "./outcome.js";

export interface StreamClient {
  /** POSTs `body` to `url` and resolves when the request settled; never rejects. */
  send(url: URL, body: string, onTokenGap: (gapMs: number) => void): Promise<RequestOutcome>;
  close(): void;
}

export interface StreamClientOptions {
  /** Wall time allowed for one whole request (connect to `[DONE]`). */
  requestTimeoutMs: number;
  /** Wall clock, ms (performance.now by default). */
  now: () => number;
  /** Extra request headers (e.g. authorization, x-sluice-class). */
  headers: Readonly<Record<string, string>>;
}

/** Error bodies are small; a rejection body bigger than this is read only this far. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const REJECTION_STATUSES = new Set([429, 503, 529]);

export function createStreamClient(options: StreamClientOptions): StreamClient {
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const { now } = options;

  const send = (url: URL, body: string, onTokenGap: (gapMs: number) => void): Promise<RequestOutcome> =>
    new Promise<RequestOutcome>((resolve) => {
      let settled = false;
      const finish = (outcome: RequestOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(outcome);
      };
      const https = url.protocol === "https:";
      const req = (https ? httpsRequest : httpRequest)(url, {
        method: "POST",
        agent: https ? httpsAgent : httpAgent,
        headers: {
          ...options.headers,
          "content-type": "application/json",
          accept: "text/event-stream",
          "content-length": Buffer.byteLength(body),
        },
      });
      const timer = setTimeout(() => {
        finish({
          kind: "failed",
          reason: "timeout",
          message: `no complete answer in ${options.requestTimeoutMs} ms`,
        });
        req.destroy();
      }, options.requestTimeoutMs);
      let responded = false;
      req.on("error", (error) => {
        // After the response began, a socket error cuts the answer short rather than failing to connect.
        finish({ kind: "failed", reason: responded ? "truncated" : "connection", message: error.message });
      });
      req.on("response", (res) => {
        responded = true;
        if (res.statusCode !== 200) readError(res, finish);
        else readStream(res, now, onTokenGap, finish);
      });
      req.end(body);
    });

  return {
    send,
    close(): void {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

function readError(res: IncomingMessage, finish: (o: RequestOutcome) => void): void {
  const status = res.statusCode ?? 0;
  const chunks: Buffer[] = [];
  let bytes = 0;
  res.on("data", (chunk: Buffer) => {
    if (bytes < MAX_ERROR_BODY_BYTES) chunks.push(chunk);
    bytes += chunk.length;
  });
  res.on("error", (error) => finish({ kind: "failed", reason: "connection", message: error.message }));
  res.on("end", () => {
    let parsed: { error?: { code?: unknown; type?: unknown }; sluice?: Record<string, unknown> } = {};
    try {
      parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as typeof parsed;
    } catch {
      // Not JSON (a proxy's HTML page, say): classified by status alone.
    }
    const code = String(parsed.error?.code ?? parsed.error?.type ?? `http_${status}`);
    if (!REJECTION_STATUSES.has(status)) {
      finish({ kind: "refused", status, code });
      return;
    }
    const sluice = parsed.sluice;
    finish({
      kind: "rejected",
      status,
      level: sluice === undefined ? "upstream" : simLevelOf(sluice.level),
      reason: sluice !== undefined && typeof sluice.reason === "string" ? sluice.reason : code,
      retryAfterMs: retryAfterMs(res, sluice),
    });
  });
}

function retryAfterMs(res: IncomingMessage, sluice: Record<string, unknown> | undefined): number {
  const ms = Number(res.headers["retry-after-ms"]);
  if (res.headers["retry-after-ms"] !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const seconds = Number(res.headers["retry-after"]);
  if (res.headers["retry-after"] !== undefined && Number.isFinite(seconds) && seconds >= 0)
    return seconds * 1000;
  const fromBody = Number(sluice?.retry_after_ms);
  return sluice?.retry_after_ms !== undefined && Number.isFinite(fromBody) ? fromBody : Number.NaN;
}

interface StreamChunk {
  choices?: { text?: string; delta?: { content?: string } }[];
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number } | null;
  } | null;
}

function readStream(
  res: IncomingMessage,
  now: () => number,
  onTokenGap: (gapMs: number) => void,
  finish: (o: RequestOutcome) => void,
): void {
  res.setEncoding("utf8");
  let buffer = "";
  let firstTokenAtMs = Number.NaN;
  let lastTokenAtMs = Number.NaN;
  let tokenChunks = 0;
  let usage: StreamChunk["usage"];
  let done = false;
  const onEvent = (event: string, atMs: number): boolean => {
    for (const line of event.split("\n")) {
      if (!line.startsWith("data:")) continue; // comments, `event: sluice` names, ids
      const data = line.slice(5).trim();
      if (data === "[DONE]") {
        done = true;
        continue;
      }
      let chunk: StreamChunk;
      try {
        chunk = JSON.parse(data) as StreamChunk;
      } catch {
        finish({ kind: "failed", reason: "protocol", message: `unparseable SSE data: ${data.slice(0, 80)}` });
        res.destroy();
        return false;
      }
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices?.[0];
      const text = choice?.text ?? choice?.delta?.content;
      // The chat stream's opening role delta has empty content: not a token.
      if (typeof text !== "string" || text === "") continue;
      if (tokenChunks === 0) firstTokenAtMs = atMs;
      else onTokenGap(atMs - lastTokenAtMs);
      lastTokenAtMs = atMs;
      tokenChunks++;
    }
    return true;
  };
  res.on("data", (text: string) => {
    const atMs = now();
    buffer += text;
    let cut = buffer.indexOf("\n\n");
    while (cut >= 0) {
      if (!onEvent(buffer.slice(0, cut), atMs)) return;
      buffer = buffer.slice(cut + 2);
      cut = buffer.indexOf("\n\n");
    }
  });
  // Once the stream started, a reset is a cut stream, whatever the socket calls it.
  res.on("error", (error) =>
    finish({ kind: "failed", reason: "truncated", message: `stream cut before [DONE]: ${error.message}` }),
  );
  res.on("close", () => {
    if (!done || tokenChunks === 0) {
      finish({
        kind: "failed",
        reason: "truncated",
        message: done ? "stream ended without a token" : "stream ended before [DONE]",
      });
      return;
    }
    finish({
      kind: "completed",
      firstTokenAtMs,
      lastTokenAtMs,
      outputTokens: usage?.completion_tokens ?? tokenChunks,
      promptTokens: usage?.prompt_tokens ?? Number.NaN,
      cachedTokens: usage?.prompt_tokens_details?.cached_tokens ?? Number.NaN,
    });
  });
}
