// How an L1 rejection reaches an HTTP client (DESIGN §2): status 429 (or the policy's 503/529),
// `Retry-After` in whole seconds rounded up and `retry-after-ms` exactly — the official OpenAI SDKs
// honour `retry-after-ms` — and an OpenAI-shaped body with Sluice's numbers beside it.

import type { Rejection } from "./admission-controller.js";
import type { RouterRejection } from "./engine-selector.js";

export interface RejectionBody {
  error: { message: string; type: "rate_limit_error" | "service_unavailable"; param: null; code: string };
  sluice: {
    level: "ingress" | "router";
    reason: string;
    class: string;
    observed: number;
    limit: number;
    retry_after_ms: number;
  };
}

const DESCRIPTIONS: Readonly<Record<Rejection["reason"], string>> = {
  tenant_inflight: "the tenant's in-flight requests would be",
  inflight_limit: "in-flight requests would be",
  kv_overload: "in-flight KV cache load (blocks) would be",
  predicted_ttft: "predicted time to first token (ms) is",
  no_capacity: "no live engine capacity;",
  fail_closed: "shared admission state is unavailable and the policy fails closed;",
};

export function rejectionBody(rejection: Rejection): RejectionBody {
  const what = DESCRIPTIONS[rejection.reason];
  const message =
    rejection.reason === "fail_closed" || rejection.reason === "no_capacity"
      ? `Sluice ingress rejected the ${rejection.requestClass} request: ${what} retry after ${rejection.retryAfterMs} ms`
      : `Sluice ingress rejected the ${rejection.requestClass} request: ${what} ${rejection.observed}, over the limit ${rejection.limit} for this ${rejection.reason === "tenant_inflight" ? "tenant" : "class"}; retry after ${rejection.retryAfterMs} ms`;
  return {
    error: {
      message,
      type: rejection.status === 429 ? "rate_limit_error" : "service_unavailable",
      param: null,
      code: rejection.reason,
    },
    sluice: {
      level: "ingress",
      reason: rejection.reason,
      class: rejection.requestClass,
      observed: rejection.observed,
      limit: rejection.limit,
      retry_after_ms: rejection.retryAfterMs,
    },
  };
}

export function rejectionHeaders(rejection: Rejection): Record<string, string> {
  return retryAfterHeaders(rejection.retryAfterMs);
}

/** A rejection by the router (L2) after L1 admitted the request: the same 429 shape, level `router`. */
export function routerRejectionBody(rejection: RouterRejection): RejectionBody {
  const detail = rejection.message === "" ? rejection.reason : rejection.message;
  return {
    error: {
      message: `Sluice router rejected the ${rejection.requestClass} request: ${detail}; retry after ${rejection.retryAfterMs} ms`,
      type: "rate_limit_error",
      param: null,
      code: rejection.reason,
    },
    sluice: {
      level: "router",
      reason: rejection.reason,
      class: rejection.requestClass,
      observed: rejection.observed,
      limit: rejection.limit,
      retry_after_ms: rejection.retryAfterMs,
    },
  };
}

export function retryAfterHeaders(retryAfterMs: number): Record<string, string> {
  return {
    "retry-after": String(Math.max(1, Math.ceil(retryAfterMs / 1000))),
    "retry-after-ms": String(retryAfterMs),
  };
}
