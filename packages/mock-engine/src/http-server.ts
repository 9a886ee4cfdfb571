import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { BlockHash } from "@sluice/core";
import type { RealtimeDriver, SequenceListener } from "./driver.js";
import { ApiError } from "./errors.js";
import { createGenerationSession } from "./generation-session.js";
import { readBoundedBody } from "./http-body.js";
import { modelList } from "./openai-format.js";
import type { ApiOptions } from "./options.js";
import { type Endpoint, parseGenerationRequest, parseJsonBody } from "./request-parse.js";
import type { Tokenizer } from "./tokenizer.js";
import type { VllmMetrics } from "./vllm-metrics.js";

/** The small logger slice this server needs (pino's methods fit). */
export interface ApiLogger {
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface PromptBlockHashes {
  /** Dynamo sequence hashes of the full prompt blocks. */
  blockHashes: BlockHash[];
  /** Dynamo local (tokens) hashes of the same blocks. */
  localBlockHashes: BlockHash[];
}

export interface ApiServerDeps {
  readonly options: Required<ApiOptions>;
  readonly driver: RealtimeDriver;
  readonly tokenizer: Tokenizer;
  readonly fillerTokens: readonly number[];
  readonly metrics: VllmMetrics;
  /** KV capacity in tokens (blocks × block size): no single request may need more. */
  readonly kvCapacityTokens: number;
  readonly hashPrompt: (tokens: readonly number[]) => PromptBlockHashes;
  /** Prometheus exposition for `GET /metrics` on the API port (vLLM serves it there). */
  readonly metricsText: () => Promise<{ contentType: string; body: string }>;
  readonly logger: ApiLogger;
}

export interface ApiServer {
  /** `http://host:port` as bound (the real port when 0 was asked for). */
  readonly url: string;
  readonly port: number;
  /**
   * Graceful stop: refuse new requests (503), let in-flight ones finish for up to `graceMs`, then
   * abort the rest and close every connection. Calling it again with 0 ends the grace period now.
   */
  close(graceMs: number): Promise<void>;
  /** First step of `close`, on its own: new requests get 503 and no new connections are accepted. */
  stopAccepting(): void;
}

const ROUTES: Record<string, { method: string; endpoint?: Endpoint }> = {
  "/v1/completions": { method: "POST", endpoint: "completions" },
  "/v1/chat/completions": { method: "POST", endpoint: "chat" },
  "/v1/models": { method: "GET" },
  "/metrics": { method: "GET" },
  "/health": { method: "GET" },
};

function sendJson(
  res: ServerResponse,
  status: number,
  payload: object,
  extraHeaders: Record<string, string> = {},
) {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}

function sendError(res: ServerResponse, error: ApiError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // After a refused body the rest of it may still be in flight: close instead of keeping alive.
  const headers: Record<string, string> = error.status === 413 ? { connection: "close" } : {};
  sendJson(res, error.status, error.toJSON(), headers);
}

/** Starts the OpenAI-compatible API server of the mock engine. */
export async function startApiServer(host: string, port: number, deps: ApiServerDeps): Promise<ApiServer> {
  const { options, driver, logger } = deps;
  const startedAtS = Math.floor(Date.now() / 1000);
  let draining = false;
  let closing: Promise<void> | undefined;
  let endGrace: () => void = () => {};

  async function generate(endpoint: Endpoint, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBoundedBody(req, options.maxBodyBytes);
    if (draining) throw unavailable();
    const request = parseGenerationRequest(endpoint, parseJsonBody(text), {
      model: options.model,
      maxModelLen: options.maxModelLen,
      defaultMaxTokens: options.defaultMaxTokens,
      forceOutputTokens: options.forceOutputTokens,
      kvCapacityTokens: deps.kvCapacityTokens,
      tokenizer: deps.tokenizer,
    });
    if (res.destroyed) return; // the client left while we read and tokenized
    const id = `${endpoint === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID().replaceAll("-", "")}`;
    const who = { id, created: Math.floor(Date.now() / 1000), model: options.model };
    const hashes = deps.hashPrompt(request.promptTokens);
    const arrivalMs = driver.nowMs();
    let finished = false;
    let session: SequenceListener | undefined;
    // Submitted before the session exists so that engine refusals become clean 400s before any
    // response bytes go out; no output can arrive before the session is attached (delivery is async).
    const relay: SequenceListener = {
      onToken: (atMs, first) => session?.onToken(atMs, first),
      onFinish: (atMs) => {
        finished = true;
        session?.onFinish(atMs);
      },
    };
    try {
      driver.submit(
        {
          id,
          promptTokens: request.promptTokens.length,
          blockHashes: hashes.blockHashes,
          localBlockHashes: hashes.localBlockHashes,
          maxTokens: request.outputTokens,
        },
        relay,
      );
    } catch (error) {
      const name = (error as Error).name;
      if (name === "RequestTooLongError" || name === "InvalidEngineRequestError") {
        throw new ApiError(
          (error as Error).message,
          { status: 400, type: "invalid_request_error", code: "context_length_exceeded", param: "prompt" },
          { cause: error },
        );
      }
      throw error;
    }
    session = createGenerationSession(request, who, arrivalMs, res, {
      metrics: deps.metrics,
      fillerTokens: deps.fillerTokens,
      decodeToken: deps.tokenizer.decodeToken,
    });
    res.on("close", () => {
      if (finished) return;
      // The client went away mid-generation: free the sequence's KV blocks now.
      if (driver.abort(id)) {
        deps.metrics.observeFinish((driver.nowMs() - arrivalMs) / 1000, "abort");
        logger.debug({ requestId: id }, "client disconnected; request aborted");
      }
    });
  }

  function unavailable(): ApiError {
    return new ApiError("the engine is shutting down", {
      status: 503,
      type: "service_unavailable",
      code: "shutting_down",
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?", 1)[0] ?? "/";
    const route = ROUTES[path];
    if (route === undefined) {
      throw new ApiError(`no such path: ${req.method} ${path}`, {
        status: 404,
        type: "not_found_error",
        code: "not_found",
      });
    }
    if (req.method !== route.method) {
      res.setHeader("allow", route.method);
      throw new ApiError(`${path} accepts ${route.method}, not ${req.method}`, {
        status: 405,
        type: "invalid_request_error",
        code: "method_not_allowed",
      });
    }
    if (route.endpoint !== undefined) {
      await generate(route.endpoint, req, res);
      return;
    }
    if (path === "/v1/models") {
      sendJson(res, 200, modelList(options.model, startedAtS, options.maxModelLen));
    } else if (path === "/metrics") {
      const { contentType, body } = await deps.metricsText();
      res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
      res.end(body);
    } else {
      if (draining) throw unavailable();
      res.writeHead(200, { "content-length": 0 });
      res.end();
    }
  }

  const serverOptions = {
    keepAlive: true,
    // Node checks header/request timeouts only this often (30 s by default), which would turn a 10 s
    // headers timeout into a 40 s one.
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(options.headersTimeoutMs / 4))),
  };
  const server: Server = createServer(serverOptions, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof ApiError) {
        sendError(res, error);
        return;
      }
      logger.warn({ err: error, url: req.url }, "request failed");
      sendError(
        res,
        new ApiError(
          "internal error",
          { status: 500, type: "server_error", code: "internal_error" },
          { cause: error },
        ),
      );
    });
  });
  server.headersTimeout = options.headersTimeoutMs;
  server.requestTimeout = options.requestTimeoutMs;
  server.keepAliveTimeout = options.keepAliveTimeoutMs;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;

  let serverClosed: Promise<void> | undefined;
  function stopAccepting(): void {
    if (draining) return;
    draining = true;
    serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
  }

  return {
    url: `http://${urlHost}:${address.port}`,
    stopAccepting,
    port: address.port,
    close(graceMs) {
      // A second call (e.g. when the shutdown bound is hit) cuts the remaining grace short.
      if (closing !== undefined) {
        if (graceMs <= 0) endGrace();
        return closing;
      }
      stopAccepting();
      const grace = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        endGrace = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      const closed = serverClosed ?? Promise.resolve();
      closing = (async () => {
        await Promise.race([driver.idle(), grace]);
        endGrace();
        driver.close();
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
