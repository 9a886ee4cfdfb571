import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import type { ServerUnaryCall, ServerWritableStream, ServiceDefinition, sendUnaryData } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { GrpcServiceImplementation } from "@sluice/proto";
import { grpcServiceDefinition, RouteResponseSchema, Router } from "@sluice/proto";
import { GrpcCallError, GrpcServerError } from "./errors.js";
import { createGrpcClient, startGrpcServer } from "./grpc.js";

interface EchoRequest {
  text: string;
  delayMs?: number;
}
interface EchoReply {
  text: string;
}

function method<Req, Res>(name: string, responseStream: boolean) {
  const serialize = (v: unknown) => Buffer.from(JSON.stringify(v));
  return {
    path: `/sluice.test.Echo/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: serialize as (v: Req) => Buffer,
    requestDeserialize: (b: Buffer) => JSON.parse(b.toString()) as Req,
    responseSerialize: serialize as (v: Res) => Buffer,
    responseDeserialize: (b: Buffer) => JSON.parse(b.toString()) as Res,
  };
}
const echoService = {
  Echo: method<EchoRequest, EchoReply>("Echo", false),
  Count: method<EchoRequest, EchoReply>("Count", true),
} satisfies ServiceDefinition;

/** Lets a test wait until the server is really handling a call (no sleeps). */
let echoStarted: (() => void) | undefined;

const implementation = {
  Echo(call: ServerUnaryCall<EchoRequest, EchoReply>, callback: sendUnaryData<EchoReply>) {
    const { text, delayMs = 0 } = call.request;
    echoStarted?.();
    if (text === "fail") {
      callback({ code: status.UNAVAILABLE, details: "engine gone" });
      return;
    }
    const timer = setTimeout(() => callback(null, { text: text.toUpperCase() }), delayMs);
    call.on("cancelled", () => clearTimeout(timer));
  },
  Count(call: ServerWritableStream<EchoRequest, EchoReply>) {
    for (let i = 1; i <= 3; i++) call.write({ text: `${call.request.text}${i}` });
    call.end();
  },
};

async function withEcho(fn: (target: string) => Promise<void>) {
  const server = await startGrpcServer({
    host: "127.0.0.1",
    port: 0,
    services: [{ definition: echoService, implementation }],
  });
  try {
    assert.ok(server.address.port > 0);
    assert.equal(server.target, `127.0.0.1:${server.address.port}`);
    await fn(server.target);
  } finally {
    const { forced } = await server.shutdown(5_000);
    assert.equal(forced, false, "every call finished and every client closed before shutdown");
  }
}

describe("gRPC bootstrap", () => {
  it("serves unary and server-streaming calls on an ephemeral port", async () => {
    await withEcho(async (target) => {
      const client = createGrpcClient(echoService, target, { defaultDeadlineMs: 5_000 });
      try {
        const reply: EchoReply = await client.unary("Echo", { text: "hi" });
        assert.deepEqual(reply, { text: "HI" });
        const got: string[] = [];
        for await (const m of client.serverStream("Count", { text: "n" })) got.push(m.text);
        assert.deepEqual(got, ["n1", "n2", "n3"]);
      } finally {
        client.close();
      }
    });
  });

  it("applies the default deadline and a per-call override", async () => {
    await withEcho(async (target) => {
      const client = createGrpcClient(echoService, target, { defaultDeadlineMs: 100 });
      try {
        await assert.rejects(client.unary("Echo", { text: "slow", delayMs: 10_000 }), (err: unknown) => {
          return err instanceof GrpcCallError && err.code === status.DEADLINE_EXCEEDED && !err.retryable;
        });
        const reply = await client.unary("Echo", { text: "slowish", delayMs: 300 }, { deadlineMs: 10_000 });
        assert.deepEqual(reply, { text: "SLOWISH" });
      } finally {
        client.close();
      }
    });
  });

  it("makes a call without a finite deadline impossible", () => {
    assert.throws(
      () => createGrpcClient(echoService, "127.0.0.1:1", { defaultDeadlineMs: Infinity }),
      RangeError,
    );
    const client = createGrpcClient(echoService, "127.0.0.1:1");
    try {
      assert.throws(() => client.unary("Echo", { text: "x" }, { deadlineMs: 0 }), RangeError);
      assert.throws(() => client.unary("Count", { text: "x" }), /not unary/);
      // @ts-expect-error the request type is checked against the service definition
      assert.throws(() => client.unary("Echo", { txt: "x" }, { deadlineMs: -1 }), RangeError);
    } finally {
      client.close();
    }
  });

  it("translates server errors and cancels on abort", async () => {
    await withEcho(async (target) => {
      const client = createGrpcClient(echoService, target);
      try {
        await assert.rejects(client.unary("Echo", { text: "fail" }), (err: unknown) => {
          return (
            err instanceof GrpcCallError &&
            err.code === status.UNAVAILABLE &&
            err.retryable &&
            /engine gone/.test(err.message)
          );
        });
        const abort = new AbortController();
        const pending = client.unary("Echo", { text: "slow", delayMs: 10_000 }, { signal: abort.signal });
        setTimeout(() => abort.abort(), 50);
        await assert.rejects(
          pending,
          (err: unknown) => err instanceof GrpcCallError && err.code === status.CANCELLED,
        );
      } finally {
        client.close();
      }
    });
  });

  it("forces shutdown when a call outlives the grace period, and reports bind failures", async () => {
    const server = await startGrpcServer({
      host: "127.0.0.1",
      port: 0,
      services: [{ definition: echoService, implementation }],
    });
    const client = createGrpcClient(echoService, server.target, { defaultDeadlineMs: 30_000 });
    const started = new Promise<void>((resolve) => {
      echoStarted = resolve;
    });
    const stuck = client.unary("Echo", { text: "slow", delayMs: 30_000 });
    const stuckOutcome = stuck.then(
      () => "resolved",
      (err: unknown) => (err instanceof GrpcCallError ? err.code : "other"),
    );
    await started;
    echoStarted = undefined;
    await assert.rejects(
      startGrpcServer({ host: "127.0.0.1", port: server.address.port, services: [] }),
      GrpcServerError,
    );
    assert.deepEqual(await server.shutdown(200), { forced: true });
    assert.notEqual(await stuckOutcome, "resolved");
    client.close();
  });

  it("serves a real sluice service from @sluice/proto, requests given as plain init objects", async () => {
    const definition = grpcServiceDefinition(Router);
    const implementation: Partial<GrpcServiceImplementation<typeof Router.method>> = {
      route(call, callback) {
        const { requestId, model } = call.request;
        callback(
          null,
          create(RouteResponseSchema, {
            result: {
              case: "routed",
              value: { workerId: `w-${requestId}`, address: model, overlapBlocks: 3 },
            },
          }),
        );
      },
    };
    const server = await startGrpcServer({
      host: "127.0.0.1",
      port: 0,
      services: [{ definition, implementation: implementation as Record<string, never> }],
    });
    const client = createGrpcClient(definition, server.target, { defaultDeadlineMs: 5_000 });
    try {
      const response = await client.unary("route", { requestId: "r1", model: "llama" });
      assert.equal(response.result.case, "routed");
      assert.equal(response.result.value?.workerId, "w-r1");
      assert.equal(response.result.case === "routed" ? response.result.value.overlapBlocks : -1, 3);
      await assert.rejects(client.unary("release", { requestId: "r1" }), (err: unknown) => {
        return err instanceof GrpcCallError && err.code === status.UNIMPLEMENTED;
      });
    } finally {
      client.close();
      assert.deepEqual(await server.shutdown(5_000), { forced: false });
    }
  });
});
