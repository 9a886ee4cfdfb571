import * as assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import type { ServiceError } from "@grpc/grpc-js";
import { Client, credentials, Metadata, Server, ServerCredentials, status } from "@grpc/grpc-js";
import type { GrpcServiceImplementation } from "./index.js";
import {
  Admission,
  AdmissionCheckResponseSchema,
  AdmissionReleaseResponseSchema,
  callUnary,
  grpcClientConstructor,
  grpcServiceDefinition,
  Level,
  MarkPrefillDoneResponseSchema,
  Reason,
  RouteResponseSchema,
  Router,
  RouterReleaseResponseSchema,
} from "./index.js";

const BLOCK_SIZE_TOKENS = 4;

// A toy router whose answers are computed from the request, so the tests prove that fields
// crossed the wire both ways (not that a canned response came back).
const routerImpl: GrpcServiceImplementation<(typeof Router)["method"]> = {
  route(call, callback) {
    const req = call.request;
    if (req.requestId === "hang") return; // never answers: only the client's deadline ends it
    if (req.requestId === "deadline-probe") {
      const deadline = call.getDeadline();
      // grpc-js gives an absolute deadline (Date or epoch ms), Infinity when there is none.
      const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
      const remainingMs = Number.isFinite(deadlineMs) ? deadlineMs - Date.now() : 0;
      callback(
        null,
        create(RouteResponseSchema, {
          result: { case: "routed", value: { heldMs: Math.max(0, Math.floor(remainingMs)) } },
        }),
      );
      return;
    }
    if (req.prompt.case === undefined) {
      callback({ code: status.INVALID_ARGUMENT, details: "prompt is required" });
      return;
    }
    if (req.requestClass === "sheddable") {
      callback(
        null,
        create(RouteResponseSchema, {
          result: {
            case: "rejected",
            value: {
              level: Level.ROUTER,
              reason: Reason.ALL_ENGINES_BUSY,
              observedValue: 0.97,
              limitValue: 0.95,
              retryAfterMs: 1500,
              message: `all engines busy for ${req.model}`,
            },
          },
        }),
      );
      return;
    }
    const tokenCount = req.prompt.case === "tokenIds" ? req.prompt.value.ids.length : req.prompt.value.length;
    const workerId = req.excludeWorkerIds.includes("w1") ? "w2" : "w1";
    callback(
      null,
      create(RouteResponseSchema, {
        result: {
          case: "routed",
          value: {
            workerId,
            address: `http://127.0.0.1:9000/${workerId}`,
            overlapBlocks: Math.floor(tokenCount / BLOCK_SIZE_TOKENS),
            predictedTtftMs: tokenCount + req.maxTokens / 1000,
          },
        },
      }),
    );
  },
  markPrefillDone(call, callback) {
    callback(null, create(MarkPrefillDoneResponseSchema, { found: call.request.requestId === "known" }));
  },
  release(call, callback) {
    callback(null, create(RouterReleaseResponseSchema, { released: call.request.workerId !== "" }));
  },
};

const admitted = new Set<string>();
const admissionImpl: GrpcServiceImplementation<(typeof Admission)["method"]> = {
  check(call, callback) {
    const req = call.request;
    const tenantHeader = call.metadata.get("x-tenant")[0];
    if (req.maxTokens > 1000) {
      callback(
        null,
        create(AdmissionCheckResponseSchema, {
          admitted: false,
          requestClass: req.requestClass || "standard",
          rejection: {
            level: Level.INGRESS,
            reason: Reason.KV_LIMIT,
            observedValue: req.maxTokens,
            limitValue: 1000,
          },
        }),
      );
      return;
    }
    admitted.add(req.requestId);
    callback(
      null,
      create(AdmissionCheckResponseSchema, {
        admitted: true,
        requestClass: typeof tenantHeader === "string" ? `tenant:${tenantHeader}` : req.requestClass,
        chargedKvBlocks: Math.ceil((req.promptTokens + req.maxTokens) / BLOCK_SIZE_TOKENS),
      }),
    );
  },
  release(call, callback) {
    callback(
      null,
      create(AdmissionReleaseResponseSchema, { released: admitted.delete(call.request.requestId) }),
    );
  },
};

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number";
}

