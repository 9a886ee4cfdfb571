import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEngineModel } from "./engine-model.js";
import {
  EngineBusyError,
  EngineConfigError,
  InvalidEngineRequestError,
  RequestTooLongError,
} from "./errors.js";
import type { EngineModelOptions, EngineRequest, KvEvent, StepTimeInput } from "./types.js";

/** Engine with 4-token blocks, no watermark, KV events on and a step-time stub that records its inputs. */
function engine(overrides: Partial<EngineModelOptions> = {}) {
  const priced: StepTimeInput[] = [];
  const model = createEngineModel({
    numGpuBlocks: 16,
    blockSize: 4,
    maxNumSeqs: 8,
    maxNumBatchedTokens: 100,
    watermark: 0,
    collectKvEvents: true,
    stepTime: {
      stepMs(s) {
        priced.push({ ...s });
        return 10;
      },
    },
    ...overrides,
  });
  let now = 0;
  const step = () => {
    const r = model.step(now);
    now += r.durationMs;
    return r;
  };
  return { model, priced, step };
}

const h = (name: string) => BigInt(`0x${Buffer.from(name).toString("hex")}`);
const req = (id: string, promptTokens: number, maxTokens: number, hashes: string[] = []): EngineRequest => ({
  id,
  promptTokens,
  maxTokens,
  blockHashes: hashes.map(h),
  arrivalMs: 0,
});
const stored = (parent: string | null, ...blocks: string[]): KvEvent => ({
  type: "stored",
  parentHash: parent === null ? null : h(parent),
  blockHashes: blocks.map(h),
  tokenHashes: null,
});
const removed = (...blocks: string[]): KvEvent => ({ type: "removed", blockHashes: blocks.map(h) });

describe("engine model: prefix caching", () => {
  it("a second request with the same prefix allocates only its new blocks and counts hits", () => {
    const { model, step } = engine();
    model.add(req("A", 10, 1, ["p0", "p1"]));
    const s1 = step();
    assert.equal(s1.prefillTokens, 10);
    assert.deepEqual(s1.firstTokens, ["A"]);
    assert.deepEqual(s1.finished, ["A"]);
    assert.deepEqual(s1.kvEvents, [stored(null, "p0", "p1")]);
    // A's two full blocks stay cached; its partial third block is plain free again.
    assert.equal(model.load().kvUsedBlocks, 0);
    assert.equal(model.load().kvCachedFreeBlocks, 2);

    model.add(req("B", 13, 2, ["p0", "p1", "q2"]));
    const s2 = step();
    assert.equal(s2.prefillTokens, 5, "8 of 13 prompt tokens come from the cache");
    assert.deepEqual(s2.kvEvents, [stored("p1", "q2")]);
    const l = model.load();
    assert.equal(l.kvUsedBlocks, 4, "2 hit blocks + 2 new");
    assert.equal(l.kvCachedFreeBlocks, 0, "hit blocks left the LRU");
    assert.equal(l.prefixCacheQueryTokens, 23);
    assert.equal(l.prefixCacheHitTokens, 8);

    assert.equal(model.cachedPrefixTokens([h("p0"), h("p1"), h("q2"), h("zz")]), 12);
    assert.equal(model.cachedPrefixTokens([h("zz"), h("p1")]), 0, "hits must start at the first block");
    const s3 = step();
    assert.equal(s3.decodeSeqs, 1);
    assert.deepEqual(s3.finished, ["B"]);
    assert.equal(model.load().kvUsedBlocks, 0);
    assert.equal(model.load().kvCachedFreeBlocks, 3);
  });

  it("a fully cached prompt still recomputes its last block (vLLM needs the last token's logits)", () => {
    const { model, step } = engine();
    model.add(req("A", 8, 1, ["p0", "p1"]));
    step();
    model.add(req("B", 8, 1, ["p0", "p1"]));
    const s = step();
    assert.equal(s.prefillTokens, 4);
    assert.equal(model.load().prefixCacheHitTokens, 4);
    assert.deepEqual(s.kvEvents, [], "p1 is already cached: the recomputed copy is not stored again");
  });

  it("ignores the cache when prefix caching is disabled", () => {
    const { model, step } = engine({ enablePrefixCaching: false });
    model.add(req("A", 8, 1, ["p0", "p1"]));
    assert.deepEqual(step().kvEvents, []);
    model.add(req("B", 8, 1, ["p0", "p1"]));
    assert.equal(step().prefillTokens, 8);
    assert.equal(model.load().kvCachedFreeBlocks, 0);
    assert.equal(model.cachedPrefixTokens([h("p0")]), 0);
  });
});

