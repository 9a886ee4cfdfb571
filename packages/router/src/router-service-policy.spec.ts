import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type PolicyInput,
  type ResolvedPolicy,
  routerDecisionOptionsWithDefaults,
  type ShadowComparison,
  withPolicyDefaults,
} from "@sluice/core";
import { createRouterService, type RouteAnswer } from "./router-service.js";
import { createWorkerRegistry } from "./worker-registry.js";

const tokens = (n: number, base = 1) => Array.from({ length: n }, (_, i) => base + i);

function setup(router: PolicyInput["router"]) {
  let policy: ResolvedPolicy = withPolicyDefaults({ router: router ?? {} });
  let shadow: ResolvedPolicy | undefined;
  const shadows: ShadowComparison[] = [];
  const service = createRouterService({
    replicaId: "r1",
    registry: createWorkerRegistry(),
    policyFor: () => policy,
    shadowFor: () => shadow,
    options: routerDecisionOptionsWithDefaults({ busyChecks: { predictedTtft: false } }),
    publishSync: () => {},
    random: () => 0.5,
    listener: { shadow: ({ comparison }) => shadows.push(comparison) },
  });
  service.putWorker({
    worker: { workerId: "a", kvTotalBlocks: 1000, maxNumBatchedTokens: 512, blockSize: 4 },
    model: "m",
    address: "http://a",
    source: "sluice",
  });
  return {
    service,
    shadows,
    setPolicy(input: PolicyInput["router"]) {
      policy = withPolicyDefaults({ router: input ?? {} });
    },
    setShadow(input: PolicyInput["router"] | undefined) {
      shadow = input === undefined ? undefined : withPolicyDefaults({ router: input });
    },
  };
}

const call = (id: string, n: number, requestClass = "standard") => ({
  requestId: id,
  model: "m",
  requestClass,
  tokenIds: tokens(n, id.length * 1000),
});

describe("router service: live policies", () => {
  it("a new busy threshold takes effect for the next call even while calls are held", async () => {
    const t = setup({ busyPendingPrefillTokens: 100, maxHoldMs: 60_000 });
    assert.equal((await t.service.route(call("q1", 200)).answer).kind, "routed");
    const held = t.service.route(call("q2", 8));
    assert.equal(t.service.heldCount(), 1);
    t.setPolicy({ busyPendingPrefillTokens: 10_000, maxHoldMs: 60_000 });
    // The held call is re-offered under the new policy at once, and fits now.
    t.service.policiesChanged();
    const answer = await held.answer;
    assert.equal(answer.kind, "routed");
    assert.equal(t.service.heldCount(), 0);
    assert.equal((await t.service.route(call("q3", 8)).answer).kind, "routed");
  });

  it("re-bounds the hold queue to the new class limits, answering the overflow", async () => {
    const t = setup({ busyPendingPrefillTokens: 100, maxHoldMs: 60_000 });
    await t.service.route(call("q1", 200)).answer;
    const held = ["h1", "h2", "h3"].map((id) => t.service.route(call(id, 8)));
    assert.equal(t.service.heldCount("standard"), 3);
    t.setPolicy({ busyPendingPrefillTokens: 100, maxHoldMs: 60_000, classMaxHeld: { standard: 1 } });
    t.service.policiesChanged();
    assert.equal(t.service.heldCount("standard"), 1);
    const settled = await Promise.race([
      Promise.all(held.slice(1).map((h) => h.answer)),
      new Promise<RouteAnswer[]>((_, reject) => setTimeout(() => reject(new Error("not answered")), 5_000)),
    ]);
    for (const a of settled) assert.equal(a.kind === "rejected" && a.reason, "hold_queue_full");
    t.service.close("test");
    assert.equal((await held[0]!.answer).kind, "rejected");
  });

  it("a class the new policy never holds is answered with the busy verdict", async () => {
    const t = setup({ busyPendingPrefillTokens: 100, maxHoldMs: 60_000 });
    await t.service.route(call("q1", 200)).answer;
    const held = t.service.route(call("q2", 8));
    t.setPolicy({ busyPendingPrefillTokens: 100, classMaxHeld: { standard: 0 } });
    // Lazily, on the model's next call.
    const next = await t.service.route(call("q3", 8)).answer;
    assert.equal(next.kind === "rejected" && next.reason, "all_engines_busy");
    const answer = await held.answer;
    assert.equal(answer.kind === "rejected" && answer.reason, "all_engines_busy");
  });
});

describe("router service: shadow policy", () => {
  it("judges each new call with the candidate too, enforcing only the policy in force", async () => {
    const t = setup({ busyPendingPrefillTokens: 10_000 });
    assert.equal((await t.service.route(call("q1", 200)).answer).kind, "routed");
    assert.equal(t.shadows.length, 0, "no candidate, no shadow evaluation");
    t.setShadow({ busyPendingPrefillTokens: 100, classMaxHeld: { standard: 0 } });
    const answer = await t.service.route(call("q2", 8)).answer;
    assert.equal(answer.kind, "routed", "the candidate is never enforced");
    assert.equal(t.shadows.length, 1);
    const c = t.shadows[0]!;
    assert.equal(c.enforced.outcome, "admit");
    assert.equal(c.shadow.outcome, "reject");
    assert.equal(c.shadow.reason, "all_engines_busy");
    assert.equal(c.disagree, true);
    t.setShadow({ busyPendingPrefillTokens: 100_000 });
    await t.service.route(call("q3", 8)).answer;
    assert.equal(t.shadows[1]?.disagree, false);
  });
});
