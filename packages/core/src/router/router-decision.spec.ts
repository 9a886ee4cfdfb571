import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { computeBlockHashes } from "../kv/block-hash.js";
import { DEFAULT_POLICY } from "../policy/defaults.js";
import type { RouterLimits } from "../policy/types.js";
import { createPrefixIndex } from "./prefix-index.js";
import {
  assessWorkers,
  createL2Router,
  type DecideRouteInput,
  decideRoute,
  type RouteRequestFacts,
  type RouterPolicy,
  type RouterRouted,
  type RouterWorker,
  type WorkerAssessment,
} from "./router-decision.js";
import { type BusyChecks, routerDecisionOptionsWithDefaults } from "./router-options.js";
import { createWorkerLoad, type ObservedWorkerLoad } from "./worker-load.js";

const BLOCK = 4;
// Prefill busy limit = 4 × 1000 tokens; default prefill rate 10 000 tok/s → 4000 tokens = 400 ms.
const WORKERS: RouterWorker[] = ["w1", "w2", "w3"].map((workerId) => ({
  workerId,
  kvTotalBlocks: 1000,
  maxNumBatchedTokens: 1000,
  blockSize: BLOCK,
}));

function policy(router: Partial<RouterLimits> = {}): RouterPolicy {
  return { ...DEFAULT_POLICY, router: { ...DEFAULT_POLICY.router, ...router } };
}

function prompt(blocks: number, seed: number) {
  const tokens = Array.from({ length: blocks * BLOCK }, (_, i) => seed * 100_000 + i);
  return computeBlockHashes(tokens, BLOCK).sequenceHashes;
}

function request(
  id: string,
  requestClass: string,
  blocks: number,
  seed = 1,
  arrivalMs = 0,
): RouteRequestFacts {
  return {
    requestId: id,
    requestClass,
    promptTokens: blocks * BLOCK,
    blockHashes: prompt(blocks, seed),
    arrivalMs,
  };
}

function observed(over: Partial<ObservedWorkerLoad>): ObservedWorkerLoad {
  return {
    kvUsedBlocks: 0,
    kvTotalBlocks: 1000,
    pendingPrefillTokens: 0,
    waiting: 0,
    running: 0,
    prefillTokensPerS: 0,
    kvBlocksReleasedPerS: 0,
    observedAtMs: 0,
    ...over,
  };
}

function input(
  over: Partial<DecideRouteInput> & { busyChecks?: Partial<BusyChecks> } = {},
): DecideRouteInput {
  const { busyChecks, ...rest } = over;
  return {
    request: request("r", "standard", 8),
    workers: WORKERS,
    overlaps: new Map(),
    load: createWorkerLoad({ replicaId: "me" }),
    policy: policy(),
    options: routerDecisionOptionsWithDefaults({ busyChecks }),
    nowMs: 0,
    random: () => 0.5,
    ...rest,
  };
}

