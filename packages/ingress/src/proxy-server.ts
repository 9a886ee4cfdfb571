// The OpenAI-compatible HTTP front of the ingress: bounded body → cheap facts → L1 decision → engine
// choice → unbuffered forwarding. Every admitted request owns one slot, released through `finish`,
// which every terminal path (upstream end, upstream error, client disconnect, timeout) calls; the
// slot's own guard makes the second and later calls no-ops.

import { randomUUID } from "node:crypto";
import http, { type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { AdmissionController } from "./admission-controller.js";
import { readBoundedBody } from "./bounded-body.js";
import { CLASS_HEADER, classify } from "./classify.js";
import type { EventSink } from "./decision-events.js";
import type { EngineDirectory } from "./engine-registry.js";
import { enginesOf, liveModels } from "./engine-registry.js";
import type { EngineLease, EngineSelector, Selection } from "./engine-selector.js";
import { HttpError } from "./errors.js";
import { endToEndHeaders } from "./hop-by-hop.js";
import type { TerminalOutcome } from "./inflight-ledger.js";
import type { IngressMetrics } from "./ingress-metrics.js";
import type { PolicyInForce } from "./ingress-policies.js";
import {
  rejectionBody,
  rejectionHeaders,
  retryAfterHeaders,
  routerRejectionBody,
} from "./rejection-response.js";
import { type ApiKind, parseRequestFacts, type RequestFacts } from "./request-facts.js";
import { routePromptOf } from "./route-prompt.js";

export const EVENTS_HEADER = "x-sluice-events";
export const REQUEST_ID_HEADER = "x-request-id";
/** Time the request spent in Sluice before reaching the engine (admission, routing, holding). */
export const ELAPSED_HEADER = "x-sluice-elapsed-ms";

export interface ProxyLogger {
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export interface ProxyServerOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  /** Time a client gets to send one whole request (headers and body); slower senders get 408. */
  requestTimeoutMs: number;
  /** Upstream silence (no response bytes) longer than this fails the request (504, or a cut stream). */
  upstreamTimeoutMs: number;
  /** Output budget charged to requests that set no max_tokens. */
  defaultMaxTokens: number;
  trustClassHeader: boolean;
  admission: AdmissionController;
  selector: EngineSelector;
  engines: EngineDirectory;
  policyFor(model: string): PolicyInForce;
  metrics: IngressMetrics;
  events: EventSink;
  logger: ProxyLogger;
}

export interface ProxyServer {
  readonly url: string;
  readonly port: number;
  /** Requests being served right now (admitted or not yet decided). */
  activeRequests(): number;
  /** Stops accepting connections; open requests continue. */
  stopAccepting(): Promise<void>;
  /** Destroys every connection (after the drain bound). */
  destroyAll(): void;
}

const PATHS: Readonly<Record<string, ApiKind>> = {
  "/v1/completions": "completions",
  "/v1/chat/completions": "chat",
};

/** Engine connection failures that allow one retry on another engine (nothing was sent to a model). */
const CONNECT_ERRORS: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENOTFOUND",
]);

