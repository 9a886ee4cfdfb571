// The sidecar's HTTP face: the OpenAI API in front of one engine. Generation requests go through the
// L3 scheduler (queue, early rejection, at most N inside the engine); responses stream back chunk by
// chunk as the engine writes them (never buffered). The timing of those chunks is what the online
// models learn from: engine admission → first chunk is the prefill, chunk → chunk the decode gap.
// Every request ends exactly once in the scheduler whichever of completion, upstream error, client
// disconnect or timeout comes first.
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import type { AddressInfo } from "node:net";
import { InvalidSchedulerInputError } from "@sluice/core";
import { BadRequestError, EngineUnavailableError } from "./errors.js";
import { sendError, sendFailure, sendRejection } from "./rejection-response.js";
import { REQUEST_ID_HEADER, requestFacts } from "./request-facts.js";
import type { SidecarScheduler } from "./scheduler.js";

export interface ProxyLogger {
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface ProxyServerOptions {
  host: string;
  port: number;
  /** Base URL of the engine, no trailing slash. */
  engineUrl: string;
  scheduler: SidecarScheduler;
  /** Class of requests without `x-sluice-class` (read per request: the policy may change). */
  defaultClass: () => string;
  /** Status of policy rejections (429, or 503/529 by policy), read per rejection. */
  rejectStatus: () => number;
  upstreamTimeoutMs: number;
  maxBodyBytes: number;
  /** False while the engine is known to be down: new requests fail fast with 503. */
  engineUp: () => boolean;
  /** An upstream call could not reach the engine. */
  onEngineUnreachable: (error: Error) => void;
  /** A request refused before scheduling (bad body or header, unknown route, malformed HTTP): counted. */
  onHttpError?: (status: number, code: string) => void;
  nowMs: () => number;
  logger: ProxyLogger;
}

export interface ProxyServer {
  readonly url: string;
  readonly port: number;
  /** Generation requests arriving from now on get 503; synchronous so nothing is half-admitted. */
  stopAccepting(): void;
  /** Requests being served (queued or in the engine). */
  active(): number;
  /** Waits up to `graceMs` for active requests, then cuts the rest and closes the server. */
  close(graceMs: number): Promise<void>;
}

// RFC 9110 §7.6.1: one-hop headers are not forwarded; `host` and `content-length` are re-derived.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
]);

function forwardable(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  // Headers named in `connection` are one-hop too. The common values name none beyond the hop-by-hop
  // set, so the token set is only built for anything else (this runs twice per request).
  const connection = headers.connection;
  const named =
    connection === undefined || connection === "keep-alive"
      ? undefined
      : new Set(
          String(connection)
            .split(",")
            .map((t) => t.trim().toLowerCase())
            .filter((t) => t !== ""),
        );
  const out: OutgoingHttpHeaders = {};
  for (const k in headers) {
    const v = headers[k];
    if (v !== undefined && !HOP_BY_HOP.has(k) && (named === undefined || !named.has(k))) out[k] = v;
  }
  return out;
}

const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

/** SSE events completed in `chunk` (each ends with a blank line). */
function sseEventsIn(chunk: Buffer): number {
  let n = 0;
  for (let i = chunk.indexOf("\n\n"); i !== -1; i = chunk.indexOf("\n\n", i + 2)) n++;
  return n;
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(new BadRequestError(`request body over ${maxBytes} bytes`, "request_too_large", 413));
        req.pause();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
    req.on("aborted", () => reject(new Error("client aborted the request body")));
  });
}

