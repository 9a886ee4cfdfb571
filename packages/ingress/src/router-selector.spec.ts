import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Level, Reason, RouteResponseSchema } from "@sluice/proto";
import { staticEngineDirectory } from "./engine-registry.js";
import { leastInflightSelector, type SelectQuery } from "./engine-selector.js";
import { type RouterClient, routerSelector } from "./router-selector.js";

const engines = staticEngineDirectory([
  { workerId: "w1", model: "m", url: "http://w1:1", blockSize: 16, kvTotalBlocks: 100 },
  { workerId: "w2", model: "m", url: "http://w2:1", blockSize: 16, kvTotalBlocks: 100 },
]);
const query: SelectQuery = {
  requestId: "r1",
  model: "m",
  requestClass: "interactive",
  maxTokens: 8,
  prompt: { text: "hello" },
  exclude: new Set(),
};
const silent = { warn() {}, debug() {} };

function fakeRouter(route: () => Promise<unknown>, notifyFails = false) {
  const calls: string[] = [];
  const client = {
    unary: async (method: string, request: { requestId: string }) => {
      calls.push(`${method}:${request.requestId}`);
      if (method === "route") return route();
      if (notifyFails) throw new Error("unavailable");
      return {};
    },
    close() {},
  } as unknown as RouterClient;
  return { client, calls };
}

function selectorWith(client: RouterClient | undefined) {
  const fallbacks: string[] = [];
  const notifyFailures: string[] = [];
  const selector = routerSelector({
    routers: () => (client ? ["router:1"] : []),
    fallback: leastInflightSelector(engines),
    engines,
    onFallback: (r) => fallbacks.push(r),
    onNotifyFailed: (m) => notifyFailures.push(m),
    logger: silent,
    connect: () => client as RouterClient,
  });
  return { selector, fallbacks, notifyFailures };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("routerSelector", () => {
  it("forwards to the routed worker with the cached tokens, and releases exactly once", async () => {
    const { client, calls } = fakeRouter(async () =>
      create(RouteResponseSchema, {
        result: { case: "routed", value: { workerId: "w2", address: "http://w2:1/", overlapBlocks: 3 } },
      }),
    );
    const { selector, fallbacks } = selectorWith(client);
    const selection = await selector.select(query);
    assert.equal(selection.kind, "engine");
    if (selection.kind !== "engine") return;
    assert.equal(selection.lease.engine.workerId, "w2");
    assert.equal(selection.lease.engine.url, "http://w2:1");
    assert.deepEqual(selection.lease.headers, { "x-sluice-cached-tokens": "48" });
    selection.lease.firstToken?.();
    selection.lease.firstToken?.();
    selection.lease.done();
    selection.lease.done();
    await tick();
    assert.deepEqual(calls, ["route:r1", "markPrefillDone:r1", "release:r1"]);
    assert.deepEqual(fallbacks, []);
  });

  it("maps a router rejection to level-router reason and retry-after", async () => {
    const { client } = fakeRouter(async () =>
      create(RouteResponseSchema, {
        result: {
          case: "rejected",
          value: { level: Level.ROUTER, reason: Reason.PREDICTED_TTFT, retryAfterMs: 750, message: "busy" },
        },
      }),
    );
    const selection = await selectorWith(client).selector.select(query);
    assert.equal(selection.kind, "rejected");
    if (selection.kind !== "rejected") return;
    assert.equal(selection.rejection.reason, "predicted_ttft");
    assert.equal(selection.rejection.retryAfterMs, 750);
  });

  it("falls back locally, counted by reason, when no router is registered or the call fails", async () => {
    const none = selectorWith(undefined);
    assert.equal((await none.selector.select(query)).kind, "engine");
    assert.deepEqual(none.fallbacks, ["no_router"]);
    const failing = selectorWith(
      fakeRouter(async () => {
        throw new Error("DEADLINE_EXCEEDED");
      }).client,
    );
    assert.equal((await failing.selector.select(query)).kind, "engine");
    assert.deepEqual(failing.fallbacks, ["router_error"]);
    const batch = selectorWith(undefined);
    await batch.selector.select({ ...query, prompt: undefined });
    assert.deepEqual(batch.fallbacks, ["unroutable_prompt"]);
  });

  it("counts a failed Release", async () => {
    const { client } = fakeRouter(
      async () =>
        create(RouteResponseSchema, {
          result: { case: "routed", value: { workerId: "w1", address: "http://w1:1", overlapBlocks: 0 } },
        }),
      true,
    );
    const { selector, notifyFailures } = selectorWith(client);
    const selection = await selector.select(query);
    assert.equal(selection.kind, "engine");
    if (selection.kind === "engine") selection.lease.done();
    await tick();
    assert.deepEqual(notifyFailures, ["release"]);
  });
});