describe("router decision: selection", () => {
  it("prefers the worker with the longest cached prefix and predicts its TTFT from uncached tokens", () => {
    const d = decideRoute(input({ overlaps: new Map([["w2", 6]]) }));
    assert.deepEqual(d, {
      routed: true,
      workerId: "w2",
      overlapBlocks: 6,
      predictedTtftMs: ((8 - 6) * BLOCK * 1000) / 10_000,
      uncachedTokens: 8,
      blocks: 8,
    });
  });

  it("weighs overlap against load: a loaded worker loses its cache advantage", () => {
    const load = createWorkerLoad({ replicaId: "me" });
    load.route(
      { requestId: "x", workerId: "w2", blockHashes: [], blocks: 900, prefillTokens: 0, overlapBlocks: 0 },
      0,
    );
    const d = decideRoute(input({ load, overlaps: new Map([["w2", 8]]) }));
    assert.equal(d.routed && d.workerId, "w1");
    // Weighting prefill work up makes the 32 uncached tokens on w1 cost more than w2's decode load.
    const weighted = decideRoute(
      input({ load, overlaps: new Map([["w2", 8]]), policy: policy({ overlapScoreWeight: 200 }) }),
    );
    assert.equal(weighted.routed && weighted.workerId, "w2");
  });

  it("samples by softmax above temperature 0 with the injected RNG, and ignores it at 0", () => {
    const load = createWorkerLoad({ replicaId: "me" });
    load.route(
      { requestId: "x", workerId: "w1", blockHashes: [], blocks: 500, prefillTokens: 0, overlapBlocks: 0 },
      0,
    );
    const chosen = (temperature: number, r: number) => {
      const d = decideRoute({
        ...input({ load, workers: WORKERS.slice(0, 2) }),
        options: routerDecisionOptionsWithDefaults({ temperature }),
        random: () => r,
      });
      return d.routed ? d.workerId : "none";
    };
    assert.equal(chosen(0, 0), "w2");
    assert.equal(chosen(0, 0.99), "w2");
    // Normalized costs 1 (w1) and 0 (w2), T = 1: P(w1) = e^-1 / (1 + e^-1) ≈ 0.269.
    assert.equal(chosen(1, 0.2), "w1");
    assert.equal(chosen(1, 0.3), "w2");
  });

  it("skips excluded workers and answers no_engines when none is left", () => {
    const req = { ...request("r", "standard", 8), excludeWorkerIds: ["w1", "w2"] };
    const d = decideRoute(input({ request: req, overlaps: new Map([["w1", 8]]) }));
    assert.equal(d.routed && d.workerId, "w3");
    const none = decideRoute(input({ request: { ...req, excludeWorkerIds: ["w1", "w2", "w3"] } }));
    assert.deepEqual(none.routed === false && [none.reason, none.retryAfterMs], ["no_engines", 30_000]);
  });

  it("rejects a request whose deadline already passed", () => {
    const d = decideRoute(input({ request: { ...request("r", "standard", 8), deadlineMs: 50 }, nowMs: 50 }));
    assert.equal(d.routed === false && d.reason, "deadline_exceeded");
  });
});

