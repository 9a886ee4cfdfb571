import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  computeBlockHashes,
  type PolicyInput,
  type RouterSyncDelta,
  routerDecisionOptionsWithDefaults,
  withPolicyDefaults,
} from "@sluice/core";
import { createRouterService, type RouteRouted } from "./router-service.js";
import { createWorkerRegistry, type RegisteredWorker } from "./worker-registry.js";

const BLOCK = 4;

function worker(id: string, model = "m"): RegisteredWorker {
  return {
    worker: { workerId: id, kvTotalBlocks: 1000, maxNumBatchedTokens: 512, blockSize: BLOCK },
    model,
    address: `http://${id}`,
    source: "sluice",
  };
}

function setup(router: PolicyInput["router"]) {
  const published: RouterSyncDelta[] = [];
  const policy = withPolicyDefaults({ router: router ?? {} });
  const service = createRouterService({
    replicaId: "r1",
    registry: createWorkerRegistry(),
    policyFor: () => policy,
    options: routerDecisionOptionsWithDefaults({ busyChecks: { predictedTtft: false } }),
    publishSync: (d) => published.push(d),
    random: () => 0.5,
  });
  return { service, published, policy };
}

const tokens = (n: number, base = 1) => Array.from({ length: n }, (_, i) => base + i);

describe("router service", () => {
  it("routes to the worker that holds the prompt's prefix and publishes the add", async () => {
    const { service, published } = setup({});
    service.putWorker(worker("a"));
    service.putWorker(worker("b"));
    const prompt = tokens(16);
    const hashes = computeBlockHashes(prompt, BLOCK).sequenceHashes;
    service.applyKvEvent("b", 1n, {
      type: "stored",
      parentHash: null,
      blockHashes: hashes,
      tokenHashes: null,
    });
    const answer = await service.route({
      requestId: "q1",
      model: "m",
      requestClass: "standard",
      tokenIds: prompt,
    }).answer;
    assert.equal(answer.kind, "routed");
    const routed = answer as RouteRouted;
    assert.equal(routed.workerId, "b");
    assert.equal(routed.address, "http://b");
    assert.equal(routed.overlapBlocks, 4);
    assert.equal(published.length, 1);
    assert.equal(published[0]?.event.case, "add");
    assert.equal(service.release("q1"), true);
    assert.equal(service.release("q1"), false, "release is idempotent");
    assert.equal(published.at(-1)?.event.case, "free");
  });

  it("rejects an unknown model with no_engines and a malformed call with invalid_request", async () => {
    const { service } = setup({});
    service.putWorker(worker("a"));
    const none = await service.route({
      requestId: "x",
      model: "other",
      requestClass: "standard",
      tokenIds: [1],
    }).answer;
    assert.equal(none.kind === "rejected" && none.reason, "no_engines");
    const bad = await service.route({ requestId: "y", model: "m", requestClass: "standard" }).answer;
    assert.equal(bad.kind === "rejected" && bad.reason, "invalid_request");
    const badToken = await service.route({
      requestId: "z",
      model: "m",
      requestClass: "standard",
      tokenIds: [-1, 2, 3, 4],
    }).answer;
    assert.equal(badToken.kind === "rejected" && badToken.reason, "invalid_request");
  });

  it("holds a call while every worker is busy and places it when the prefill finishes", async () => {
    const { service } = setup({ busyPendingPrefillTokens: 100, maxHoldMs: 10_000 });
    service.putWorker(worker("a"));
    const first = await service.route({
      requestId: "q1",
      model: "m",
      requestClass: "standard",
      tokenIds: tokens(200),
    }).answer;
    assert.equal(first.kind, "routed");
    const held = service.route({
      requestId: "q2",
      model: "m",
      requestClass: "standard",
      tokenIds: tokens(50, 900),
    });
    let settled = false;
    void held.answer.then(() => {
      settled = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false, "held, not answered");
    assert.equal(service.heldCount("standard"), 1);
    assert.equal(service.prefillDone("q1"), true);
    const answer = await held.answer;
    assert.equal(answer.kind, "routed");
    assert.equal(service.heldCount(), 0);
  });

  it("rejects a held call with hold_timeout and a Retry-After once its hold time passes", async () => {
    const { service, policy } = setup({ busyPendingPrefillTokens: 100, maxHoldMs: 50 });
    service.putWorker(worker("a"));
    await service.route({ requestId: "q1", model: "m", requestClass: "standard", tokenIds: tokens(200) })
      .answer;
    const answer = await service.route({
      requestId: "q2",
      model: "m",
      requestClass: "standard",
      tokenIds: tokens(8),
    }).answer;
    assert.equal(answer.kind, "rejected");
    if (answer.kind !== "rejected") return;
    assert.equal(answer.reason, "hold_timeout");
    assert.ok(answer.retryAfterMs >= policy.rejection.retryAfterMinMs);
    assert.ok(answer.retryAfterMs < policy.rejection.retryAfterMaxMs, "predicted, not the maximum");
    assert.equal(service.heldCount(), 0);
  });

  it("withdraws a cancelled held call and answers held calls on close", async () => {
    const { service } = setup({ busyPendingPrefillTokens: 100, maxHoldMs: 10_000 });
    service.putWorker(worker("a"));
    await service.route({ requestId: "q1", model: "m", requestClass: "standard", tokenIds: tokens(200) })
      .answer;
    const cancelled = service.route({
      requestId: "q2",
      model: "m",
      requestClass: "standard",
      tokenIds: tokens(8),
    });
    const closing = service.route({
      requestId: "q3",
      model: "m",
      requestClass: "critical",
      tokenIds: tokens(8),
    });
    assert.equal(service.heldCount(), 2);
    cancelled.cancel();
    assert.equal(service.heldCount(), 1);
    assert.equal(service.close("test"), 1);
    const answer = await closing.answer;
    assert.equal(answer.kind === "rejected" && answer.reason, "hold_timeout");
    const after = await service.route({
      requestId: "q4",
      model: "m",
      requestClass: "standard",
      tokenIds: [1],
    }).answer;
    assert.equal(after.kind, "rejected");
  });

  it("drops a worker whose registration went from the index and the load picture", async () => {
    const { service } = setup({});
    service.putWorker(worker("a"));
    const prompt = tokens(8);
    const hashes = computeBlockHashes(prompt, BLOCK).sequenceHashes;
    service.applyKvEvent("a", 1n, {
      type: "stored",
      parentHash: null,
      blockHashes: hashes,
      tokenHashes: null,
    });
    await service.route({ requestId: "q1", model: "m", requestClass: "standard", tokenIds: prompt }).answer;
    assert.equal(service.load.load("a").predictedRequests, 1);
    assert.equal(service.removeWorker("a"), true);
    assert.equal(service.index.workerBlockCount("a"), 0);
    assert.equal(service.load.load("a").predictedRequests, 0);
    const answer = await service.route({
      requestId: "q2",
      model: "m",
      requestClass: "standard",
      tokenIds: prompt,
    }).answer;
    assert.equal(answer.kind === "rejected" && answer.reason, "no_engines");
  });
});
