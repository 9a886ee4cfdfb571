// gRPC `sluice.v1.Admission` (Check + Release): the same L1 decision and the same exactly-once slots
// as the HTTP proxy, for callers that own their data path. A slot is keyed by the caller's request
// id; Release is idempotent per id.

import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { estimatePromptTokensFromBytes, resolveClass } from "@sluice/core";
import {
  type Admission,
  AdmissionCheckResponseSchema,
  AdmissionReleaseResponseSchema,
  type GrpcServiceImplementation,
  Level,
} from "@sluice/proto";
import type { AdmissionController } from "./admission-controller.js";
import type { EventSink } from "./decision-events.js";
import { reasonOf } from "./decision-events.js";
import type { Slot } from "./inflight-ledger.js";
import type { IngressMetrics } from "./ingress-metrics.js";
import type { PolicySource } from "./ingress-policies.js";

export interface AdmissionServiceOptions {
  admission: AdmissionController;
  policyFor: PolicySource["policyFor"];
  defaultMaxTokens: number;
  metrics: IngressMetrics;
  events: EventSink;
}

export interface AdmissionService {
  implementation: GrpcServiceImplementation<(typeof Admission)["method"]>;
  /** Slots held by gRPC callers (released on shutdown as cancelled). */
  open(): Iterable<Slot>;
}

export function createAdmissionService(options: AdmissionServiceOptions): AdmissionService {
  const slots = new Map<string, Slot>();
  return {
    open: () => slots.values(),
    implementation: {
      check(call, callback) {
        const req = call.request;
        if (req.requestId === "" || req.model === "") {
          callback({ code: status.INVALID_ARGUMENT, details: "request_id and model are required" });
          return;
        }
        if (slots.has(req.requestId)) {
          callback({ code: status.ALREADY_EXISTS, details: `request ${req.requestId} already holds a slot` });
          return;
        }
        const { policy, revision } = options.policyFor(req.model);
        const resolved = resolveClass(
          { headerClass: req.requestClass || undefined, tenant: req.tenant || undefined },
          policy,
        );
        const requestClass = resolved.objectives.name;
        const promptTokens =
          req.promptTokens > 0 ? req.promptTokens : estimatePromptTokensFromBytes(req.promptBytes);
        const result = options.admission.check({
          requestId: req.requestId,
          model: req.model,
          requestClass,
          promptTokens,
          maxTokens: req.maxTokens > 0 ? req.maxTokens : options.defaultMaxTokens,
          tenant: resolved.tenant?.tenant,
        });
        options.metrics.decisionSeconds(result.decisionNs / 1e9);
        const base = { requestId: req.requestId, requestClass, tenant: req.tenant, model: req.model };
        if (!result.admitted) {
          const r = result.rejection;
          options.metrics.rejected(req.model, requestClass, r.reason);
          options.events.emit({
            ...base,
            outcome: "rejected",
            reason: r.reason,
            observed: r.observed,
            limit: r.limit,
            retryAfterMs: r.retryAfterMs,
            policyRevision: r.policyRevision,
          });
          callback(
            null,
            create(AdmissionCheckResponseSchema, {
              admitted: false,
              requestClass,
              chargedKvBlocks: result.chargedKvBlocks,
              rejection: {
                level: Level.INGRESS,
                reason: reasonOf(r.reason),
                observedValue: r.observed,
                limitValue: r.limit,
                retryAfterMs: r.retryAfterMs,
                message: `${r.reason}: ${r.observed} over ${r.limit} for class ${requestClass}`,
              },
            }),
          );
          return;
        }
        slots.set(req.requestId, result.slot);
        options.metrics.admitted(req.model, requestClass);
        options.events.emit({ ...base, outcome: "admitted", policyRevision: revision });
        callback(
          null,
          create(AdmissionCheckResponseSchema, {
            admitted: true,
            requestClass,
            chargedKvBlocks: result.chargedKvBlocks,
          }),
        );
      },
      release(call, callback) {
        const slot = slots.get(call.request.requestId);
        slots.delete(call.request.requestId);
        const released = slot?.release("completed") ?? false;
        if (released) options.metrics.terminal("completed");
        callback(null, create(AdmissionReleaseResponseSchema, { released }));
      },
    },
  };
}