describe("router decision: busy thresholds", () => {
  function loaded(over: Partial<ObservedWorkerLoad>) {
    const load = createWorkerLoad({ replicaId: "me" });
    for (const w of WORKERS) load.observe(w.workerId, observed(over));
    return load;
  }

  it("decode-block fraction: busy above it, Retry-After from the excess at the release rate", () => {
    const load = loaded({ kvUsedBlocks: 980, kvBlocksReleasedPerS: 10 });
    const d = decideRoute(input({ load }));
    assert.deepEqual(d.routed === false && [d.reason, d.observed, d.limit, d.retryAfterMs], [
      "all_engines_busy",
      980,
      950,
      3000,
    ]);
    assert.equal(decideRoute(input({ load, busyChecks: { decodeBlockFraction: false } })).routed, true);
  });

  it("pending prefill: absolute tokens, or a multiple of max_num_batched_tokens", () => {
    const load = loaded({ pendingPrefillTokens: 4500, prefillTokensPerS: 50_000 });
    const byRatio = decideRoute(input({ load }));
    // (4500 − 4000) tokens at 50 000 tok/s = 10 ms, clamped up to the 100 ms minimum.
    assert.deepEqual(
      byRatio.routed === false && [byRatio.reason, byRatio.observed, byRatio.limit, byRatio.retryAfterMs],
      ["all_engines_busy", 4500, 4000, 100],
    );
    assert.equal(
      decideRoute(input({ load, policy: policy({ busyPendingPrefillTokens: 5000 }) })).routed,
      true,
    );
    const absolute = decideRoute(input({ load, policy: policy({ busyPendingPrefillTokens: 2000 }) }));
    // (4500 − 2000) tokens at 50 000 tok/s = 50 ms, clamped up to 100 ms.
    assert.deepEqual(absolute.routed === false && [absolute.limit, absolute.retryAfterMs], [2000, 100]);
    assert.equal(decideRoute(input({ load, busyChecks: { pendingPrefill: false } })).routed, true);
  });

  it("predicted TTFT vs the class objective (fraction applied), per class", () => {
    // 3000 pending + 32 own tokens at 2000 tok/s ≈ 1516 ms: over critical's 1000 ms, under standard's 2000 ms.
    const load = loaded({ pendingPrefillTokens: 3000, prefillTokensPerS: 2000 });
    const critical = decideRoute(input({ load, request: request("r", "critical", 8) }));
    assert.deepEqual(critical.routed === false && [critical.reason, critical.observed, critical.limit], [
      "predicted_ttft",
      1516,
      1000,
    ]);
    assert.equal(critical.routed === false && critical.retryAfterMs, 516);
    assert.equal(decideRoute(input({ load, request: request("r", "standard", 8) })).routed, true);
    const tight = decideRoute(input({ load, policy: policy({ busyTtftObjectiveFraction: 0.5 }) }));
    assert.equal(tight.routed === false && tight.limit, 1000);
    assert.equal(
      decideRoute(input({ load, request: request("r", "critical", 8), busyChecks: { predictedTtft: false } }))
        .routed,
      true,
    );
  });

  it("uses the larger of predicted and fresh observed load, and ignores stale observations", () => {
    const load = loaded({ kvUsedBlocks: 990, observedAtMs: 0 });
    assert.equal(decideRoute(input({ load, nowMs: 2000 })).routed, false);
    const late = request("r", "standard", 8, 1, 2001);
    assert.equal(
      decideRoute(input({ load, request: late, nowMs: 2001 })).routed,
      true,
      "older than maxObservedAgeMs",
    );
    const predicted = createWorkerLoad({ replicaId: "me" });
    for (const w of WORKERS) {
      predicted.observe(w.workerId, observed({ kvUsedBlocks: 10 }));
      predicted.route(
        {
          requestId: w.workerId,
          workerId: w.workerId,
          blockHashes: [],
          blocks: 960,
          prefillTokens: 0,
          overlapBlocks: 0,
        },
        0,
      );
    }
    assert.equal(
      decideRoute(input({ load: predicted })).routed,
      false,
      "a low observation does not hide the prediction",
    );
  });

  it("reports the worker that drains first when all are busy", () => {
    const load = createWorkerLoad({ replicaId: "me" });
    load.observe("w1", observed({ pendingPrefillTokens: 9000, prefillTokensPerS: 1000 }));
    load.observe("w2", observed({ pendingPrefillTokens: 4800, prefillTokensPerS: 1000 }));
    load.observe("w3", observed({ pendingPrefillTokens: 6000, prefillTokensPerS: 1000 }));
    const d = decideRoute(input({ load, request: request("r", "sheddable", 8) }));
    assert.deepEqual(d.routed === false && [d.observed, d.retryAfterMs], [4800, 800]);
  });
});

