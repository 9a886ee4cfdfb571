// The admin HTTP server every process runs: /metrics (Prometheus text), /healthz (alive), /readyz
// (all readiness checks pass). Separate from any data-plane port so probes and scrapes never queue
// behind user traffic.
//
// With `bearerToken`, every endpoint except the two probes needs `Authorization: Bearer <token>`.
// The probes stay open on purpose: kubelet httpGet probes cannot read a Secret (a token would have to
// sit in plain text in the pod spec), and they reveal only up/ready, which the orchestrator already shows.

import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { AdminServerError } from "./errors.js";
import type { Logger } from "./logger.js";
import { noopLogger } from "./logger.js";
import type { Readiness } from "./readiness.js";

export interface AdminServerOptions {
  host: string;
  /** 0 picks a free port; the bound one is in `address`. */
  port: number;
  registry: Registry;
  readiness: Readiness;
  /** When set, required as `Authorization: Bearer …` for every endpoint but /healthz and /readyz. */
  bearerToken?: string;
  logger?: Logger;
}

/** Endpoints that answer without the bearer token (liveness and readiness probes). */
export const OPEN_ADMIN_PATHS: ReadonlySet<string> = new Set(["/healthz", "/readyz"]);

export interface AdminServer {
  address: { host: string; port: number };
  /** `http://host:port` for logs and tests. */
  url: string;
  /** Stops listening and drops keep-alive connections (Prometheus keeps them open). */
  close(): Promise<void>;
}

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const logger = options.logger ?? noopLogger;
  if (options.bearerToken !== undefined && options.bearerToken.trim() === "") {
    throw new AdminServerError("admin bearer token is empty");
  }
  const authorized = options.bearerToken === undefined ? () => true : bearerCheck(options.bearerToken);
  const server = createServer((req, res) => {
    void handle(req, res, options, authorized, logger);
  });
  await listen(server, options.host, options.port);
  const info = server.address() as AddressInfo;
  const address = { host: info.address, port: info.port };
  const hostForUrl = info.family === "IPv6" ? `[${info.address}]` : info.address;
  let closing: Promise<void> | undefined;
  return {
    address,
    url: `http://${hostForUrl}:${info.port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      reject(
        new AdminServerError(`admin server cannot listen on ${host}:${port}: ${err.message}`, { cause: err }),
      );
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  options: AdminServerOptions,
  authorized: (header: string | undefined) => boolean,
  logger: Logger,
): Promise<void> {
  try {
    const path = new URL(req.url ?? "/", "http://admin").pathname;
    // Checked before routing, so an unauthenticated caller cannot even tell which paths exist.
    if (!OPEN_ADMIN_PATHS.has(path) && !authorized(req.headers.authorization)) {
      res.setHeader("www-authenticate", 'Bearer realm="sluice-admin"');
      return send(
        res,
        401,
        "text/plain; charset=utf-8",
        "unauthorized: send Authorization: Bearer <token>\n",
      );
    }
    if (path !== "/metrics" && path !== "/healthz" && path !== "/readyz") {
      return send(res, 404, "text/plain; charset=utf-8", "not found\n");
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return send(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
    }
    if (path === "/healthz") return send(res, 200, "text/plain; charset=utf-8", "ok\n");
    if (path === "/metrics") {
      const body = await options.registry.metrics();
      return send(res, 200, options.registry.contentType, body);
    }
    const report = await options.readiness.evaluate();
    return send(res, report.ready ? 200 : 503, "application/json", `${JSON.stringify(report)}\n`);
  } catch (err) {
    logger.error({ err, url: req.url }, "admin request failed");
    if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", "internal error\n");
    else res.destroy();
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

/** Constant-time comparison of the presented bearer token (hashes first, so lengths do not leak either). */
function bearerCheck(token: string): (header: string | undefined) => boolean {
  const want = createHash("sha256").update(token).digest();
  return (header) => {
    const m = header === undefined ? null : /^Bearer[ \t]+(\S+)\s*$/i.exec(header);
    if (m === null) return false;
    return timingSafeEqual(
      createHash("sha256")
        .update(m[1] as string)
        .digest(),
      want,
    );
  };
}
