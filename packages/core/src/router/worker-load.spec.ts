import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RouterInputError } from "./errors.js";
import { createWorkerLoad, type RouterSyncDelta, type WorkerLoad } from "./worker-load.js";

function add(
  requestId: string,
  workerId: string,
  hashes: number[],
  prefillTokens: number,
  blocks = hashes.length + 1,
) {
  return { requestId, workerId, blockHashes: hashes.map(BigInt), blocks, prefillTokens, overlapBlocks: 0 };
}

function picture(load: WorkerLoad, workers: string[]) {
  return workers.map((w) => {
    const v = load.load(w);
    return [w, v.predictedActiveBlocks, v.predictedPendingPrefillTokens, v.predictedRequests];
  });
}

const OBSERVED = {
  kvUsedBlocks: 0,
  kvTotalBlocks: 1000,
  pendingPrefillTokens: 0,
  waiting: 0,
  running: 0,
  prefillTokensPerS: 0,
  kvBlocksReleasedPerS: 0,
  observedAtMs: 0,
};

describe("worker load: prediction", () => {
  it("counts a block shared by two requests on one worker once, and releases it with the last one", () => {
    const load = createWorkerLoad({ replicaId: "r1" });
    load.route(add("a", "w1", [1, 2, 3, 4], 100), 0); // 4 hashed + 1 partial block
    load.route(add("b", "w1", [1, 2, 3, 9], 50), 0); // shares 3 blocks
    load.route(add("c", "w2", [1, 2], 10, 2), 0); // same hashes on another worker count there
    assert.equal(load.load("w1").predictedActiveBlocks, 5 + 2);
    assert.equal(load.load("w2").predictedActiveBlocks, 2);
    assert.ok(load.free("a", 1));
    assert.equal(load.load("w1").predictedActiveBlocks, 4 + 1);
    assert.equal(load.free("a", 2), undefined, "free is idempotent");
    load.free("b", 2);
    assert.equal(load.load("w1").predictedActiveBlocks, 0);
    assert.equal(load.load("w1").predictedRequests, 0);
  });

  it("keeps uncached tokens pending until first token or end, exactly once", () => {
    const load = createWorkerLoad({ replicaId: "r1" });
    load.route(add("a", "w1", [1], 300), 0);
    load.route(add("b", "w1", [2], 200), 0);
    assert.equal(load.load("w1").predictedPendingPrefillTokens, 500);
    assert.equal(load.prefillDone("a", 1)?.event.case, "prefillDone");
    assert.equal(load.prefillDone("a", 1), undefined);
    assert.equal(load.load("w1").predictedPendingPrefillTokens, 200);
    load.free("a", 2);
    load.free("b", 2); // ended before its first token (cancelled)
    assert.equal(load.load("w1").predictedPendingPrefillTokens, 0);
  });

  it("ages out a lost first-token report and a lost release (expire), own and peers' requests alike", () => {
    const load = createWorkerLoad({ replicaId: "r1", prefillTimeoutMs: 1_000, requestTimeoutMs: 10_000 });
    const peer = createWorkerLoad({ replicaId: "r2" });
    load.route(add("a", "w1", [1, 2], 100), 0);
    const fromPeer = peer.route(add("b", "w1", [3], 50), 123_456_789); // peer clock: ignored
    load.applySync(fromPeer);
    assert.deepEqual(load.expire(500), { prefillExpired: 0, requestsExpired: 0 }, "b stamped at 500");
    assert.deepEqual(picture(load, ["w1"]), [["w1", 5, 150, 2]]);
    assert.deepEqual(load.expire(1_001), { prefillExpired: 1, requestsExpired: 0 });
    assert.deepEqual(picture(load, ["w1"]), [["w1", 5, 50, 2]], "a's prefill no longer pending");
    assert.deepEqual(load.expire(1_501), { prefillExpired: 1, requestsExpired: 0 });
    assert.equal(load.load("w1").predictedPendingPrefillTokens, 0);
    assert.deepEqual(load.expire(10_001), { prefillExpired: 0, requestsExpired: 1 });
    assert.deepEqual(picture(load, ["w1"]), [["w1", 2, 0, 1]], "a dropped, b still in flight");
    assert.deepEqual(load.expire(10_501), { prefillExpired: 0, requestsExpired: 1 });
    assert.deepEqual(picture(load, ["w1"]), [["w1", 0, 0, 0]]);
    assert.equal(load.free("a", 11_000), undefined, "a late release is a no-op");
    assert.throws(() => createWorkerLoad({ replicaId: "x", prefillTimeoutMs: 0 }), /prefillTimeoutMs/);
  });

  it("stores observed load beside the prediction without changing it", () => {
    const load = createWorkerLoad({ replicaId: "r1" });
    load.route(add("a", "w1", [1, 2], 128), 0);
    load.observe("w1", {
      kvUsedBlocks: 900,
      kvTotalBlocks: 1000,
      pendingPrefillTokens: 4096,
      waiting: 3,
      running: 10,
      prefillTokensPerS: 8000,
      kvBlocksReleasedPerS: 50,
      observedAtMs: 5,
    });
    const view = load.load("w1");
    assert.equal(view.predictedActiveBlocks, 3);
    assert.equal(view.predictedPendingPrefillTokens, 128);
    assert.equal(view.observed?.kvUsedBlocks, 900);
    assert.equal(view.observed?.pendingPrefillTokens, 4096);
    load.free("a", 6);
    assert.equal(load.load("w1").predictedActiveBlocks, 0);
    assert.equal(load.load("w1").observed?.kvUsedBlocks, 900, "an observation outlives the prediction");
    assert.throws(() => load.observe("w1", { ...view.observed!, waiting: -1 }), RouterInputError);
  });

  it("reads a worker's load by dense slot exactly as by id, and bumps the slot epoch on entry changes", () => {
    const load = createWorkerLoad({ replicaId: "me" });
    const out = load.loadAt(-1, {
      workerId: "x",
      predictedActiveBlocks: 9,
      predictedPendingPrefillTokens: 9,
      predictedRequests: 9,
      observed: undefined,
    });
    assert.deepEqual(out, {
      workerId: "",
      predictedActiveBlocks: 0,
      predictedPendingPrefillTokens: 0,
      predictedRequests: 0,
      observed: undefined,
    });
    assert.equal(load.slotOf("a"), -1);
    const e0 = load.slotEpoch;
    load.route(add("r1", "a", [1, 2, 3], 10), 0);
    load.route(add("r2", "a", [1, 2, 4], 5), 0);
    load.observe("b", { ...OBSERVED, kvUsedBlocks: 7 });
    const e1 = load.slotEpoch;
    assert.notEqual(e1, e0);
    for (const w of ["a", "b"]) {
      assert.deepEqual(load.loadAt(load.slotOf(w), out), load.load(w), w);
    }
    load.route(add("r3", "a", [5], 1), 0); // existing entry: same slots
    assert.equal(load.slotEpoch, e1);
    const slotA = load.slotOf("a");
    for (const r of ["r1", "r2", "r3"]) load.free(r, 1); // a's last request ends: its entry goes
    assert.equal(load.slotOf("a"), -1);
    assert.notEqual(load.slotEpoch, e1);
    load.route(add("r4", "c", [1], 1), 1); // c takes a's slot
    assert.equal(load.slotOf("c"), slotA);
    assert.deepEqual(load.loadAt(slotA, out), load.load("c"));
    load.removeWorker("b");
    assert.equal(load.slotOf("b"), -1);
  });

  it("rejects malformed routing input and duplicate in-flight ids", () => {
    const load = createWorkerLoad({ replicaId: "r1" });
    load.route(add("a", "w1", [1], 10), 0);
    assert.throws(() => load.route(add("a", "w2", [1], 10), 0), RouterInputError);
    assert.throws(() => load.route(add("", "w1", [1], 10), 0), RouterInputError);
    assert.throws(() => load.route({ ...add("x", "w1", [1], 10), prefillTokens: -1 }, 0), RouterInputError);
    assert.throws(() => load.route({ ...add("x", "w1", [1], 10), blocks: 1.5 }, 0), RouterInputError);
    assert.equal(load.load("w1").predictedRequests, 1);
  });
});