describe("L2 router: hold, release, expiry", () => {
  function setup(router: Partial<RouterLimits> = {}) {
    const index = createPrefixIndex();
    const load = createWorkerLoad({ replicaId: "me" });
    const l2 = createL2Router({
      index,
      load,
      policy: policy({ busyPendingPrefillTokens: 100, ...router }),
      options: routerDecisionOptionsWithDefaults({ busyChecks: { predictedTtft: false } }),
      random: () => 0.5,
    });
    return { index, load, l2 };
  }
  const one = WORKERS.slice(0, 1);

  it("routes on the index's overlap and records the predicted load it publishes", () => {
    const { index, load, l2 } = setup();
    const seq = prompt(8, 1);
    index.applyEvent("w2", 1n, {
      type: "stored",
      parentHash: null,
      blockHashes: seq.slice(0, 5),
      tokenHashes: null,
    });
    const r = l2.route(request("a", "standard", 8), WORKERS, 0);
    assert.equal(r.kind, "routed");
    if (r.kind !== "routed") return;
    assert.deepEqual(
      [r.decision.workerId, r.decision.overlapBlocks, r.decision.uncachedTokens],
      ["w2", 5, 12],
    );
    assert.deepEqual(r.delta.event, {
      case: "add",
      value: {
        requestId: "a",
        workerId: "w2",
        blockHashes: seq,
        blocks: 8,
        prefillTokens: 12,
        overlapBlocks: 5,
      },
    });
    assert.equal(load.load("w2").predictedPendingPrefillTokens, 12);
    assert.throws(() => l2.route(request("a", "standard", 8), WORKERS, 0));
  });

  it("holds when every worker is busy, rejects classes that are never held, and releases as capacity frees", () => {
    const { l2 } = setup();
    assert.equal(l2.route(request("big", "standard", 40), one, 0).kind, "routed"); // 160 pending > 100
    const held1 = l2.route(request("s1", "standard", 8, 2), one, 10);
    const held2 = l2.route(request("c1", "critical", 8, 3), one, 20);
    assert.deepEqual([held1.kind, held2.kind], ["held", "held"]);
    const shed = l2.route(request("x", "sheddable", 8, 4), one, 20);
    assert.equal(shed.kind === "rejected" && shed.decision.reason, "all_engines_busy");
    assert.deepEqual(l2.drain(one, 30), { routed: [], rejected: [] });
    l2.prefillDone("big", 40);
    const drained = l2.drain(one, 50);
    assert.deepEqual(
      drained.routed.map((r) => [r.requestId, r.heldMs]),
      [
        ["c1", 30],
        ["s1", 40],
      ],
    );
    assert.equal(l2.heldCount(), 0);
  });

  it("rejects with hold_queue_full past the class bound and hold_timeout at max hold", () => {
    const { l2 } = setup({ classMaxHeld: { critical: 1, standard: 1, sheddable: 0 }, maxHoldMs: 500 });
    l2.route(request("big", "standard", 40), one, 0);
    assert.equal(l2.route(request("s1", "standard", 8, 2), one, 0).kind, "held");
    const full = l2.route(request("s2", "standard", 8, 3), one, 0);
    assert.deepEqual(
      full.kind === "rejected" && [full.decision.reason, full.decision.observed, full.decision.limit],
      ["hold_queue_full", 1, 1],
    );
    assert.equal(l2.nextExpiryMs(), 500);
    const expired = l2.drain(one, 500);
    assert.deepEqual(
      expired.rejected.map((r) => [r.requestId, r.decision.reason, r.decision.observed, r.decision.limit]),
      [["s1", "hold_timeout", 500, 500]],
    );
    // Retry-After from the best worker's drain: (160 − 100) tokens at 10 000 tok/s = 6 ms → 100 ms minimum.
    assert.equal(expired.rejected[0]!.decision.retryAfterMs, 100);
  });

  it("gives a request whose own deadline ended its hold the drain-based Retry-After, not the maximum", () => {
    const { l2 } = setup({ maxHoldMs: 500 });
    l2.route(request("big", "standard", 40), one, 0);
    assert.equal(l2.route({ ...request("s1", "standard", 8, 2), deadlineMs: 200 }, one, 0).kind, "held");
    assert.equal(l2.nextExpiryMs(), 200);
    const expired = l2.drain(one, 200);
    assert.deepEqual(
      expired.rejected.map((r) => [r.requestId, r.decision.reason]),
      [["s1", "hold_timeout"]],
    );
    // Same drain as above (6 ms → the 100 ms minimum); judged against its passed deadline it was 30 s.
    assert.equal(expired.rejected[0]!.decision.retryAfterMs, 100);
  });

  it("release withdraws a held request and frees a routed one exactly once", () => {
    const { l2, load } = setup();
    l2.route(request("big", "standard", 40), one, 0);
    l2.route(request("s1", "standard", 8, 2), one, 0);
    assert.deepEqual(l2.release("s1", 1), { released: true, delta: undefined });
    assert.equal(l2.heldCount(), 0);
    const freed = l2.release("big", 2);
    assert.equal(freed.released && freed.delta?.event.case, "free");
    assert.deepEqual(l2.release("big", 3), { released: false, delta: undefined });
    assert.equal(load.load("w1").predictedActiveBlocks, 0);
  });

  it("sees load routed by a peer replica: a worker the peer filled is busy here too", () => {
    const peer = setup();
    const here = setup();
    const routedByPeer = peer.l2.route(request("big", "standard", 40), one, 0);
    assert.equal(routedByPeer.kind, "routed");
    if (routedByPeer.kind !== "routed") return;
    assert.equal(here.load.applySync({ ...routedByPeer.delta, replicaId: "peer" }).kind, "applied");
    assert.equal(here.l2.route(request("s1", "standard", 8, 2), one, 1).kind, "held");
    // The peer's release reaches this replica as a free delta, and the held request can go.
    const freed = peer.l2.release("big", 2);
    here.load.applySync({ ...freed.delta!, replicaId: "peer" });
    assert.deepEqual(
      here.l2.drain(one, 3).routed.map((r) => r.requestId),
      ["s1"],
    );
  });
});

