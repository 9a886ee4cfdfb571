// How an L3 rejection or failure reaches the HTTP client (DESIGN §2): status 429 (or the policy's
// 503/529), `Retry-After` in whole seconds rounded up and `retry-after-ms` exactly (the official
// OpenAI SDKs honour it), and an OpenAI-shaped error body with Sluice's numbers beside it.
import type { ServerResponse } from "node:http";
import type { EngineRejection } from "@sluice/core";

/** Reasons beyond the decision's own: the engine is down (503) or failed mid-request (502/504). */
export type SidecarFailureReason =
  | "engine_unavailable"
  | "upstream_error"
  | "upstream_timeout"
  | "shutting_down";

export interface SidecarRejectionBody {
  error: { message: string; type: string; param: null; code: string };
  sluice: {
    level: "engine";
    reason: string;
    class: string;
    observed: number;
    limit: number;
    retry_after_ms: number;
  };
}

const DESCRIPTIONS: Readonly<Record<EngineRejection["reason"], string>> = {
  predicted_ttft: "predicted time to first token (ms)",
  queue_timeout: "time queued (ms)",
  queue_full: "requests queued and in the engine",
};

export function rejectionBody(r: EngineRejection, status: number): SidecarRejectionBody {
  // Rounded in the message only: the body carries the exact figure (a rounded one could equal the limit).
  const shown = Math.round(r.observed * 10) / 10;
  return {
    error: {
      message: `Sluice engine-scheduler rejected the ${r.class} request: ${DESCRIPTIONS[r.reason]} ${shown} over the limit ${r.limit}; retry after ${r.retryAfterMs} ms`,
      type: status === 429 ? "rate_limit_error" : "service_unavailable",
      param: null,
      code: r.reason,
    },
    sluice: {
      level: "engine",
      reason: r.reason,
      class: r.class,
      observed: r.observed,
      limit: r.limit,
      retry_after_ms: r.retryAfterMs,
    },
  };
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: object): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendRejection(res: ServerResponse, r: EngineRejection, status: number): void {
  send(
    res,
    status,
    {
      "retry-after": String(Math.max(1, Math.ceil(r.retryAfterMs / 1000))),
      "retry-after-ms": String(r.retryAfterMs),
    },
    rejectionBody(r, status),
  );
}

/** A failure that is not a policy decision: engine down, upstream broke, sidecar stopping. */
export function sendFailure(
  res: ServerResponse,
  status: number,
  reason: SidecarFailureReason,
  className: string,
  message: string,
  retryAfterMs = 1000,
): void {
  send(
    res,
    status,
    {
      "retry-after": String(Math.max(1, Math.ceil(retryAfterMs / 1000))),
      "retry-after-ms": String(retryAfterMs),
    },
    {
      error: { message, type: "service_unavailable", param: null, code: reason },
      sluice: {
        level: "engine",
        reason,
        class: className,
        observed: 0,
        limit: 0,
        retry_after_ms: retryAfterMs,
      },
    },
  );
}

export function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, {}, { error: { message, type: "invalid_request_error", param: null, code } });
}