export async function startProxyServer(options: ProxyServerOptions): Promise<ProxyServer> {
  const engine = new URL(options.engineUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  // For the one resend after a stale pooled connection (see the engine request's error handler).
  const freshAgent = new Agent({ keepAlive: false });
  const active = new Map<string, () => void>();
  let accepting = true;
  let seq = 0;

  const forwardPlain = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const up = httpRequest(
      {
        hostname: engine.hostname,
        port: engine.port,
        path,
        method: req.method,
        headers: forwardable(req.headers),
        agent,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, forwardable(upRes.headers));
        upRes.pipe(res);
      },
    );
    up.on("error", (error) => {
      if (UNREACHABLE_CODES.has((error as NodeJS.ErrnoException).code ?? ""))
        options.onEngineUnreachable(error);
      sendFailure(
        res,
        502,
        "upstream_error",
        "",
        `engine at ${options.engineUrl} unreachable: ${error.message}`,
      );
    });
    req.pipe(up);
  };

  const schedule = async (req: IncomingMessage, res: ServerResponse, path: string, chat: boolean) => {
    let className = options.defaultClass();
    if (!accepting) {
      sendFailure(res, 503, "shutting_down", className, "engine-scheduler is shutting down");
      return;
    }
    if (!options.engineUp()) {
      sendFailure(res, 503, "engine_unavailable", className, `engine at ${options.engineUrl} is unavailable`);
      return;
    }
    let body: Buffer;
    let facts: ReturnType<typeof requestFacts>;
    try {
      body = await readBody(req, options.maxBodyBytes);
      facts = requestFacts(req.headers, body, chat, className);
    } catch (error) {
      if (error instanceof BadRequestError) {
        // An unread oversized body must not be parsed as the next request on this connection.
        if (error.status === 413) res.shouldKeepAlive = false;
        options.onHttpError?.(error.status, error.code);
        sendError(res, error.status, error.code, error.message);
      } else {
        options.onHttpError?.(400, "body_read_failed");
        res.destroy();
      }
      return;
    }
    className = facts.className;
    const arrivedAtMs = options.nowMs();
    const given = req.headers[REQUEST_ID_HEADER];
    const requestId = (
      typeof given === "string" && given !== "" ? given : `es-${process.pid}-${++seq}`
    ).slice(0, 128);
    // The decision needs ids unique among live requests; a reused client id gets a suffix.
    const id = active.has(requestId) ? `${requestId}#${++seq}` : requestId;

    let ended = false;
    let upstream: ReturnType<typeof httpRequest> | undefined;
    let timeout: NodeJS.Timeout | undefined;
    let admittedAtMs = 0;
    const finish = () => {
      ended = true;
      active.delete(id);
      if (timeout !== undefined) clearTimeout(timeout);
    };
    active.set(id, () => {
      // Cut at shutdown: counts as a failure of this request.
      if (ended) return;
      options.scheduler.finish(id, "failed") || options.scheduler.cancel(id);
      finish();
      upstream?.destroy();
      res.destroy();
    });

    res.on("close", () => {
      if (ended) return;
      // The client went away while queued or in the engine: free everything, abort the engine's work.
      finish();
      options.scheduler.cancel(id);
      upstream?.destroy();
    });

    let staleRetried = false;
    const forward = (freshConnection = false) => {
      if (!freshConnection) admittedAtMs = options.nowMs();
      if (timeout !== undefined) clearTimeout(timeout);
      let responded = false;
      const headers = forwardable(req.headers);
      headers["content-length"] = body.length;
      headers[REQUEST_ID_HEADER] = requestId;
      const up = httpRequest({
        hostname: engine.hostname,
        port: engine.port,
        path,
        method: "POST",
        headers,
        agent: freshConnection ? freshAgent : agent,
      });
      upstream = up;
      timeout = setTimeout(() => {
        if (ended) return;
        options.scheduler.finish(id, "failed");
        finish();
        up.destroy();
        if (res.headersSent) res.destroy();
        else
          sendFailure(
            res,
            504,
            "upstream_timeout",
            className,
            `engine did not finish within ${options.upstreamTimeoutMs} ms`,
          );
      }, options.upstreamTimeoutMs);
      up.on("response", (upRes) => {
        responded = true;
        if (ended) {
          upRes.resume();
          return;
        }
        const status = upRes.statusCode ?? 502;
        const outHeaders = forwardable(upRes.headers);
        // The body is passed on byte for byte, so the engine's length holds; keeping it (rather than
        // re-chunking) saves the client a terminating write per non-streaming response.
        const length = upRes.headers["content-length"];
        if (length !== undefined && upRes.headers["transfer-encoding"] === undefined)
          outHeaders["content-length"] = length;
        outHeaders["x-sluice-queued-ms"] = String(Math.round(admittedAtMs - arrivedAtMs));
        res.writeHead(status, outHeaders);
        const timed = status === 200 && facts.stream;
        let lastChunkMs: number | undefined;
        upRes.on("data", (chunk: Buffer) => {
          if (ended) return;
          const now = timed ? options.nowMs() : 0;
          // The client's bytes go out first; the bookkeeping below (and the admissions it may trigger)
          // runs after the write, off the path of this response.
          if (!res.write(chunk)) {
            upRes.pause();
            res.once("drain", () => upRes.resume());
          }
          if (timed) {
            if (lastChunkMs === undefined) options.scheduler.firstToken(id, now);
            else {
              // Events that reached us in one read were produced over the whole gap: split it evenly.
              const events = Math.max(1, sseEventsIn(chunk));
              for (let i = 0; i < events; i++) options.scheduler.decodeGap((now - lastChunkMs) / events);
            }
            lastChunkMs = now;
          }
        });
        upRes.on("end", () => {
          if (ended) return;
          finish();
          res.end();
          // After the response is complete: freeing the slot may admit the next request (a pump).
          options.scheduler.finish(id, status < 400 ? "completed" : "failed");
        });
        upRes.on("error", () => {
          if (ended) return;
          options.scheduler.finish(id, "failed");
          finish();
          res.destroy();
        });
      });
      up.on("error", (error) => {
        if (ended) return;
        if (
          !responded &&
          !staleRetried &&
          up.reusedSocket &&
          (error as NodeJS.ErrnoException).code === "ECONNRESET"
        ) {
          // A kept-alive connection the engine closed while idle, taken from the pool as it closed (on a
          // busy host the pool's own expiry fires late): the engine never saw the request, so it is sent
          // again, once, on a new connection. Not an engine failure.
          staleRetried = true;
          options.logger.debug({ requestId }, "pooled engine connection was closed; resending on a new one");
          forward(true);
          return;
        }
        options.scheduler.finish(id, "failed");
        finish();
        const unreachable = UNREACHABLE_CODES.has((error as NodeJS.ErrnoException).code ?? "");
        if (unreachable) options.onEngineUnreachable(error);
        options.logger.warn({ err: error, requestId }, "engine request failed");
        if (res.headersSent) res.destroy();
        else
          sendFailure(
            res,
            unreachable ? 503 : 502,
            unreachable ? "engine_unavailable" : "upstream_error",
            className,
            `engine at ${options.engineUrl} failed: ${error.message}`,
          );
      });
      up.end(body);
    };

    try {
      const result = options.scheduler.submit(
        {
          id,
          className: facts.className,
          promptTokens: facts.promptTokens,
          cachedTokens: facts.cachedTokens,
          upstreamElapsedMs: facts.upstreamElapsedMs,
          ...(facts.maxTokens !== undefined ? { maxTokens: facts.maxTokens } : {}),
        },
        {
          admit: () => {
            if (!ended) forward();
          },
          reject: (rejection) => {
            if (ended) return;
            finish();
            sendRejection(res, rejection, options.rejectStatus());
          },
          fail: (error) => {
            if (ended) return;
            finish();
            sendFailure(res, 503, "engine_unavailable", className, error.message);
          },
        },
      );
      if (!result.admit) {
        finish();
        sendRejection(res, result.rejection, options.rejectStatus());
      }
    } catch (error) {
      finish();
      if (error instanceof InvalidSchedulerInputError) {
        options.onHttpError?.(400, "invalid_value");
        sendError(res, 400, "invalid_value", error.message);
      } else {
        options.onHttpError?.(500, "internal_error");
        options.logger.warn({ err: error, requestId }, "cannot schedule request");
        sendError(res, 500, "internal_error", "engine-scheduler could not schedule the request");
      }
    }
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method === "POST" && (path === "/v1/completions" || path === "/v1/chat/completions")) {
      void schedule(req, res, req.url ?? path, path === "/v1/chat/completions");
    } else if (req.method === "GET" && path === "/v1/models") {
      forwardPlain(req, res, req.url ?? path);
    } else if (req.method === "GET" && path === "/health") {
      const ok = accepting && options.engineUp();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
      res.end(ok ? "ok\n" : "engine unavailable or shutting down\n");
    } else {
      options.onHttpError?.(404, "not_found");
      sendError(res, 404, "not_found", `no route ${req.method} ${path}`);
    }
  });
  // Requests Node's parser refuses (bad framing, oversized headers) and request timeouts: counted, and
  // answered in the OpenAI error shape when no response has started (as Node's default answer would be).
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    if (error.code === "ECONNRESET") {
      socket.destroy();
      return;
    }
    const [status, code] =
      error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "request_timeout"]
        : error.code === "HPE_HEADER_OVERFLOW"
          ? [431, "headers_too_large"]
          : [400, "malformed_http"];
    const inHandler = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!inHandler) options.onHttpError?.(status, code);
    if (socket.writable && !inHandler) {
      const body = JSON.stringify({
        error: {
          message: `malformed HTTP request (${error.code ?? error.message})`,
          type: "invalid_request_error",
          param: null,
          code,
        },
      });
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;

  return {
    url: `http://${host}:${port}`,
    port,
    stopAccepting() {
      accepting = false;
    },
    active: () => active.size,
    async close(graceMs) {
      accepting = false;
      options.scheduler.failQueued(new EngineUnavailableError("engine-scheduler is shutting down"));
      const deadline = Date.now() + graceMs;
      while (active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const cut of [...active.values()]) cut();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      agent.destroy();
      freshAgent.destroy();
    },
  };
}
