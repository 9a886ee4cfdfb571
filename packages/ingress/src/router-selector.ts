// Engine choice by `sluice router` (sluice.v1.Router/Route): the router places the request on the
// engine that caches most of its prompt, holds it briefly, or rejects it (level `router`). Routing must
// never take the ingress down with it: no registered router, or none answering within the route
// timeout, falls back to the local least-in-flight choice — logged and counted. The router's load
// picture is kept honest by MarkPrefillDone on the first token and exactly one Release per placement,
// both fire-and-forget under their own deadline.

import { grpcServiceDefinition, Reason, type RouteResponse, Router } from "@sluice/proto";
import { createGrpcClient } from "@sluice/runtime";
import type { EngineDirectory, EngineEntry } from "./engine-registry.js";
import type {
  EngineLease,
  EngineSelector,
  LocalEngineSelector,
  Selection,
  SelectQuery,
} from "./engine-selector.js";
import { DEFAULT_ROUTE_TIMEOUT_MS, DEFAULT_ROUTER_NOTIFY_TIMEOUT_MS } from "./options.js";

/** Fallback warnings are logged at most once per reason per this long (the rest are counted). */
const FALLBACK_LOG_INTERVAL_MS = 10_000;
export const CACHED_TOKENS_HEADER = "x-sluice-cached-tokens";

function connectRouter(target: string, defaultDeadlineMs: number) {
  return createGrpcClient(grpcServiceDefinition(Router), target, { defaultDeadlineMs });
}
export type RouterClient = Pick<ReturnType<typeof connectRouter>, "unary" | "close">;

export type RouteFallbackReason = "no_router" | "router_error" | "unroutable_prompt";

