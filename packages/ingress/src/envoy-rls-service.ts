// Envoy's global rate limit API (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`) on the
// ingress's gRPC port, so an Envoy or Istio gateway can use Sluice as its admission service: each call
// is one request Envoy is about to forward, judged by the SAME L1 decision (`decideIngress`, through the
// admission controller) as the HTTP proxy and `sluice.v1.Admission/Check`.
//
// Envoy's RLS has no release call, so an admission holds its slot for a fixed time (`--rls-slot-hold`)
// and then releases it as completed. That is a lease, not a rate: while held the slot counts in the
// global in-flight requests and KV blocks exactly like a proxied request (so the class shares, tenant
// limits and cross-frontend sync work unchanged, and Envoy and HTTP traffic share one limit), and by
// Little's law a hold equal to the mean request duration makes the held count equal the true in-flight
// count in steady state. Counting calls per second instead would need a second, rate-shaped limit the
// policy does not have, and would lose the KV-load rule. The hold's expiry feeds the completion rate,
// which is what Retry-After predicts from, so OVER_LIMIT carries a drain time on the same model.
//
// Answers: OK / OVER_LIMIT for every descriptor alike (they describe one request); OVER_LIMIT carries
// `retry-after` (s), `retry-after-ms`, `x-sluice-reason`, `x-sluice-level` and `x-sluice-class` in
// response_headers_to_add, the same OpenAI-shaped JSON body as the HTTP 429 in raw_body, and the
// retry delay as duration_until_reset. Requests Sluice cannot judge get INVALID_ARGUMENT (see
// rls-descriptors.ts); Envoy then applies its `failure_mode_deny` (allow by default).

import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { type sendUnaryData, status } from "@grpc/grpc-js";
import { estimatePromptTokensFromBytes, type ResolvedPolicy, resolveClass } from "@sluice/core";
import {
  type GrpcServiceImplementation,
  type RateLimitResponse,
  RateLimitResponse_Code,
  RateLimitResponseSchema,
  type RateLimitService,
} from "@sluice/proto";
import type { AdmissionController, Rejection } from "./admission-controller.js";
import type { EventSink } from "./decision-events.js";
import { RlsRequestError } from "./errors.js";
import type { Slot } from "./inflight-ledger.js";
import type { IngressMetrics } from "./ingress-metrics.js";
import type { PolicySource } from "./ingress-policies.js";
import { rejectionBody, retryAfterHeaders } from "./rejection-response.js";
import { parseRlsRequest, type RlsFacts } from "./rls-descriptors.js";

export interface EnvoyRlsServiceOptions {
  admission: AdmissionController;
  policyFor: PolicySource["policyFor"];
  /** Output budget charged when the descriptors carry no `max_tokens`. */
  defaultMaxTokens: number;
  /** Honour the `class` entry as given for every caller (as --trust-class-header does over HTTP). */
  trustClassHeader: boolean;
  /** How long an admitted call's slots count as in flight. */
  slotHoldMs: number;
  metrics: IngressMetrics;
  events: EventSink;
}

export interface EnvoyRlsService {
  implementation: GrpcServiceImplementation<(typeof RateLimitService)["method"]>;
  /** Slots currently held. */
  heldSlots(): number;
  /** Releases every held slot now, as cancelled (shutdown). */
  releaseAll(): void;
}

interface Held {
  readonly slots: Slot[];
  readonly timer: NodeJS.Timeout;
  readonly event: { requestId: string; requestClass: string; tenant: string; model: string };
}

function classOf(facts: RlsFacts, policy: ResolvedPolicy, trustClassHeader: boolean) {
  const headerClass = facts.requestClass?.trim().toLowerCase();
  const resolved = resolveClass({ headerClass, tenant: facts.tenant }, policy);
  const tenant = resolved.tenant?.tenant ?? "";
  if (trustClassHeader && headerClass !== undefined && policy.classes.some((c) => c.name === headerClass)) {
    return { requestClass: headerClass, tenant };
  }
  return { requestClass: resolved.objectives.name, tenant };
}

