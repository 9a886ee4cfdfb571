// `sluice.v1.Router` over gRPC: Route (answered at once, or later when a held call is placed or
// expires; the caller's deadline and cancellation are honoured), MarkPrefillDone, Release.
import { create } from "@bufbuild/protobuf";
import {
  type handleUnaryCall,
  type ServiceError,
  status,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import {
  Level,
  type MarkPrefillDoneRequest,
  type MarkPrefillDoneResponse,
  MarkPrefillDoneResponseSchema,
  type RouteRequest,
  type RouteResponse,
  RouteResponseSchema,
  type RouterReleaseRequest,
  type RouterReleaseResponse,
  RouterReleaseResponseSchema,
} from "@sluice/proto";
import { REJECT_REASONS } from "./decision-events.js";
import type { RouteAnswer, RouteCall, RouterService } from "./router-service.js";

export interface RouterGrpcOptions {
  /** A held call is answered this long before the caller's gRPC deadline. */
  deadlineMarginMs: number;
  /** Unexpected failures (answered INTERNAL); for logs. */
  onError?(method: string, error: unknown): void;
}

export function routeResponseOf(answer: RouteAnswer): RouteResponse {
  if (answer.kind === "routed") {
    return create(RouteResponseSchema, {
      result: {
        case: "routed",
        value: {
          workerId: answer.workerId,
          address: answer.address,
          overlapBlocks: answer.overlapBlocks,
          predictedTtftMs: answer.predictedTtftMs,
          heldMs: Math.max(0, Math.round(answer.heldMs)),
        },
      },
    });
  }
  return create(RouteResponseSchema, {
    result: {
      case: "rejected",
      value: {
        level: Level.ROUTER,
        reason: REJECT_REASONS[answer.reason],
        observedValue: answer.observed,
        limitValue: answer.limit,
        predictedTtftMs: answer.predictedTtftMs,
        retryAfterMs: Math.max(0, Math.min(0xffff_ffff, Math.round(answer.retryAfterMs))),
        message: answer.message,
      },
    },
  });
}

function deadlineEpochMs(deadline: Date | number): number {
  return deadline instanceof Date ? deadline.getTime() : Number(deadline);
}

/** The call's own deadline (RouteRequest.deadline_ms) and the gRPC deadline less the margin, whichever is first. */
export function effectiveDeadlineMs(
  requestDeadlineMs: number,
  grpcDeadline: Date | number,
  marginMs: number,
): number | undefined {
  let deadline = requestDeadlineMs > 0 && Number.isFinite(requestDeadlineMs) ? requestDeadlineMs : undefined;
  const grpcMs = deadlineEpochMs(grpcDeadline);
  if (Number.isFinite(grpcMs) && grpcMs > 0) deadline = Math.min(deadline ?? Infinity, grpcMs - marginMs);
  return deadline;
}

function internal(error: unknown): Partial<ServiceError> {
  return { code: status.INTERNAL, details: `router: ${(error as Error)?.message ?? String(error)}` };
}

export function routerGrpcImplementation(
  service: RouterService,
  options: RouterGrpcOptions,
): UntypedServiceImplementation {
  const route: handleUnaryCall<RouteRequest, RouteResponse> = (call, callback) => {
    let done = false;
    try {
      const req = call.request;
      const routeCall: RouteCall = {
        requestId: req.requestId,
        model: req.model,
        requestClass: req.requestClass,
        tokenIds: req.prompt.case === "tokenIds" ? req.prompt.value.ids : undefined,
        text: req.prompt.case === "text" ? req.prompt.value : undefined,
        deadlineMs: effectiveDeadlineMs(req.deadlineMs, call.getDeadline(), options.deadlineMarginMs),
        excludeWorkerIds: req.excludeWorkerIds,
      };
      const pending = service.route(routeCall);
      call.on("cancelled", () => {
        if (done) return;
        done = true;
        pending.cancel();
      });
      pending.answer.then(
        (answer) => {
          if (done) return;
          done = true;
          callback(null, routeResponseOf(answer));
        },
        (error: unknown) => {
          if (done) return;
          done = true;
          options.onError?.("Route", error);
          callback(internal(error));
        },
      );
    } catch (error) {
      if (done) return;
      done = true;
      options.onError?.("Route", error);
      callback(internal(error));
    }
  };

  const markPrefillDone: handleUnaryCall<MarkPrefillDoneRequest, MarkPrefillDoneResponse> = (
    call,
    callback,
  ) => {
    if (call.request.requestId === "") {
      callback({ code: status.INVALID_ARGUMENT, details: "request_id is required" });
      return;
    }
    try {
      const found = service.prefillDone(call.request.requestId);
      callback(null, create(MarkPrefillDoneResponseSchema, { found }));
    } catch (error) {
      options.onError?.("MarkPrefillDone", error);
      callback(internal(error));
    }
  };

  const release: handleUnaryCall<RouterReleaseRequest, RouterReleaseResponse> = (call, callback) => {
    if (call.request.requestId === "") {
      callback({ code: status.INVALID_ARGUMENT, details: "request_id is required" });
      return;
    }
    try {
      const released = service.release(call.request.requestId);
      callback(null, create(RouterReleaseResponseSchema, { released }));
    } catch (error) {
      options.onError?.("Release", error);
      callback(internal(error));
    }
  };

  return { route, markPrefillDone, release } as UntypedServiceImplementation;
}