describe("router decision: the single-pass selection agrees with the per-worker assessments", () => {
  // Reference: the decision rules of the file header applied to `assessWorkers` (one object per
  // worker), against which the allocation-free pass of `decideRoute` must never drift.
  function reference(inp: DecideRouteInput): RouterRouted | WorkerAssessment {
    const assessed = assessWorkers(inp);
    const free = assessed.filter((a) => a.busy === undefined);
    if (free.length === 0) {
      // All busy: the worker predicted to drain first (first one on ties) explains the rejection.
      let best = assessed[0]!;
      for (const a of assessed) if (a.drainMs < best.drainMs) best = a;
      return best;
    }
    let best = free[0]!;
    let worst = best.cost;
    for (const c of free) {
      if (c.cost < best.cost || (c.cost === best.cost && c.overlapBlocks > best.overlapBlocks)) best = c;
      if (c.cost > worst) worst = c.cost;
    }
    let chosen = best;
    const t = inp.options.temperature;
    if (t !== 0 && free.length > 1 && worst !== best.cost) {
      const weights = free.map((c) => Math.exp(-(c.cost - best.cost) / (worst - best.cost) / t));
      let r = inp.random() * weights.reduce((a, b) => a + b, 0);
      chosen = free[free.length - 1]!;
      for (let i = 0; i < free.length; i++) {
        r -= weights[i]!;
        if (r < 0) {
          chosen = free[i]!;
          break;
        }
      }
    }
    return {
      routed: true,
      workerId: chosen.workerId,
      overlapBlocks: chosen.overlapBlocks,
      predictedTtftMs: chosen.predictedTtftMs,
      uncachedTokens: chosen.uncachedTokens,
      blocks: Math.ceil(inp.request.promptTokens / BLOCK),
    };
  }

  it("picks the same worker with the same numbers over random loads, overlaps and temperatures", () => {
    let seed = 7;
    const random = () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed / 2 ** 32;
    };
    const workers: RouterWorker[] = Array.from({ length: 40 }, (_, i) => ({
      workerId: `w${i}`,
      kvTotalBlocks: 1000,
      maxNumBatchedTokens: 1000,
      blockSize: BLOCK,
    }));
    let busyRounds = 0;
    for (let round = 0; round < 200; round++) {
      const load = createWorkerLoad({ replicaId: "me" });
      const overlaps = new Map<string, number>();
      for (const w of workers) {
        // Coarse values so equal costs (the overlap tie-break) occur.
        // Every fourth round, (almost) every worker is above the 95 % decode limit.
        const floor = round % 4 === 0 ? 951 : 0;
        load.observe(
          w.workerId,
          observed({
            kvUsedBlocks: floor + 10 * Math.floor(random() * (101 - floor / 10)),
            pendingPrefillTokens: 1000 * Math.floor(random() * 5),
          }),
        );
        if (random() < 0.5) overlaps.set(w.workerId, Math.floor(random() * 9));
      }
      const draw = random();
      const inp = input({
        load,
        workers,
        overlaps,
        options: routerDecisionOptionsWithDefaults({ temperature: round % 3 === 0 ? 0 : round % 3 }),
        random: () => draw,
      });
      const expected = reference(inp);
      const actual = decideRoute(inp);
      // The slot fast path (what createL2Router passes) answers exactly as the lookups by id.
      const slotted = decideRoute({
        ...inp,
        slots: {
          indexSlots: Int32Array.from(workers, (_, i) => i),
          loadSlots: Int32Array.from(workers, (w) => load.slotOf(w.workerId)),
          overlaps: { depthAt: (slot) => overlaps.get(workers[slot]!.workerId) ?? 0 },
          load,
        },
      });
      assert.deepEqual(slotted, actual, `round ${round} (slots)`);
      if ("routed" in expected) {
        assert.deepEqual(actual, expected, `round ${round}`);
        continue;
      }
      busyRounds++;
      assert.equal(actual.routed, false, `round ${round}`);
      if (actual.routed) continue;
      assert.equal(actual.observed, expected.busy!.observed, `round ${round}`);
      assert.equal(actual.limit, expected.busy!.limit, `round ${round}`);
      assert.equal(actual.predictedTtftMs, expected.predictedTtftMs, `round ${round}`);
    }
    assert.ok(busyRounds > 10, `only ${busyRounds} all-busy rounds`);
  });
});