function overLimit(descriptors: number, rejection: Rejection): RateLimitResponse {
  const ms = rejection.retryAfterMs;
  const headers = {
    ...retryAfterHeaders(ms),
    "x-sluice-level": "ingress",
    "x-sluice-reason": rejection.reason,
    "x-sluice-class": rejection.requestClass,
  };
  const durationUntilReset = { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
  return create(RateLimitResponseSchema, {
    overallCode: RateLimitResponse_Code.OVER_LIMIT,
    statuses: Array.from({ length: descriptors }, () => ({
      code: RateLimitResponse_Code.OVER_LIMIT,
      durationUntilReset,
    })),
    responseHeadersToAdd: Object.entries(headers).map(([key, value]) => ({ key, value })),
    rawBody: new TextEncoder().encode(JSON.stringify(rejectionBody(rejection))),
  });
}

function ok(descriptors: number): RateLimitResponse {
  return create(RateLimitResponseSchema, {
    overallCode: RateLimitResponse_Code.OK,
    statuses: Array.from({ length: descriptors }, () => ({ code: RateLimitResponse_Code.OK })),
  });
}

export function createEnvoyRlsService(options: EnvoyRlsServiceOptions): EnvoyRlsService {
  const { metrics, events } = options;
  const held = new Set<Held>();
  let slotCount = 0;
  // Request ids for events and the ledger: unique per process without a UUID per call.
  const idPrefix = `rls-${randomBytes(4).toString("hex")}-`;
  let calls = 0;

  const end = (entry: Held, outcome: "completed" | "cancelled") => {
    if (!held.delete(entry)) return;
    clearTimeout(entry.timer);
    let released = 0;
    for (const slot of entry.slots) {
      if (slot.release(outcome)) {
        released += 1;
        metrics.terminal(outcome);
      }
    }
    slotCount -= entry.slots.length;
    metrics.rlsHeldSlots(slotCount);
    if (released > 0) events.emit({ ...entry.event, outcome });
  };

  const judge = (request: Parameters<typeof parseRlsRequest>[0]): RateLimitResponse => {
    const facts = parseRlsRequest(request);
    const { policy, revision } = options.policyFor(facts.model);
    const { requestClass, tenant } = classOf(facts, policy, options.trustClassHeader);
    const promptTokens =
      facts.promptTokens ??
      (facts.promptBytes === undefined ? 0 : estimatePromptTokensFromBytes(facts.promptBytes));
    calls += 1;
    const requestId = `${idPrefix}${calls}`;
    const result = options.admission.checkBatch(
      {
        requestId,
        model: facts.model,
        requestClass,
        promptTokens,
        maxTokens: facts.maxTokens ?? options.defaultMaxTokens,
        tenant,
      },
      facts.hits,
    );
    metrics.decisionSeconds(result.decisionNs / 1e9);
    const event = { requestId, requestClass, tenant, model: facts.model };
    if (!result.admitted) {
      const r = result.rejection;
      metrics.rejected(facts.model, requestClass, r.reason);
      events.emit({
        ...event,
        outcome: "rejected",
        reason: r.reason,
        observed: r.observed,
        limit: r.limit,
        retryAfterMs: r.retryAfterMs,
        policyRevision: r.policyRevision,
      });
      metrics.rlsCall("over_limit");
      return overLimit(request.descriptors.length, r);
    }
    for (let i = 0; i < result.slots.length; i++) metrics.admitted(facts.model, requestClass);
    events.emit({ ...event, outcome: "admitted", policyRevision: revision });
    const timer = setTimeout(() => end(entry, "completed"), options.slotHoldMs);
    // A held slot must not keep the process alive: shutdown releases them (releaseAll).
    timer.unref();
    const entry: Held = { slots: result.slots, timer, event };
    held.add(entry);
    slotCount += result.slots.length;
    metrics.rlsHeldSlots(slotCount);
    metrics.rlsCall("ok");
    return ok(request.descriptors.length);
  };

  return {
    heldSlots: () => slotCount,
    releaseAll() {
      for (const entry of [...held]) end(entry, "cancelled");
    },
    implementation: {
      shouldRateLimit(call, callback: sendUnaryData<RateLimitResponse>) {
        let response: RateLimitResponse;
        try {
          response = judge(call.request);
        } catch (error) {
          if (error instanceof RlsRequestError) {
            metrics.rlsCall("invalid_argument");
            callback({ code: status.INVALID_ARGUMENT, details: error.message });
          } else {
            // A bug or an impossible fact: answer the call, never crash the process.
            metrics.rlsCall("internal");
            callback({
              code: status.INTERNAL,
              details: `sluice: ${error instanceof Error ? error.message : String(error)}`,
            });
          }
          return;
        }
        callback(null, response);
      },
    },
  };
}