describe("engine model: batching", () => {
  it("chunks prefill across steps under maxNumBatchedTokens, decodes first", () => {
    const { model, step, priced } = engine({ maxNumBatchedTokens: 8 });
    model.add(req("A", 20, 2));
    model.add(req("B", 6, 1));
    const s1 = step();
    assert.deepEqual([s1.prefillTokens, s1.firstTokens], [8, []]);
    assert.deepEqual(
      [model.load().running, model.load().waiting, model.load().pendingPrefillTokens],
      [1, 1, 18],
    );
    const s2 = step();
    assert.deepEqual([s2.prefillTokens, s2.firstTokens], [8, []]);
    const s3 = step(); // A's last 4 prompt tokens, then B's first 4 with the rest of the budget
    assert.deepEqual([s3.prefillTokens, s3.firstTokens, s3.tokens], [8, ["A"], ["A"]]);
    const s4 = step(); // A decodes (1 token of budget), B finishes its prompt (2 tokens)
    assert.deepEqual([s4.decodeSeqs, s4.prefillTokens], [1, 2]);
    assert.deepEqual(s4.firstTokens, ["B"]);
    assert.deepEqual(s4.tokens, ["A", "B"]);
    assert.deepEqual(s4.finished, ["A", "B"]);
    assert.equal(model.hasWork(), false);
    assert.deepEqual(priced, [
      { prefillTokens: 8, decodeSeqs: 0, outputSeqs: 0, kvUsage: 2 / 16 },
      { prefillTokens: 8, decodeSeqs: 0, outputSeqs: 0, kvUsage: 4 / 16 },
      { prefillTokens: 8, decodeSeqs: 0, outputSeqs: 1, kvUsage: 6 / 16 },
      { prefillTokens: 2, decodeSeqs: 1, outputSeqs: 2, kvUsage: 8 / 16 },
    ]);
  });

  it("never runs more than maxNumSeqs sequences", () => {
    const { model, step } = engine({ maxNumSeqs: 2 });
    for (const id of ["A", "B", "C"]) model.add(req(id, 4, 3));
    assert.deepEqual(step().firstTokens, ["A", "B"]);
    assert.deepEqual([model.load().running, model.load().waiting], [2, 1]);
    assert.deepEqual(step().tokens, ["A", "B"]);
    assert.deepEqual(step().finished, ["A", "B"]);
    const s4 = step();
    assert.deepEqual(s4.firstTokens, ["C"]);
  });

  it("leaves `tokens` empty when reportTokens is off but still reports first tokens and finishes", () => {
    const { model, step } = engine({ reportTokens: false });
    model.add(req("A", 4, 2));
    const s1 = step();
    assert.deepEqual([s1.firstTokens, s1.tokens], [["A"], []]);
    const s2 = step();
    assert.deepEqual([s2.decodeSeqs, s2.tokens, s2.finished], [1, [], ["A"]]);
  });

  it("returns a zero-duration step when there is nothing to do, and refuses to overlap steps", () => {
    const { model } = engine();
    assert.equal(model.step(0).durationMs, 0);
    model.add(req("A", 4, 2));
    const s = model.step(5);
    assert.equal(s.durationMs, 10);
    assert.throws(() => model.step(14), EngineBusyError);
    assert.equal(model.step(15).finished[0], "A");
  });
});