describe("L2 router: cached worker slots follow every change", () => {
  it("decides like decideRoute with fresh lookups while workers, index slots and load entries change", () => {
    let seed = 11;
    const random = () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed / 2 ** 32;
    };
    const index = createPrefixIndex({ initialWorkerCapacity: 1 });
    const load = createWorkerLoad({ replicaId: "me" });
    const pol = policy();
    const options = routerDecisionOptionsWithDefaults({ temperature: 0 });
    const l2 = createL2Router({ index, load, policy: pol, options, random: () => 0.5 });
    const prompts = Array.from({ length: 6 }, (_, p) => prompt(8, 40 + p));
    const ids = Array.from({ length: 12 }, (_, i) => `n${i}`);
    const eventIds = new Map<string, bigint>();
    const worker = (workerId: string): RouterWorker => ({
      workerId,
      kvTotalBlocks: 10_000,
      maxNumBatchedTokens: 100_000,
      blockSize: BLOCK,
    });
    // One array kept across calls and refilled in place (the cache must notice), sometimes replaced.
    let workers: RouterWorker[] = ids.slice(0, 5).map(worker);
    const inFlight: string[] = [];
    let routedCount = 0;
    for (let step = 0; step < 400; step++) {
      const op = random();
      const id = ids[Math.floor(random() * ids.length)]!;
      if (op < 0.25) {
        const seq = prompts[Math.floor(random() * prompts.length)]!;
        const next = (eventIds.get(id) ?? 0n) + 1n;
        eventIds.set(id, next);
        const upTo = 1 + Math.floor(random() * seq.length);
        index.applyEvent(id, next, {
          type: "stored",
          parentHash: null,
          blockHashes: seq.slice(0, upTo),
          tokenHashes: null,
        });
      } else if (op < 0.32) {
        index.removeWorker(id); // frees an index slot another worker may take
        eventIds.delete(id);
      } else if (op < 0.4) {
        load.observe(id, observed({ kvTotalBlocks: 10_000, kvUsedBlocks: Math.floor(random() * 5000) }));
      } else if (op < 0.45) {
        load.removeWorker(id); // drops a load entry (and its slot)
      } else if (op < 0.5) {
        workers[Math.floor(random() * workers.length)] = worker(id); // in place, same array
      } else if (op < 0.55) {
        workers = ids.filter(() => random() < 0.5).map(worker);
      } else if (op < 0.65 && inFlight.length > 0) {
        // Releasing the last request of an unobserved worker drops its load entry too.
        l2.release(inFlight.splice(Math.floor(random() * inFlight.length), 1)[0]!, step);
      } else {
        const hashes = prompts[Math.floor(random() * prompts.length)]!;
        const facts: RouteRequestFacts = {
          requestId: `q${step}`,
          requestClass: "standard",
          promptTokens: hashes.length * BLOCK,
          blockHashes: hashes,
          arrivalMs: step,
        };
        const expected = decideRoute({
          request: facts,
          workers,
          overlaps: index.findMatches(hashes),
          load,
          policy: pol,
          options,
          nowMs: step,
          random: () => 0.5,
        });
        const result = l2.route(facts, workers, step);
        if (result.kind === "routed") {
          routedCount++;
          inFlight.push(facts.requestId);
          assert.deepEqual(result.decision, expected, `step ${step}`);
        } else {
          assert.equal(result.kind, "rejected", `step ${step}`);
          if (result.kind === "rejected") assert.deepEqual(result.decision, expected, `step ${step}`);
        }
      }
    }
    assert.ok(routedCount > 100, `only ${routedCount} routed`);
  });
});