async function expectStatus(promise: Promise<unknown>, code: status): Promise<ServiceError> {
  try {
    await promise;
  } catch (error: unknown) {
    assert.ok(isServiceError(error), `expected a gRPC ServiceError, got ${String(error)}`);
    assert.equal(
      error.code,
      code,
      `expected status ${status[code]}, got ${status[error.code]}: ${error.details}`,
    );
    return error;
  }
  assert.fail(`expected the call to fail with ${status[code]}`);
}

describe("grpc adapter over real sockets", () => {
  const server = new Server();
  const RouterClient = grpcClientConstructor(Router);
  const AdmissionClient = grpcClientConstructor(Admission);
  let address = "";
  let router: InstanceType<typeof RouterClient>;
  let admission: InstanceType<typeof AdmissionClient>;

  before(async () => {
    server.addService(grpcServiceDefinition(Router), routerImpl);
    server.addService(grpcServiceDefinition(Admission), admissionImpl);
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, boundPort) =>
        error ? reject(error) : resolve(boundPort),
      );
    });
    address = `127.0.0.1:${port}`;
    router = new RouterClient(address, credentials.createInsecure());
    admission = new AdmissionClient(address, credentials.createInsecure());
  });

  after(async () => {
    router.close();
    admission.close();
    // tryShutdown waits for open calls; a leaked call shows up as this timing out.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        reject(new Error("server still had open calls 10 s after the clients closed"));
      }, 10_000);
      server.tryShutdown((error) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      });
    });
  });

  it("uses the design's method paths", () => {
    const definition = grpcServiceDefinition(Router);
    assert.equal(definition.route.path, "/sluice.v1.Router/Route");
    assert.equal(definition.markPrefillDone.path, "/sluice.v1.Router/MarkPrefillDone");
    assert.equal(grpcServiceDefinition(Admission).check.path, "/sluice.v1.Admission/Check");
    assert.equal(RouterClient.serviceName, "sluice.v1.Router");
    assert.equal(definition.route.requestStream, false);
    assert.equal(definition.route.responseStream, false);
  });

  it("Router/Route with token ids returns a routed decision computed from the request", async () => {
    const res = await callUnary(
      router,
      router.route,
      {
        requestId: "r1",
        model: "m",
        requestClass: "standard",
        prompt: { case: "tokenIds", value: { ids: [1, 2, 3, 4, 5, 6, 7, 8, 9] } },
        maxTokens: 500,
        excludeWorkerIds: ["w1"],
      },
      { timeoutMs: 10_000 },
    );
    assert.equal(res.$typeName, "sluice.v1.RouteResponse");
    assert.equal(res.result.case, "routed");
    if (res.result.case !== "routed") return;
    assert.equal(res.result.value.workerId, "w2");
    assert.equal(res.result.value.address, "http://127.0.0.1:9000/w2");
    assert.equal(res.result.value.overlapBlocks, 2);
    assert.equal(res.result.value.predictedTtftMs, 9.5);
  });

  it("Router/Route with text and the rejected branch carry level, reason and retry_after_ms", async () => {
    const res = await callUnary(
      router,
      router.route,
      { requestId: "r2", model: "llama", requestClass: "sheddable", prompt: { case: "text", value: "hi" } },
      { timeoutMs: 10_000 },
    );
    assert.equal(res.result.case, "rejected");
    if (res.result.case !== "rejected") return;
    assert.equal(res.result.value.level, Level.ROUTER);
    assert.equal(res.result.value.reason, Reason.ALL_ENGINES_BUSY);
    assert.equal(res.result.value.retryAfterMs, 1500);
    assert.equal(res.result.value.message, "all engines busy for llama");
  });

  it("the callback-style client and the proto-named alias work too", async () => {
    const found = await new Promise<boolean>((resolve, reject) => {
      router.markPrefillDone({ requestId: "known", workerId: "w1" }, (error, response) =>
        error || !response ? reject(error ?? new Error("no response")) : resolve(response.found),
      );
    });
    assert.equal(found, true);
    const aliased = (router as unknown as Record<string, unknown>).MarkPrefillDone;
    assert.equal(aliased, router.markPrefillDone);
    const released = await callUnary(router, router.release, { requestId: "x", workerId: "w1" });
    assert.equal(released.released, true);
  });

  it("Admission/Check and Release round trip, with metadata", async () => {
    const metadata = new Metadata();
    metadata.set("x-tenant", "acme");
    const ok = await callUnary(
      admission,
      admission.check,
      { requestId: "a1", model: "m", requestClass: "critical", promptTokens: 10, maxTokens: 30 },
      { timeoutMs: 10_000, metadata },
    );
    assert.equal(ok.admitted, true);
    assert.equal(ok.requestClass, "tenant:acme");
    assert.equal(ok.chargedKvBlocks, 10);

    const rejected = await callUnary(admission, admission.check, { requestId: "a2", maxTokens: 4096 });
    assert.equal(rejected.admitted, false);
    assert.equal(rejected.rejection?.level, Level.INGRESS);
    assert.equal(rejected.rejection?.reason, Reason.KV_LIMIT);
    assert.equal(rejected.rejection?.observedValue, 4096);

    assert.equal((await callUnary(admission, admission.release, { requestId: "a1" })).released, true);
    assert.equal((await callUnary(admission, admission.release, { requestId: "a1" })).released, false);
  });

  it("a client deadline reaches the server and expires a call that never answers", async () => {
    const probe = await callUnary(
      router,
      router.route,
      { requestId: "deadline-probe" },
      { timeoutMs: 60_000 },
    );
    assert.equal(probe.result.case, "routed");
    const remainingMs = probe.result.case === "routed" ? probe.result.value.heldMs : 0;
    assert.ok(remainingMs > 0 && remainingMs <= 60_000, `server saw ${remainingMs} ms left`);

    await expectStatus(
      callUnary(router, router.route, { requestId: "hang" }, { timeoutMs: 200 }),
      status.DEADLINE_EXCEEDED,
    );
  });

  it("server errors arrive as status codes", async () => {
    const error = await expectStatus(
      callUnary(router, router.route, { requestId: "r3" }),
      status.INVALID_ARGUMENT,
    );
    assert.equal(error.details, "prompt is required");
  });

  it("malformed request bytes fail the call with INTERNAL and the server keeps serving", async () => {
    const raw = new Client(address, credentials.createInsecure());
    try {
      // Field 1 (request_id), length-delimited, with a length running past the end.
      const garbage = Buffer.from([0x0a, 0x7f, 0x61]);
      const call = new Promise<Buffer>((resolve, reject) => {
        raw.makeUnaryRequest(
          "/sluice.v1.Router/Route",
          (value: Buffer) => value,
          (value: Buffer) => value,
          garbage,
          { deadline: Date.now() + 10_000 },
          (error, value) => (error || !value ? reject(error) : resolve(value)),
        );
      });
      await expectStatus(call, status.INTERNAL);
    } finally {
      raw.close();
    }
    const res = await callUnary(router, router.route, {
      requestId: "r4",
      prompt: { case: "text", value: "ok" },
    });
    assert.equal(res.result.case, "routed");
  });

  it("rejects a negative timeout before sending anything", async () => {
    await assert.rejects(callUnary(router, router.route, { requestId: "r5" }, { timeoutMs: -1 }), RangeError);
  });
});