export async function startProxyServer(options: ProxyServerOptions): Promise<ProxyServer> {
  const agent = new http.Agent({
    keepAlive: true,
    noDelay: true,
    maxSockets: Number.POSITIVE_INFINITY,
    maxFreeSockets: 256,
  });
  // For the one resend after a stale pooled connection (see the upstream error handler).
  const freshAgent = new http.Agent({ keepAlive: false, noDelay: true });
  const seenModels = new Set<string>();
  let active = 0;
  // Engine URLs parsed once, not per request (`new URL` plus Node's URL-to-options copy is a measurable
  // share of a proxied request). Only the origin is used: the API path replaces any path in the URL.
  const origins = new Map<string, UpstreamOrigin>();
  const upstreamOrigin = (engineUrl: string): UpstreamOrigin => {
    let origin = origins.get(engineUrl);
    if (origin === undefined) {
      const u = new URL(engineUrl);
      origin = { protocol: u.protocol, hostname: u.hostname.replace(/^\[(.*)\]$/, "$1"), port: u.port };
      if (origins.size >= MAX_CACHED_ORIGINS) origins.clear();
      origins.set(engineUrl, origin);
    }
    return origin;
  };

  const sendError = (res: ServerResponse, error: HttpError) => {
    options.metrics.httpError(error.status, error.code);
    if (res.headersSent) {
      // Status events already opened an SSE stream: report the failure in it, then end it.
      if (String(res.getHeader("content-type") ?? "").startsWith("text/event-stream") && !res.writableEnded) {
        res.end(`event: error\ndata: ${JSON.stringify(error.toJSON())}\n\n`);
      } else {
        res.destroy();
      }
      return;
    }
    const body = JSON.stringify(error.toJSON());
    res.writeHead(error.status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = (req.url ?? "/").split("?")[0] ?? "/";
    if (url === "/v1/models") {
      if (req.method !== "GET") throw methodNotAllowed(req.method);
      const now = Math.floor(Date.now() / 1000);
      const data = liveModels(options.engines).map((id) => ({
        id,
        object: "model",
        created: now,
        owned_by: "sluice",
      }));
      const body = JSON.stringify({ object: "list", data });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const kind = PATHS[url];
    if (kind === undefined) {
      throw new HttpError(`no route for ${req.method} ${url}`, {
        status: 404,
        type: "not_found_error",
        code: "unknown_url",
      });
    }
    if (req.method !== "POST") throw methodNotAllowed(req.method);
    const arrivedMs = performance.now();
    const body = await readBoundedBody(req, options.maxBodyBytes);
    const { facts, json } = parseRequestFacts(kind, body.toString("utf8"));
    await proxyRequest(req, res, url, body, facts, json, arrivedMs);
  };

  const proxyRequest = async (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    body: Buffer,
    facts: RequestFacts,
    json: Record<string, unknown>,
    arrivedMs: number,
  ) => {
    const requestId = headerRequestId(req) ?? randomUUID();
    const engines = enginesOf(options.engines, facts.model);
    for (const e of options.engines.engines()) seenModels.add(e.model);
    if (engines.length === 0) {
      const anyEngine = [...options.engines.engines()].length > 0;
      if (anyEngine && !seenModels.has(facts.model)) {
        throw new HttpError(
          `The model \`${facts.model}\` does not exist or is not served by any live engine`,
          {
            status: 404,
            type: "not_found_error",
            code: "model_not_found",
            param: "model",
          },
        );
      }
      throw new HttpError(`no live engine serves \`${facts.model}\``, {
        status: 503,
        type: "service_unavailable",
        code: "no_engine",
      });
    }

    const { policy, revision } = options.policyFor(facts.model);
    const { requestClass, tenant } = classify(req.headers, policy, options.trustClassHeader);
    const result = options.admission.check({
      requestId,
      model: facts.model,
      requestClass,
      promptTokens: facts.promptTokens,
      maxTokens: facts.maxTokens ?? options.defaultMaxTokens,
      tenant, // issue 4 per-tenant limits (tenant engineer's one-line edit)
    });
    options.metrics.decisionSeconds(result.decisionNs / 1e9);
    const base = { requestId, requestClass, tenant, model: facts.model };
    if (!result.admitted) {
      const { rejection } = result;
      options.metrics.rejected(facts.model, requestClass, rejection.reason);
      options.events.emit({
        ...base,
        outcome: "rejected",
        reason: rejection.reason,
        observed: rejection.observed,
        limit: rejection.limit,
        retryAfterMs: rejection.retryAfterMs,
        policyRevision: rejection.policyRevision,
      });
      const payload = JSON.stringify(rejectionBody(rejection));
      res.writeHead(rejection.status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(payload),
        [REQUEST_ID_HEADER]: requestId,
        ...rejectionHeaders(rejection),
      });
      res.end(payload);
      return;
    }
    const { slot } = result;
    options.metrics.admitted(facts.model, requestClass);
    options.events.emit({ ...base, outcome: "admitted", policyRevision: revision });

    let lease: EngineLease | undefined;
    let upstreamReq: http.ClientRequest | undefined;
    const finish = (outcome: TerminalOutcome) => {
      lease?.done();
      if (!slot.release(outcome)) return;
      options.metrics.terminal(outcome);
      options.events.emit({ ...base, outcome, ...(lease ? { workerId: lease.engine.workerId } : {}) });
    };
    // Client went away (mid-body, before the answer or mid-stream): cancel upstream, release.
    const clientGone = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) {
        clientGone.abort();
        upstreamReq?.destroy();
        finish("cancelled");
      }
    });

    const statusEvents = facts.stream && req.headers[EVENTS_HEADER] === "1";
    if (statusEvents) {
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        [REQUEST_ID_HEADER]: requestId,
      });
      writeStatusEvent(res, { status: "admitted", request_id: requestId, class: requestClass });
    }

    const tried = new Set<string>();
    let staleRetried = false;
    const prompt = routePromptOf(facts.kind, json);
    const attempt = (previousError?: NodeJS.ErrnoException) => {
      // A retry is a new placement: its own id, so it never collides with the first one's release.
      const routeId = tried.size === 0 ? requestId : `${requestId}/retry-${tried.size}`;
      options.selector
        .select({
          requestId: routeId,
          model: facts.model,
          requestClass,
          maxTokens: facts.maxTokens ?? options.defaultMaxTokens,
          prompt,
          exclude: tried,
          signal: clientGone.signal,
        })
        .then(
          (selection) => forward(selection, previousError),
          (error: unknown) => {
            options.logger.warn({ err: error, requestId }, "engine selection failed");
            finish("failed");
            sendError(
              res,
              new HttpError(
                "engine selection failed",
                { status: 500, type: "server_error", code: "internal_error" },
                { cause: error },
              ),
            );
          },
        );
    };
    const forward = (
      selection: Selection,
      previousError?: NodeJS.ErrnoException,
      freshConnection = false,
    ) => {
      if (slot.released) {
        // The client left while the engine was being chosen.
        if (selection.kind === "engine") selection.lease.done();
        return;
      }
      if (selection.kind === "rejected") {
        const { rejection } = selection;
        finish("failed");
        options.metrics.httpError(429, rejection.reason);
        const payload = JSON.stringify(routerRejectionBody(rejection));
        if (res.headersSent) {
          if (!res.writableEnded) res.end(`event: error\ndata: ${payload}\n\n`);
          return;
        }
        res.writeHead(429, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          [REQUEST_ID_HEADER]: requestId,
          ...retryAfterHeaders(rejection.retryAfterMs),
        });
        res.end(payload);
        return;
      }
      lease = selection.kind === "engine" ? selection.lease : undefined;
      if (!lease && previousError) {
        finish("failed");
        sendError(res, upstreamFailed(previousError));
        return;
      }
      if (!lease) {
        finish("failed");
        sendError(
          res,
          new HttpError(`no live engine serves \`${facts.model}\``, {
            status: 503,
            type: "service_unavailable",
            code: "no_engine",
          }),
        );
        return;
      }
      const engine = lease.engine;
      tried.add(engine.workerId);
      if (statusEvents && !freshConnection)
        writeStatusEvent(res, { status: "routed", worker_id: engine.workerId });
      const headers = endToEndHeaders(req.headers, SKIP_REQUEST_HEADERS);
      headers["content-length"] = body.length;
      headers[REQUEST_ID_HEADER] = requestId;
      headers[ELAPSED_HEADER] = String(Math.max(0, Math.round(performance.now() - arrivedMs)));
      for (const [name, value] of Object.entries(lease.headers ?? {})) headers[name] = value;
      // Security (issue 9 §4): L3 trusts this header, so it carries the class L1 resolved, never the client's copy.
      headers[CLASS_HEADER] = requestClass;
      const placed = lease;
      const upstream = http.request({
        ...upstreamOrigin(engine.url),
        path,
        method: "POST",
        headers,
        agent: freshConnection ? freshAgent : agent,
      });
      upstreamReq = upstream;
      let responded = false;
      upstream.setTimeout(options.upstreamTimeoutMs, () => {
        upstream.destroy(new Error(`upstream silent for ${options.upstreamTimeoutMs} ms`));
        finish("failed");
        sendError(
          res,
          new HttpError(`engine ${engine.workerId} did not answer within ${options.upstreamTimeoutMs} ms`, {
            status: 504,
            type: "server_error",
            code: "upstream_timeout",
          }),
        );
      });
      upstream.on("error", (error: NodeJS.ErrnoException) => {
        if (slot.released) return; // cancelled or timed out: the error is our own destroy
        if (!responded && !staleRetried && upstream.reusedSocket && error.code === "ECONNRESET") {
          // A kept-alive connection the engine's side closed while idle, taken from the pool as it
          // closed (on a busy host the pool's own expiry fires late): the request never reached the
          // engine, so it is sent again, once, on a new connection to the same engine.
          staleRetried = true;
          options.metrics.staleConnectionRetry();
          forward(selection, previousError, true);
          return;
        }
        if (!responded && error.code && CONNECT_ERRORS.has(error.code) && tried.size < 2) {
          options.logger.warn(
            { err: error, worker: engine.workerId },
            "engine unreachable; trying another once",
          );
          lease?.done();
          attempt(error);
          return;
        }
        options.logger.warn({ err: error, worker: engine.workerId, requestId }, "upstream request failed");
        finish("failed");
        sendError(res, upstreamFailed(error));
      });
      upstream.on("response", (upstreamRes) => {
        responded = true;
        // Attached in the same tick as the pipe below, so no bytes are missed by either.
        upstreamRes.once("data", () => placed.firstToken?.());
        const status = upstreamRes.statusCode ?? 502;
        upstreamRes.on("aborted", () => {
          if (slot.released) return;
          options.logger.warn({ worker: engine.workerId, requestId }, "upstream response cut mid-stream");
          finish("failed");
          res.destroy();
        });
        upstreamRes.on("error", () => {
          if (slot.released) return;
          finish("failed");
          res.destroy();
        });
        upstreamRes.on("end", () => {
          // The engine's own 5xx is an upstream failure; its 4xx (e.g. context too long) is a normal answer.
          res.on("finish", () => finish(status >= 500 ? "failed" : "completed"));
        });
        if (statusEvents) {
          if (status !== 200) {
            // Headers went out already: report the engine's error as an SSE error event.
            const chunks: Buffer[] = [];
            upstreamRes.on("data", (c: Buffer) => chunks.push(c));
            upstreamRes.on("end", () => {
              res.end(`event: error\ndata: ${Buffer.concat(chunks).toString("utf8").replace(/\n/g, "")}\n\n`);
            });
            return;
          }
        } else {
          const responseHeaders = endToEndHeaders(upstreamRes.headers);
          responseHeaders[REQUEST_ID_HEADER] = requestId;
          res.writeHead(status, responseHeaders);
          // Streams: send the headers now so the client sees the response start before the first token;
          // other answers go out with their body in one write.
          if (String(upstreamRes.headers["content-type"] ?? "").startsWith("text/event-stream"))
            res.flushHeaders();
        }
        upstreamRes.pipe(res);
      });
      upstream.end(body);
    };
    attempt();
  };

  const server: Server = http.createServer(serverOptions(options.requestTimeoutMs), (req, res) => {
    active++;
    res.on("close", () => active--);
    handle(req, res).catch((error: unknown) => {
      if (error instanceof HttpError) {
        // Thrown before admission (bad body, unknown model, no engine): a rejection with its edge code.
        if (error.status >= 500) options.logger.warn({ err: error }, "request failed");
        options.events.emit({
          requestId: headerRequestId(req) ?? randomUUID(),
          requestClass: "",
          tenant: "",
          model: "",
          outcome: "rejected",
          reason: error.code,
        });
        sendError(res, error);
        return;
      }
      options.logger.warn({ err: error }, "unexpected error while serving a request");
      sendError(
        res,
        new HttpError(
          "internal error",
          { status: 500, type: "server_error", code: "internal_error" },
          { cause: error },
        ),
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  // Malformed requests Node's parser refuses (bad or duplicated content-length, oversized headers) and
  // request timeouts: the same OpenAI-shaped error and counter as every other refusal.
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    const refusal = CLIENT_ERRORS[error.code ?? ""] ?? CLIENT_ERRORS.default;
    // A reset before a request was complete has nobody to answer; Node ignores it too.
    if (error.code === "ECONNRESET" || refusal === undefined) {
      socket.destroy();
      return;
    }
    // A request already in the handler (its body timed out) is answered and counted there, as a body
    // that could not be read; here only requests Node never handed over.
    const inHandler = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!inHandler) options.metrics.httpError(refusal.status, refusal.code);
    if (socket.writable && !inHandler) {
      const body = JSON.stringify(
        new HttpError(`${refusal.message} (${error.code ?? error.message})`, {
          status: refusal.status,
          type: "invalid_request_error",
          code: refusal.code,
        }).toJSON(),
      );
      // Written then destroyed at once, as Node's default does: a stalled sender gets no more time.
      socket.write(
        `HTTP/1.1 ${refusal.status} ${http.STATUS_CODES[refusal.status]}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
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
  server.on("error", (error) => options.logger.warn({ err: error }, "http server error"));
  const port = (server.address() as AddressInfo).port;
  const host = options.host === "0.0.0.0" || options.host === "::" ? "127.0.0.1" : options.host;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    activeRequests: () => active,
    async stopAccepting() {
      // Stop listening now; open connections (admitted streams) are left to the drain phase.
      server.close();
      server.closeIdleConnections();
    },
    destroyAll() {
      server.closeAllConnections();
      agent.destroy();
      freshAgent.destroy();
    },
  };
}

interface UpstreamOrigin {
  readonly protocol: string;
  readonly hostname: string;
  readonly port: string;
}
/** Engines come and go; the cache of their parsed URLs is dropped whole past this size. */
const MAX_CACHED_ORIGINS = 4096;

// Recomputed or replaced for the upstream hop.
// Sluice's own hints are set by the ingress alone: a client's copy is dropped, never trusted.
const SKIP_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  "host",
  "content-length",
  EVENTS_HEADER,
  ELAPSED_HEADER,
  "x-sluice-cached-tokens",
]);

/** Above the keep-alive timeout, as load balancers in front expect; capped by the request timeout. */
const HEADERS_TIMEOUT_MS = 66_000;

function serverOptions(requestTimeoutMs: number): http.ServerOptions {
  return {
    noDelay: true,
    requestTimeout: requestTimeoutMs,
    headersTimeout: Math.min(HEADERS_TIMEOUT_MS, requestTimeoutMs),
    // Node checks the two timeouts on this period (30 s by default): a fraction of the bound keeps it tight.
    connectionsCheckingInterval: Math.max(50, Math.min(30_000, requestTimeoutMs / 4)),
  };
}

const CLIENT_ERRORS: Readonly<Record<string, { status: number; code: string; message: string }>> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: "request_timeout",
    message: "the request was not received in time",
  },
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: "headers_too_large",
    message: "request headers are too large",
  },
  default: { status: 400, code: "malformed_http", message: "malformed HTTP request" },
};

function methodNotAllowed(method: string | undefined): HttpError {
  return new HttpError(`method ${method ?? "?"} is not allowed here`, {
    status: 405,
    type: "invalid_request_error",
    code: "method_not_allowed",
  });
}

function writeStatusEvent(res: ServerResponse, data: object): void {
  res.write(`event: sluice\ndata: ${JSON.stringify(data)}\n\n`);
}

function upstreamFailed(error: Error): HttpError {
  return new HttpError(
    `the engine failed: ${error.message}`,
    { status: 502, type: "server_error", code: "upstream_error" },
    { cause: error },
  );
}

/** The client's `x-request-id`, if usable as ours. */
function headerRequestId(req: IncomingMessage): string | undefined {
  const id = req.headers[REQUEST_ID_HEADER];
  return typeof id === "string" && id.length > 0 && id.length <= 128 ? id : undefined;
}
