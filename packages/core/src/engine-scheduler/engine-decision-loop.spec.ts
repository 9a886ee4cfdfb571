// Closed loop in virtual time: the L3 decision in front of the engine model (Dynamo mocker step
// times), fed only what a sidecar observes. Checks accounting (every request ends exactly once,
// nothing left in the engine) and that the predictions it audits get good as the models learn.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEngineModel } from "../engine/engine-model.js";
import { dynamoMockerStepTime } from "../engine/step-time.js";
import type { StepResult } from "../engine/types.js";
import { BUILT_IN_CLASSES } from "../policy/defaults.js";
import { createEngineDecision } from "./engine-decision.js";

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Arrival {
  id: string;
  atMs: number;
  className: string;
  promptTokens: number;
  maxTokens: number;
}

function runLoop(arrivalsPerS: number, count: number, seed: number) {
  const rnd = lcg(seed);
  const engine = createEngineModel({ stepTime: dynamoMockerStepTime(), numGpuBlocks: 4096, maxNumSeqs: 64 });
  const kvTotalTokens = engine.options.numGpuBlocks * engine.options.blockSize;
  const d = createEngineDecision({ engineMaxNumSeqs: 64, engineKvTotalTokens: kvTotalTokens });
  const arrivals: Arrival[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    t += (-Math.log(1 - rnd()) * 1000) / arrivalsPerS;
    const cls = BUILT_IN_CLASSES[Math.floor(rnd() * 3)]!;
    arrivals.push({
      id: `r${i}`,
      atMs: t,
      className: cls.name,
      promptTokens: 200 + Math.floor(rnd() * 2800),
      maxTokens: 10 + Math.floor(rnd() * 50),
    });
  }
  const outcome = new Map<string, string>();
  const lastTokenMs = new Map<string, number>();
  const relErrors: number[] = [];
  let next = 0;
  let now = 0;
  const end = (id: string, what: string) => {
    assert.equal(outcome.has(id), false, `${id} ended twice (${outcome.get(id)}, ${what})`);
    outcome.set(id, what);
  };
  // Event loop: arrivals reach the sidecar at their own times, mid-step, exactly as over HTTP; the
  // engine picks up what was released at its next step boundary.
  let step: StepResult | null = null;
  let stepEndMs = 0;
  let batch = 0;
  for (;;) {
    const nextArrivalMs = next < arrivals.length ? arrivals[next]!.atMs : Number.POSITIVE_INFINITY;
    if (step !== null && stepEndMs <= nextArrivalMs) {
      now = stepEndMs;
      const kvUsage = engine.load().kvUsedBlocks / engine.load().kvTotalBlocks;
      for (const id of step.firstTokens) {
        const audit = d.onFirstToken(id, now);
        if (audit !== null) relErrors.push(audit.relativeError);
      }
      for (const id of step.tokens) {
        const prev = lastTokenMs.get(id);
        if (prev !== undefined) d.models.observeDecode({ gapMs: now - prev, batchSize: batch, kvUsage });
        lastTokenMs.set(id, now);
      }
      for (const id of step.finished) {
        assert.equal(d.onFinished(id), true);
        lastTokenMs.delete(id);
        end(id, "completed");
      }
      step = null;
    } else if (next < arrivals.length) {
      now = nextArrivalMs;
      const a = arrivals[next++]!;
      const r = d.offer({ id: a.id, className: a.className, promptTokens: a.promptTokens }, now);
      if (!r.admit) end(a.id, `rejected:${r.rejection.reason}`);
    } else if (step === null) break;
    for (const r of d.reevaluate(now)) end(r.id, `rejected:${r.rejection.reason}`);
    const load = engine.load();
    for (;;) {
      const rel = d.nextAdmission(now, { kvUsage: load.kvUsedBlocks / load.kvTotalBlocks });
      if (rel.kind !== "admit") break;
      const a = arrivals[Number(rel.id.slice(1))]!;
      engine.add({
        id: a.id,
        promptTokens: a.promptTokens,
        blockHashes: [],
        maxTokens: a.maxTokens,
        arrivalMs: now,
      });
    }
    if (step === null && engine.hasWork()) {
      batch = engine.load().running;
      step = engine.step(now);
      stepEndMs = now + step.durationMs;
      batch = Math.max(batch, engine.load().running);
    }
  }
  return { d, outcome, relErrors, arrivals };
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;

describe("L3 decision in a closed loop with the engine model", () => {
  it("under overload ends every request exactly once, sheds, and leaves nothing behind", () => {
    // ~1.5× what this engine serves at this size mix: the queue builds and L3 must shed.
    const { d, outcome, arrivals } = runLoop(40, 3000, 11);
    assert.equal(outcome.size, arrivals.length, "every request has one terminal outcome");
    const s = d.snapshot();
    assert.deepEqual([s.queued, s.inEngine, s.pendingPrefillTokens], [0, 0, 0], "nothing left behind");
    assert.equal(d.audit.pending, 0, "no audit entry leaks");
    const completed = [...outcome.values()].filter((v) => v === "completed").length;
    const rejected = arrivals.length - completed;
    assert.ok(
      completed > 1000 && rejected > 100,
      `overload sheds some: ${completed} completed, ${rejected} rejected`,
    );
    assert.ok(
      [...outcome.values()].every(
        (v) => v === "completed" || /^rejected:(predicted_ttft|queue_timeout|queue_full)$/.test(v),
      ),
    );
  });

  it("predicts TTFT within 20 % at the median once the models have learned (moderate load)", () => {
    const { relErrors } = runLoop(10, 2000, 5);
    // The first requests are predicted from the seeds; judge the learned models.
    const learned = relErrors.slice(200).sort((a, b) => a - b);
    const p50 = quantile(learned, 0.5);
    assert.ok(p50 < 0.2, `median relative TTFT prediction error ${p50.toFixed(3)}`);
  });
});