describe("worker load: replicas", () => {
  // Deterministic shuffles that keep each publisher's own order (NATS per-publisher ordering).
  function interleave(streams: RouterSyncDelta[][], seed: number): RouterSyncDelta[] {
    let s = seed;
    const cursors = streams.map(() => 0);
    const out: RouterSyncDelta[] = [];
    while (out.length < streams.reduce((n, st) => n + st.length, 0)) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const open = streams.map((_, i) => i).filter((i) => cursors[i]! < streams[i]!.length);
      const pick = open[s % open.length]!;
      out.push(streams[pick]![cursors[pick]!]!);
      cursors[pick]!++;
    }
    return out;
  }

  it("two replicas exchanging deltas in different orders converge on one picture", () => {
    const a = createWorkerLoad({ replicaId: "A" });
    const b = createWorkerLoad({ replicaId: "B" });
    const fromA: RouterSyncDelta[] = [];
    const fromB: RouterSyncDelta[] = [];
    const keep = (out: RouterSyncDelta[], d: RouterSyncDelta | undefined) => d !== undefined && out.push(d);
    keep(fromA, a.route(add("r1", "w1", [1, 2, 3], 300), 0));
    keep(fromA, a.route(add("r2", "w2", [1, 2], 200), 0));
    keep(fromB, b.route(add("r3", "w1", [1, 2, 7], 100), 0));
    keep(fromB, b.route(add("r4", "w1", [5], 60), 0));
    keep(fromA, a.prefillDone("r1", 1));
    keep(fromB, b.prefillDone("r3", 1));
    keep(fromA, a.route(add("r5", "w2", [1, 2, 8], 90), 2));
    keep(fromB, b.free("r4", 3));
    keep(fromA, a.free("r2", 3));
    // Released through the other replica (the ingress may call any replica's Release): B never saw r5's add
    // yet, so its free and prefill-done must be remembered until the add arrives.
    const early = createWorkerLoad({ replicaId: "B2" });
    const fromB2: RouterSyncDelta[] = [];
    keep(fromB2, early.route(add("r6", "w2", [4], 10), 3));
    keep(fromB2, early.free("r6", 4));

    const workers = ["w1", "w2"];
    const pictures = [1, 2, 3, 4, 5].map((seed) => {
      const replica = createWorkerLoad({ replicaId: `C${seed}` });
      for (const d of interleave([fromA, fromB, fromB2], seed)) replica.applySync(d);
      return picture(replica, workers);
    });
    for (const p of pictures) assert.deepEqual(p, pictures[0]);
    // r1 (prefill done) + r3 (prefill done) on w1: blocks {1,2,3,7} + 2 partial; r5 on w2: {1,2,8} + 1.
    assert.deepEqual(pictures[0], [
      ["w1", 6, 0, 2],
      ["w2", 4, 90, 1],
    ]);

    // A and B themselves converge after applying each other's stream (own echoes are ignored).
    for (const d of [...fromB, ...fromA, ...fromB2]) a.applySync(d);
    for (const d of [...fromA, ...fromB2, ...fromB]) b.applySync(d);
    assert.deepEqual(picture(a, workers), pictures[0]);
    assert.deepEqual(picture(b, workers), pictures[0]);
  });

  it("a free that arrives before its add cancels the add; a prefill-done before it is applied with it", () => {
    const c = createWorkerLoad({ replicaId: "C" });
    const addD = (seq: bigint, requestId: string): RouterSyncDelta => ({
      replicaId: "A",
      seq,
      timestampMs: 0,
      event: { case: "add", value: add(requestId, "w1", [1, 2], 100) },
    });
    c.applySync({
      replicaId: "B",
      seq: 1n,
      timestampMs: 0,
      event: { case: "free", value: { requestId: "x", workerId: "w1" } },
    });
    c.applySync({
      replicaId: "B",
      seq: 2n,
      timestampMs: 0,
      event: { case: "prefillDone", value: { requestId: "y", workerId: "w1" } },
    });
    c.applySync(addD(1n, "x"));
    c.applySync(addD(2n, "y"));
    assert.equal(c.workerOf("x"), undefined);
    assert.deepEqual(picture(c, ["w1"]), [["w1", 3, 0, 1]]);
  });

  it("deduplicates by (replica, seq), ignores its own echo and reports a gap", () => {
    const a = createWorkerLoad({ replicaId: "A" });
    const c = createWorkerLoad({ replicaId: "C" });
    const d1 = a.route(add("r1", "w1", [1], 100), 0);
    const d2 = a.route(add("r2", "w1", [2], 100), 0);
    const d3 = a.route(add("r3", "w1", [3], 100), 0);
    assert.deepEqual(c.applySync(d1), { kind: "applied", gap: false });
    assert.deepEqual(c.applySync(d1), { kind: "duplicate" });
    assert.deepEqual(c.applySync(d3), { kind: "applied", gap: true, expectedSeq: 2n, receivedSeq: 3n });
    assert.deepEqual(c.applySync(d2), { kind: "duplicate" }, "older than the last seq of A");
    assert.equal(c.load("w1").predictedRequests, 2);
    assert.deepEqual(a.applySync(d1), { kind: "duplicate" });
    assert.equal(a.load("w1").predictedRequests, 3);
    assert.throws(() => c.applySync({ ...d1, seq: 9n, event: { case: undefined } }), RouterInputError);
  });
});
