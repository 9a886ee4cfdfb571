import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEngineModel, type EngineModel } from "@sluice/core";
import { createRealtimeDriver } from "./driver.js";

const STEP_MS = 10;

function engine(): EngineModel & { steps: number } {
  const model = createEngineModel({
    numGpuBlocks: 64,
    blockSize: 4,
    stepTime: { stepMs: () => STEP_MS },
    reportTokens: true,
  });
  const counted = Object.create(model) as EngineModel & { steps: number };
  counted.steps = 0;
  counted.step = (nowMs: number) => {
    counted.steps += 1;
    return model.step(nowMs);
  };
  return counted;
}

function recorder() {
  const tokens: { atMs: number; first: boolean }[] = [];
  let finishedAtMs: number | undefined;
  let resolveFinished: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    resolveFinished = resolve;
  });
  return {
    tokens,
    finished,
    finishedAt: () => finishedAtMs,
    listener: {
      onToken: (atMs: number, first: boolean) => tokens.push({ atMs, first }),
      onFinish: (atMs: number) => {
        finishedAtMs = atMs;
        resolveFinished();
      },
    },
  };
}

describe("createRealtimeDriver", () => {
  it("delivers every token at the end of its step, on the engine clock, then goes idle", async () => {
    const model = engine();
    const driver = createRealtimeDriver(model, { speedup: 1 });
    const r = recorder();
    driver.submit({ id: "a", promptTokens: 8, blockHashes: [1n, 2n], maxTokens: 5 }, r.listener);
    await r.finished;
    assert.equal(r.tokens.length, 5);
    assert.deepEqual(
      r.tokens.map((t) => t.first),
      [true, false, false, false, false],
    );
    // Steps are scheduled against the engine clock, not chained timer delays: consecutive tokens are
    // exactly one step apart however late the timers fired.
    for (let i = 1; i < r.tokens.length; i++) {
      assert.equal((r.tokens[i]?.atMs ?? 0) - (r.tokens[i - 1]?.atMs ?? 0), STEP_MS);
    }
    assert.equal(r.finishedAt(), r.tokens[4]?.atMs);
    assert.equal(driver.inFlight(), 0);
    await driver.idle();
    const stepsWhenIdle = model.steps;
    await sleep(60);
    assert.equal(model.steps, stepsWhenIdle, "no steps (no busy loop) without work");
    driver.close();
  });

  it("runs engine time faster with --speedup", async () => {
    const driver = createRealtimeDriver(engine(), { speedup: 50 });
    const r = recorder();
    const startedAt = performance.now();
    driver.submit({ id: "fast", promptTokens: 4, blockHashes: [1n], maxTokens: 40 }, r.listener);
    await r.finished;
    // 40 steps of 10 engine ms = 400 engine ms = 8 wall ms at 50×; allow a generous margin.
    assert.ok(performance.now() - startedAt < 400, "40 steps must not take 400 ms of wall time at 50×");
    assert.equal(r.tokens.length, 40);
    driver.close();
  });

  it("abort frees the sequence's blocks and silences its listener", async () => {
    const model = engine();
    const driver = createRealtimeDriver(model, { speedup: 1 });
    const r = recorder();
    driver.submit(
      { id: "gone", promptTokens: 16, blockHashes: [1n, 2n, 3n, 4n], maxTokens: 200 },
      r.listener,
    );
    while (r.tokens.length < 2) await sleep(5);
    assert.ok(model.load().kvUsedBlocks > 0);
    assert.equal(driver.abort("gone"), true);
    assert.equal(driver.abort("gone"), false);
    assert.equal(model.load().kvUsedBlocks, 0);
    assert.equal(driver.inFlight(), 0);
    const seen = r.tokens.length;
    await sleep(40);
    assert.equal(r.tokens.length, seen);
    assert.equal(r.finishedAt(), undefined);
    driver.close();
  });

  it("refuses a request the engine refuses, without delivering anything", () => {
    const driver = createRealtimeDriver(engine(), { speedup: 1 });
    assert.throws(
      () =>
        driver.submit(
          { id: "huge", promptTokens: 4000, blockHashes: [], maxTokens: 10 },
          recorder().listener,
        ),
      { name: "RequestTooLongError" },
    );
    assert.equal(driver.inFlight(), 0);
    driver.close();
  });

  it("close aborts in-flight work and resolves idle()", async () => {
    const model = engine();
    const driver = createRealtimeDriver(model, { speedup: 1 });
    driver.submit({ id: "x", promptTokens: 4, blockHashes: [1n], maxTokens: 200 }, recorder().listener);
    const idle = driver.idle();
    driver.close();
    await idle;
    assert.equal(model.hasWork(), false);
    assert.throws(() =>
      driver.submit({ id: "y", promptTokens: 4, blockHashes: [], maxTokens: 1 }, recorder().listener),
    );
  });
});