describe("engine model: KV capacity", () => {
  it("refuses admission below the watermark until blocks come back", () => {
    // 10 blocks, watermark 0.2 → 2 blocks kept free at admission.
    const { model, step } = engine({ numGpuBlocks: 10, watermark: 0.2 });
    model.add(req("A", 24, 2)); // 6 blocks: 10 − 6 = 4 ≥ 2
    model.add(req("B", 12, 1)); // 3 blocks: 4 − 3 = 1 < 2 → waits
    const s1 = step();
    assert.deepEqual(s1.firstTokens, ["A"]);
    assert.deepEqual([model.load().running, model.load().waiting], [1, 1]);
    const s2 = step(); // A decodes into its 7th block and finishes; B still waited this step
    assert.deepEqual(s2.finished, ["A"]);
    assert.deepEqual(step().firstTokens, ["B"]);
  });

  it("rejects a request that could never fit, with a typed error", () => {
    const { model } = engine({ numGpuBlocks: 10, watermark: 0.2 }); // ≤ 8 blocks per request
    assert.throws(() => model.add(req("big", 33, 1)), RequestTooLongError);
    model.add(req("fits", 29, 4)); // longest sequence 32 tokens = 8 blocks
    const err = (() => {
      try {
        model.add(req("grows-too-long", 29, 5));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof RequestTooLongError);
    assert.deepEqual([err.neededBlocks, err.availableBlocks], [9, 8]);
    assert.equal(model.load().waiting, 1);
  });

  it("preempts the most recently admitted request by recompute when a decode runs out of blocks", () => {
    const { model, step } = engine({ numGpuBlocks: 4 });
    model.add(req("A", 4, 6, ["a0"]));
    model.add(req("B", 4, 6, ["b0"]));
    assert.deepEqual(step().firstTokens, ["A", "B"]); // 1 block each
    for (let i = 0; i < 4; i++) assert.deepEqual(step().tokens, ["A", "B"]); // second block each; pool full
    const s6 = step(); // A needs a 3rd block: B (admitted last) is preempted, A takes its block and finishes
    assert.deepEqual(s6.preempted, ["B"]);
    assert.deepEqual(s6.tokens, ["A"]);
    assert.deepEqual(s6.finished, ["A"]);
    const l = model.load();
    assert.deepEqual([l.preemptions, l.waiting, l.running], [1, 1, 0]);
    assert.equal(l.pendingPrefillTokens, 9, "B recomputes its prompt and its 5 generated tokens");
    const s7 = step(); // B: prompt block b0 is a cache hit, 5 tokens recomputed, then its 6th token
    assert.equal(s7.prefillTokens, 5);
    assert.deepEqual(s7.firstTokens, [], "B's first token was already sent");
    assert.deepEqual(s7.finished, ["B"]);
    assert.equal(model.load().prefixCacheQueryTokens, 8, "re-admission is not counted again");
    assert.equal(model.load().kvUsedBlocks, 0);
  });

  it("evicts cached free blocks in LRU order, tail blocks of a request first", () => {
    const { model, step } = engine({ numGpuBlocks: 4 });
    model.add(req("A", 8, 1, ["a0", "a1"]));
    step();
    model.add(req("B", 8, 1, ["b0", "b1"]));
    step(); // LRU now a1, a0, b1, b0 (each request's tail block first)
    assert.equal(model.load().kvCachedFreeBlocks, 4);
    model.add(req("C", 4, 1, ["c0"]));
    assert.deepEqual(step().kvEvents, [removed("a1"), stored(null, "c0")]);
    model.add(req("D", 5, 1, ["b0"])); // hit on b0 refreshes it; its partial block evicts a0
    assert.deepEqual(step().kvEvents, [removed("a0")]);
    model.add(req("E", 12, 1, ["e0", "e1", "e2"])); // 3 blocks: D's plain partial, then b1 and c0
    assert.deepEqual(step().kvEvents, [removed("b1", "c0"), stored(null, "e0", "e1", "e2")]);
    assert.equal(model.load().kvCachedFreeBlocks, 4, "b0 survived: it was used more recently");
  });

  it("abort frees a request's blocks wherever it is; its cached blocks stay cached", () => {
    const { model, step } = engine({ maxNumBatchedTokens: 4 });
    model.add(req("A", 8, 10, ["a0", "a1"]));
    model.add(req("W", 4, 1));
    step(); // A computed its first block only
    assert.deepEqual([model.load().kvUsedBlocks, model.load().pendingPrefillTokens], [1, 8]);
    assert.equal(model.abort("A"), true);
    assert.equal(model.abort("W"), true);
    assert.equal(model.abort("A"), false);
    assert.equal(model.abort("nope"), false);
    const l = model.load();
    assert.deepEqual(
      [l.kvUsedBlocks, l.kvCachedFreeBlocks, l.waiting, l.running, l.pendingPrefillTokens],
      [0, 1, 0, 0, 0],
    );
    assert.equal(model.hasWork(), false);
    assert.equal(step().durationMs, 0, "the aborted waiting request is not scheduled");
    model.add(req("A", 8, 1, ["a0", "a1"])); // the id can be reused once aborted
    assert.equal(step().prefillTokens, 4, "a0 is still a prefix hit");
  });

  it("abort of a decoding request returns its blocks mid-batch", () => {
    const { model, step } = engine();
    model.add(req("A", 6, 5));
    model.add(req("B", 6, 5));
    step();
    step();
    assert.equal(model.load().kvUsedBlocks, 4);
    model.abort("A");
    assert.deepEqual([model.load().kvUsedBlocks, model.load().running], [2, 1]);
    assert.deepEqual(step().tokens, ["B"]);
  });
});

describe("engine model: KV events", () => {
  it("stores chunk by chunk with the parent hash and local token hashes when given", () => {
    const { model, step } = engine({ maxNumBatchedTokens: 4 });
    model.add({ ...req("A", 12, 1, ["x0", "x1", "x2"]), localBlockHashes: [1n, 2n, 3n] });
    assert.deepEqual(step().kvEvents, [
      { type: "stored", parentHash: null, blockHashes: [h("x0")], tokenHashes: [1n] },
    ]);
    assert.deepEqual(step().kvEvents, [
      { type: "stored", parentHash: h("x0"), blockHashes: [h("x1")], tokenHashes: [2n] },
    ]);
    assert.deepEqual(step().kvEvents, [
      { type: "stored", parentHash: h("x1"), blockHashes: [h("x2")], tokenHashes: [3n] },
    ]);
  });

  it("clears the prefix cache only when idle and reports it", () => {
    const { model, step } = engine();
    model.add(req("A", 8, 2, ["a0", "a1"]));
    step();
    assert.equal(model.resetPrefixCache(), false, "A still holds blocks");
    step();
    assert.equal(model.resetPrefixCache(), true);
    assert.equal(model.load().kvCachedFreeBlocks, 0);
    model.add(req("B", 8, 1, ["a0", "a1"]));
    const s = step();
    assert.deepEqual(s.kvEvents, [{ type: "cleared" }, stored(null, "a0", "a1")]);
    assert.equal(s.prefillTokens, 8);
  });

  it("collects nothing when KV events are off", () => {
    const { model, step } = engine({ collectKvEvents: false, numGpuBlocks: 2 });
    model.add(req("A", 8, 1, ["a0", "a1"]));
    assert.deepEqual(step().kvEvents, []);
    model.add(req("B", 8, 1, ["b0", "b1"]));
    assert.deepEqual(step().kvEvents, []);
  });
});

describe("engine model: validation", () => {
  it("rejects malformed requests and options", () => {
    const { model } = engine();
    model.add(req("A", 8, 1));
    assert.throws(() => model.add(req("A", 8, 1)), InvalidEngineRequestError);
    assert.throws(() => model.add(req("B", 0, 1)), InvalidEngineRequestError);
    assert.throws(() => model.add(req("B", 8, 0)), InvalidEngineRequestError);
    assert.throws(() => model.add(req("B", 8.5, 1)), InvalidEngineRequestError);
    assert.throws(
      () => model.add(req("B", 7, 1, ["x", "y"])),
      /at most floor\(promptTokens \/ blockSize\) = 1/,
    );
    assert.throws(
      () => model.add({ ...req("B", 8, 1, ["x"]), localBlockHashes: [] }),
      InvalidEngineRequestError,
    );
    assert.throws(() => model.add({ ...req("B", 8, 1), arrivalMs: Number.NaN }), InvalidEngineRequestError);
    assert.throws(() => createEngineModel({ blockSize: 0 }), EngineConfigError);
    assert.throws(() => createEngineModel({ watermark: 1 }), EngineConfigError);
    assert.equal(model.load().waiting, 1);
  });
});

describe("engine model: randomized run keeps its books", () => {
  it("finishes every request and returns every block, through preemption and aborts", () => {
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const { model, step } = engine({
      numGpuBlocks: 64,
      maxNumBatchedTokens: 48,
      maxNumSeqs: 6,
      watermark: 0.05,
    });
    const expected = new Set<string>();
    const finished = new Set<string>();
    let firsts = 0;
    for (let i = 0; i < 300; i++) {
      if (rnd() < 0.6) {
        const prompt = 1 + Math.floor(rnd() * 60);
        const shared = Math.floor(rnd() * 3); // three popular prefixes
        const hashes = Array.from(
          { length: Math.floor(prompt / 4) },
          (_, j) => `s${shared}-${j}${j > 6 ? `-${i}` : ""}`,
        );
        model.add(req(`r${i}`, prompt, 1 + Math.floor(rnd() * 40), hashes));
        expected.add(`r${i}`);
      }
      if (rnd() < 0.05 && i > 0 && model.abort(`r${i - 1}`)) expected.delete(`r${i - 1}`);
      const s = step();
      firsts += s.firstTokens.length;
      for (const id of s.finished) finished.add(id);
    }
    let guard = 0;
    while (model.hasWork() && guard++ < 10_000) {
      const s = step();
      firsts += s.firstTokens.length;
      for (const id of s.finished) finished.add(id);
    }
    assert.deepEqual([...finished].sort(), [...expected].sort());
    assert.equal(firsts >= finished.size, true);
    const l = model.load();
    assert.deepEqual([l.kvUsedBlocks, l.running, l.waiting, l.pendingPrefillTokens], [0, 0, 0, 0]);
    assert.ok(l.preemptions > 0, "the tiny pool forced preemptions");
    assert.ok(l.prefixCacheHitTokens > 0);
  });
});