export interface RouterSelectorLogger {
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export interface RouterSelectorOptions {
  /** gRPC targets (`host:port`) of the live routers. */
  routers(): readonly string[];
  fallback: LocalEngineSelector;
  engines: EngineDirectory;
  /** Deadline of one Route call (the router's hold queue answers within it or rejects). */
  routeTimeoutMs?: number;
  /** Deadline of MarkPrefillDone and Release. */
  notifyTimeoutMs?: number;
  onFallback(reason: RouteFallbackReason): void;
  onNotifyFailed(method: "markPrefillDone" | "release"): void;
  logger: RouterSelectorLogger;
  /** Test seam; defaults to a real gRPC client. */
  connect?(target: string): RouterClient;
}

export interface RouterSelector extends EngineSelector {
  /** Closes every router client. */
  close(): void;
}

export function routerSelector(options: RouterSelectorOptions): RouterSelector {
  const routeTimeoutMs = options.routeTimeoutMs ?? DEFAULT_ROUTE_TIMEOUT_MS;
  const notifyTimeoutMs = options.notifyTimeoutMs ?? DEFAULT_ROUTER_NOTIFY_TIMEOUT_MS;
  const connect = options.connect ?? ((target: string) => connectRouter(target, routeTimeoutMs));
  const clients = new Map<string, RouterClient>();
  let turn = 0;

  /** A client of one live router, rotating between replicas; closes clients of routers gone. */
  const pickRouter = (): RouterClient | undefined => {
    const targets = options.routers();
    const live = new Set(targets);
    for (const [target, client] of clients) {
      if (!live.has(target)) {
        client.close();
        clients.delete(target);
      }
    }
    if (targets.length === 0) return undefined;
    turn = (turn + 1) % targets.length;
    const target = targets[turn] as string;
    let client = clients.get(target);
    if (!client) {
      client = connect(target);
      clients.set(target, client);
    }
    return client;
  };

  // One warning per reason per FALLBACK_LOG_INTERVAL_MS, carrying how many were folded into it:
  // with no router every request falls back, and a log line per request costs the proxy more CPU
  // than its decision (the counter `sluice_ingress_route_fallbacks_total` has every one).
  const lastLoggedMs = new Map<RouteFallbackReason, number>();
  const suppressed = new Map<RouteFallbackReason, number>();
  const fallback = (query: SelectQuery, reason: RouteFallbackReason, error?: unknown): Selection => {
    options.onFallback(reason);
    if (reason !== "unroutable_prompt") {
      const now = Date.now();
      const last = lastLoggedMs.get(reason);
      if (last === undefined || now - last >= FALLBACK_LOG_INTERVAL_MS) {
        options.logger.warn(
          { reason, err: error, requestId: query.requestId, suppressed: suppressed.get(reason) ?? 0 },
          "router unavailable; choosing the engine locally",
        );
        lastLoggedMs.set(reason, now);
        suppressed.set(reason, 0);
      } else {
        suppressed.set(reason, (suppressed.get(reason) ?? 0) + 1);
      }
    }
    const lease = options.fallback.pick(query.model, query.exclude);
    return lease ? { kind: "engine", lease } : { kind: "none" };
  };

  const notify = (client: RouterClient, method: "markPrefillDone" | "release", requestId: string) => {
    client.unary(method, { requestId }, { deadlineMs: notifyTimeoutMs }).then(
      () => {},
      (error: unknown) => {
        options.onNotifyFailed(method);
        options.logger.debug({ err: error, requestId, method }, "router notification failed");
      },
    );
  };

  return {
    async select(query) {
      if (query.prompt === undefined) return fallback(query, "unroutable_prompt");
      const client = pickRouter();
      if (!client) return fallback(query, "no_router");
      let response: RouteResponse;
      try {
        response = await client.unary(
          "route",
          {
            requestId: query.requestId,
            model: query.model,
            requestClass: query.requestClass,
            prompt:
              "tokenIds" in query.prompt
                ? { case: "tokenIds", value: { ids: query.prompt.tokenIds } }
                : { case: "text", value: query.prompt.text },
            maxTokens: query.maxTokens,
            excludeWorkerIds: [...query.exclude],
          },
          { deadlineMs: routeTimeoutMs, ...(query.signal ? { signal: query.signal } : {}) },
        );
      } catch (error) {
        if (query.signal?.aborted) return { kind: "none" };
        return fallback(query, "router_error", error);
      }
      const result = response.result;
      if (result.case === "rejected") {
        const r = result.value;
        return {
          kind: "rejected",
          rejection: {
            reason: reasonName(r.reason),
            requestClass: query.requestClass,
            observed: r.observedValue,
            limit: r.limitValue,
            retryAfterMs: r.retryAfterMs,
            message: r.message,
          },
        };
      }
      if (result.case !== "routed") return fallback(query, "router_error", new Error("empty RouteResponse"));
      const routed = result.value;
      const known = findEngine(options.engines, routed.workerId);
      if (!/^https?:\/\//.test(routed.address) && !known) {
        // Not an HTTP address we can forward to (e.g. a Dynamo `dyn://` one): let go of the placement.
        notify(client, "release", query.requestId);
        return fallback(query, "router_error", new Error(`unusable address ${routed.address}`));
      }
      const engine: EngineEntry = {
        workerId: routed.workerId,
        model: known?.model ?? query.model,
        url: /^https?:\/\//.test(routed.address)
          ? routed.address.replace(/\/+$/, "")
          : (known as EngineEntry).url,
        blockSize: known?.blockSize ?? 0,
        kvTotalBlocks: known?.kvTotalBlocks ?? 0,
      };
      let prefilled = false;
      let released = false;
      const lease: EngineLease = {
        engine,
        headers: { [CACHED_TOKENS_HEADER]: String(routed.overlapBlocks * engine.blockSize) },
        firstToken() {
          if (prefilled || released) return;
          prefilled = true;
          notify(client, "markPrefillDone", query.requestId);
        },
        done() {
          if (released) return;
          released = true;
          notify(client, "release", query.requestId);
        },
      };
      return { kind: "engine", lease };
    },
    close() {
      for (const client of clients.values()) client.close();
      clients.clear();
    },
  };
}

function findEngine(directory: EngineDirectory, workerId: string): EngineEntry | undefined {
  for (const e of directory.engines()) if (e.workerId === workerId) return e;
  return undefined;
}

/** `Reason.HOLD_TIMEOUT` → `hold_timeout`, as the ingress spells its own reasons. */
function reasonName(reason: Reason): string {
  const name = Reason[reason] as string | undefined;
  return name === undefined ? "unspecified" : name.toLowerCase();
}

/** The gRPC target of a router registration (`instances/router/{id}`), or undefined without one. */
export function parseRouterTarget(text: string): string | undefined {
  const value = JSON.parse(text) as { addresses?: Record<string, unknown> } | null;
  const grpc = value?.addresses?.grpc;
  return typeof grpc === "string" && grpc !== "" ? grpc : undefined;
}
