import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEngineDecision, type EngineRejection } from "@sluice/core";
import { createSidecarScheduler, type Waiter } from "./scheduler.js";

function harness(maxInflight: number) {
  let now = 0;
  const decision = createEngineDecision({
    engineMaxNumSeqs: maxInflight,
    engine: { maxInflight: 0, maxQueue: 8, maxQueueMs: 0, ttftMarginMs: 50 },
  });
  const scheduler = createSidecarScheduler({
    decision,
    nowMs: () => now,
    reevaluateIntervalMs: 1_000_000, // ticks are driven by events only in these tests
    kvUsage: () => 0,
  });
  const log: string[] = [];
  const waiter = (id: string): Waiter => ({
    admit: () => log.push(`admit ${id}`),
    reject: (r: EngineRejection) => log.push(`reject ${id} ${r.reason}`),
    fail: (e) => log.push(`fail ${id} ${e.message}`),
  });
  const submit = (id: string, className: string) =>
    scheduler.submit({ id, className, promptTokens: 100 }, waiter(id));
  return { decision, scheduler, log, submit, advance: (ms: number) => (now += ms) };
}

describe("sidecar scheduler", () => {
  it("admits synchronously into a free slot and releases by class when it frees", () => {
    const h = harness(1);
    h.submit("a", "sheddable");
    h.submit("s", "sheddable");
    h.submit("t", "standard");
    h.submit("c", "critical");
    assert.deepEqual(h.log, ["admit a"]);
    h.scheduler.finish("a", "completed");
    h.scheduler.finish("c", "completed");
    h.scheduler.finish("t", "completed");
    assert.deepEqual(h.log, ["admit a", "admit c", "admit t", "admit s"]);
    h.scheduler.close();
  });

  it("ends each request once however finish / cancel race, and keeps the counters balanced", () => {
    const h = harness(1);
    h.submit("a", "standard");
    h.submit("b", "standard");
    h.submit("c", "standard");
    assert.equal(h.scheduler.cancel("b"), true, "queued cancel");
    assert.equal(h.scheduler.cancel("b"), false);
    assert.equal(h.scheduler.finish("a", "failed"), true);
    assert.equal(h.scheduler.cancel("a"), false, "already ended");
    assert.equal(h.scheduler.finish("a", "completed"), false);
    assert.equal(h.scheduler.cancel("c"), true, "in-engine cancel");
    const c = h.scheduler.counts();
    assert.deepEqual(c, {
      queued: 0,
      inEngine: 0,
      admitted: 2,
      completed: 0,
      failed: 1,
      cancelled: 1,
      rejected: 0,
      cancelledQueued: 1,
      failedQueued: 0,
    });
    const s = h.decision.snapshot();
    assert.deepEqual([s.queued, s.inEngine], [0, 0]);
    h.scheduler.close();
  });

  it("fails every queued request on demand and leaves in-engine ones alone", () => {
    const h = harness(1);
    h.submit("a", "standard");
    h.submit("b", "standard");
    h.submit("c", "critical");
    assert.equal(h.scheduler.failQueued(new Error("engine down")), 2);
    assert.deepEqual(h.log.slice(1).sort(), ["fail b engine down", "fail c engine down"]);
    assert.equal(h.scheduler.counts().inEngine, 1);
    assert.equal(h.scheduler.counts().failedQueued, 2);
    h.scheduler.close();
  });
});
