import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ResolvedPolicy } from "../policy/types.js";
import { withPolicyDefaults } from "../policy/with-defaults.js";
import { InvalidPeerSnapshotError } from "./errors.js";
import {
  createGlobalInflightView,
  type GlobalInflightView,
  type IngressStateSnapshot,
} from "./frontend-sync.js";
import { decideIngress, type IngressView } from "./ingress-decision.js";

const BLOCK_SIZE = 16;

function viewFor(sync: GlobalInflightView, nowMs: number, kvCapacityBlocks = 1_000_000): IngressView {
  const load = sync.load(nowMs);
  return {
    globalStateAvailable: load.globalStateAvailable,
    inflightRequests: load.inflightRequests,
    inflightKvBlocks: load.inflightKvBlocks,
    liveInstances: load.liveInstances,
    kvCapacityBlocks,
    kvBlockSize: BLOCK_SIZE,
    completionRatePerS: 10,
    kvBlockReleaseRatePerS: 0,
    predictedTtftMsByClass: undefined,
    clusterLoadAtMs: 0,
  };
}

/** Tries one request of `blocks` KV blocks on `sync`; admits it into the sync state if allowed. */
function tryAdmit(
  sync: GlobalInflightView,
  policy: ResolvedPolicy,
  nowMs: number,
  className = "critical",
  blocks = 1,
  kvCapacityBlocks = 1_000_000,
): boolean {
  const decision = decideIngress(
    { className, promptTokens: blocks * BLOCK_SIZE, maxTokens: 0 },
    viewFor(sync, nowMs, kvCapacityBlocks),
    policy,
    nowMs,
  );
  if (decision.admitted) sync.admitted(className, blocks);
  return decision.admitted;
}

/** Every instance publishes and every other instance receives it, `rounds` times (settles acks). */
function exchange(instances: GlobalInflightView[], nowMs: number, rounds = 2): void {
  for (let r = 0; r < rounds; r++) {
    const snaps = instances.map((s) => s.snapshot(nowMs));
    for (const s of instances) for (const snap of snaps) s.receive(snap, nowMs);
  }
}

/** mulberry32: a tiny seeded PRNG so every run of the simulation is identical. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Message {
  deliverAtMs: number;
  to: number;
  snapshot: IngressStateSnapshot;
}

interface SimOptions {
  seed: number;
  instances: number;
  maxInflight: number;
  kvCapacityBlocks: number;
  maxDelayMs: number;
  dropRate: number;
  reorder: boolean;
  durationMs: number;
}

/**
 * N ingress instances on a deterministic in-memory bus with random per-message delays (FIFO per
 * publisher/receiver pair unless `reorder`), random drops, periodic publishing and synchronized
 * bursts: every instance receives the same burst in the same millisecond, deciding from whatever
 * stale view it has. Returns the largest true global in-flight load ever reached.
 */
function simulate(o: SimOptions): { maxRequests: number; maxKvBlocks: number; admitted: number } {
  const random = prng(o.seed);
  const policy = withPolicyDefaults({ ingress: { maxInflight: o.maxInflight, kvOvercommit: 1 } });
  const syncs = Array.from({ length: o.instances }, (_, i) =>
    createGlobalInflightView({ instanceId: `ingress-${i}`, maxSnapshotAgeMs: 10_000 }),
  );
  const ids = syncs.map((s) => s.instanceId);
  for (const s of syncs) s.setLeasedPeers(ids, 0);
  const publishEveryMs = syncs.map(() => 1 + Math.floor(random() * 5));
  const lastDelivery = new Map<string, number>();
  let bus: Message[] = [];
  const running: { endMs: number; instance: number; className: string; blocks: number }[] = [];
  const classes = ["critical", "standard", "sheddable"];
  let trueRequests = 0;
  let trueKvBlocks = 0;
  let maxRequests = 0;
  let maxKvBlocks = 0;
  let admitted = 0;

  for (let now = 0; now < o.durationMs; now++) {
    // Deliveries due now.
    const due = bus.filter((m) => m.deliverAtMs <= now);
    bus = bus.filter((m) => m.deliverAtMs > now);
    for (const m of due) syncs[m.to]!.receive(m.snapshot, now);

    // Completions.
    for (let k = running.length - 1; k >= 0; k--) {
      const r = running[k]!;
      if (r.endMs > now) continue;
      syncs[r.instance]!.released(r.className, r.blocks);
      trueRequests -= 1;
      trueKvBlocks -= r.blocks;
      running.splice(k, 1);
    }

    // Arrivals: every 50 ms a synchronized burst on all instances, otherwise a trickle.
    const burst = now % 50 === 0;
    const burstSize = o.maxInflight > 0 ? o.maxInflight : Math.ceil(o.kvCapacityBlocks / 4);
    for (let i = 0; i < o.instances; i++) {
      const arrivals = burst ? burstSize : random() < 0.3 ? 1 + Math.floor(random() * 3) : 0;
      for (let a = 0; a < arrivals; a++) {
        const className = classes[Math.floor(random() * classes.length)]!;
        const blocks = 1 + Math.floor(random() * 8);
        if (!tryAdmit(syncs[i]!, policy, now, className, blocks, o.kvCapacityBlocks)) continue;
        admitted += 1;
        trueRequests += 1;
        trueKvBlocks += blocks;
        maxRequests = Math.max(maxRequests, trueRequests);
        maxKvBlocks = Math.max(maxKvBlocks, trueKvBlocks);
        running.push({ endMs: now + 5 + Math.floor(random() * 60), instance: i, className, blocks });
      }
    }

    // Publishing.
    for (let i = 0; i < o.instances; i++) {
      if (now % publishEveryMs[i]! !== 0) continue;
      const snapshot = syncs[i]!.snapshot(now);
      for (let to = 0; to < o.instances; to++) {
        if (to === i || random() < o.dropRate) continue;
        let deliverAtMs = now + Math.floor(random() * (o.maxDelayMs + 1));
        const pair = `${i}>${to}`;
        if (!o.reorder) deliverAtMs = Math.max(deliverAtMs, lastDelivery.get(pair) ?? 0);
        lastDelivery.set(pair, deliverAtMs);
        bus.push({ deliverAtMs, to, snapshot });
      }
    }
  }
  return { maxRequests, maxKvBlocks, admitted };
}

describe("GlobalInflightView", () => {
  it("merges own exact counts with peers' snapshots and ignores out-of-order seqs", () => {
    const a = createGlobalInflightView({ instanceId: "a" });
    const b = createGlobalInflightView({ instanceId: "b" });
    b.admitted("standard", 4);
    b.admitted("critical", 2);
    const s1 = b.snapshot(0);
    b.admitted("standard", 3);
    const s2 = b.snapshot(1);
    a.admitted("critical", 5);
    assert.equal(a.receive(s2, 2), "applied");
    assert.equal(a.receive(s1, 3), "stale_seq");
    assert.equal(a.receive(s2, 3), "stale_seq");
    assert.equal(a.receive(a.snapshot(3), 3), "own");
    const load = a.load(3);
    // a never heard from b before, so b's snapshot acknowledges nothing of a's: its 1 admission is
    // mirrored (counted against b) until b acknowledges it.
    assert.deepEqual(
      { ...load },
      {
        globalStateAvailable: true,
        inflightRequests: 1 + 3 + 1,
        inflightKvBlocks: 5 + 9 + 5,
        liveInstances: 2,
      },
    );
    assert.deepEqual(a.globalByClass(3), {
      critical: { requests: 2, kvBlocks: 7 },
      standard: { requests: 2, kvBlocks: 7 },
    });
    // b acknowledges a's snapshot: the mirror is retired.
    b.receive(a.snapshot(4), 4);
    a.receive(b.snapshot(5), 5);
    assert.equal(a.load(5).inflightRequests, 1 + 3);
    assert.equal(a.load(5).inflightKvBlocks, 5 + 9);
  });

  it("drops a peer whose snapshot is older than maxSnapshotAgeMs, and one whose lease is gone", () => {
    const a = createGlobalInflightView({ instanceId: "a", maxSnapshotAgeMs: 1000 });
    const b = createGlobalInflightView({ instanceId: "b" });
    const c = createGlobalInflightView({ instanceId: "c" });
    b.admitted("standard", 1);
    c.admitted("standard", 1);
    c.admitted("standard", 1);
    a.receive(b.snapshot(0), 0);
    a.receive(c.snapshot(0), 500);
    assert.equal(a.load(1000).inflightRequests, 3);
    assert.equal(a.load(1000).liveInstances, 3);
    assert.equal(a.load(1001).inflightRequests, 2, "b is stale after 1000 ms");
    assert.equal(a.load(1001).liveInstances, 2);
    assert.equal(a.load(1501).inflightRequests, 0, "c is stale too");
    a.receive(c.snapshot(1600), 1600);
    assert.equal(a.load(1600).inflightRequests, 2);
    a.peerLeaseLost("c");
    assert.equal(a.load(1600).inflightRequests, 0);
    assert.equal(a.load(1600).liveInstances, 1);
    assert.equal(
      a.receive(c.snapshot(1700), 1700),
      "applied",
      "a restarted peer comes back with its next seq",
    );
    assert.deepEqual(
      a.peers(1700).map((p) => [p.instanceId, p.inflightRequests]),
      [["c", 2]],
    );
  });

  it("falls back to fail-static while a peer that still holds its lease is silent", () => {
    // An instance whose event loop lags sees every peer go silent at once; with their leases alive
    // it must not decide as if alone (bench/ingress-sync.ts measured 66–87 % overshoot that way).
    const a = createGlobalInflightView({ instanceId: "a", maxSnapshotAgeMs: 1000 });
    const b = createGlobalInflightView({ instanceId: "b" });
    a.setLeasedPeers(["a", "b"], 0);
    b.admitted("standard", 1);
    a.receive(b.snapshot(0), 0);
    assert.equal(a.load(500).globalStateAvailable, true);
    assert.equal(a.load(500).inflightRequests, 1);
    const silent = a.load(1500);
    assert.equal(silent.globalStateAvailable, false, "b is silent but leased: no global view");
    assert.equal(silent.liveInstances, 2, "b still counts for the fail-static share");
    const p = withPolicyDefaults({ ingress: { maxInflight: 10 }, failMode: "static" });
    let n = 0;
    while (tryAdmit(a, p, 1500)) n += 1;
    assert.equal(n, 5, "fail-static: limit ÷ 2 instances");
    a.receive(b.snapshot(1600), 1600);
    assert.equal(a.load(1600).globalStateAvailable, true, "heard again: global view back");
    a.setLeasedPeers(["a"], 3000);
    assert.equal(a.load(3000).globalStateAvailable, true, "lease gone: the silent peer leaves the view");
    assert.equal(a.load(3000).liveInstances, 1);
  });

  it("rejects malformed snapshots and double releases with clear errors", () => {
    const a = createGlobalInflightView({ instanceId: "a" });
    const base = {
      instanceId: "b",
      seq: 1,
      atMs: 0,
      inflightByClass: {},
      kvBlocksByClass: {},
      ackedSeqs: {},
    };
    assert.throws(() => a.receive({ ...base, seq: 0 }, 0), InvalidPeerSnapshotError);
    assert.throws(
      () => a.receive({ ...base, inflightByClass: { standard: -1 } }, 0),
      /inflightByClass.standard/,
    );
    assert.throws(
      () => a.receive({ ...base, kvBlocksByClass: { standard: 1.5 } }, 0),
      InvalidPeerSnapshotError,
    );
    assert.throws(() => a.receive({ ...base, ackedSeqs: { a: -2 } }, 0), /ackedSeqs.a/);
    assert.throws(() => a.receive({ ...base, instanceId: "" }, 0), InvalidPeerSnapshotError);
    assert.equal(a.load(0).liveInstances, 1, "nothing malformed was applied");
    assert.throws(() => a.released("standard", 1), /without a matching admission/);
    a.admitted("standard", 2);
    assert.throws(() => a.released("standard", 3), /without a matching admission/);
    a.released("standard", 2);
    assert.deepEqual(a.local(), { requests: 0, kvBlocks: 0 });
    assert.throws(() => createGlobalInflightView({ instanceId: "" }), /instanceId/);
    assert.throws(
      () => createGlobalInflightView({ instanceId: "x", maxSnapshotAgeMs: 0 }),
      /maxSnapshotAgeMs/,
    );
  });

  it("limits each instance to headroom ÷ instances when all admit from the same stale view", () => {
    for (const [instances, limit, preload] of [
      [4, 100, 10],
      [4, 101, 13],
      [3, 50, 0],
      [7, 1000, 333],
    ] as const) {
      const p = withPolicyDefaults({ ingress: { maxInflight: limit } });
      const syncs = Array.from({ length: instances }, (_, i) =>
        createGlobalInflightView({ instanceId: `i${i}` }),
      );
      for (let k = 0; k < preload; k++) assert.ok(tryAdmit(syncs[k % instances]!, p, 0));
      exchange(syncs, 0);
      for (const s of syncs) assert.equal(s.load(0).inflightRequests, preload, "synchronised view");
      // Burst: nobody hears from anybody while each admits as much as it can.
      const perInstance = syncs.map((s) => {
        let n = 0;
        while (tryAdmit(s, p, 1)) n += 1;
        return n;
      });
      const quota = Math.floor((limit - preload) / instances);
      assert.deepEqual(
        perInstance,
        syncs.map(() => quota),
        `${instances} instances, limit ${limit}`,
      );
      assert.ok(preload + quota * instances <= limit);
      // After a sync the rest of the headroom is shared out again, still never past the limit.
      let total = preload + quota * instances;
      for (let round = 0; round < 20; round++) {
        exchange(syncs, 2 + round);
        for (const s of syncs) while (tryAdmit(s, p, 2 + round)) total += 1;
        assert.ok(total <= limit, `round ${round}: ${total} > ${limit}`);
      }
      assert.ok(
        total >= limit - instances + 1,
        `headroom is used up to the last instance's share: ${total}/${limit}`,
      );
    }
  });

  it("never lets the global in-flight count exceed the limit on a delayed bus (simulated instances)", () => {
    for (let seed = 1; seed <= 12; seed++) {
      const instances = 2 + (seed % 5);
      const maxInflight = 40 + seed * 7;
      const r = simulate({
        seed,
        instances,
        maxInflight,
        kvCapacityBlocks: 1_000_000,
        maxDelayMs: 1 + (seed % 4) * 10,
        dropRate: seed % 3 === 0 ? 0.1 : 0,
        reorder: seed % 4 === 0,
        durationMs: 1500,
      });
      assert.ok(
        r.maxRequests <= maxInflight,
        `seed ${seed}: ${r.maxRequests} in flight > limit ${maxInflight}`,
      );
      // Not vacuous: the limit is actually approached.
      assert.ok(
        r.maxRequests >= 0.7 * maxInflight,
        `seed ${seed}: only reached ${r.maxRequests}/${maxInflight}`,
      );
    }
  });

  it("never lets the global in-flight KV blocks exceed the KV limit on a delayed bus", () => {
    for (let seed = 21; seed <= 28; seed++) {
      const kvCapacityBlocks = 300 + seed * 5;
      const r = simulate({
        seed,
        instances: 2 + (seed % 4),
        maxInflight: 0,
        kvCapacityBlocks,
        maxDelayMs: 15,
        dropRate: 0.05,
        reorder: seed % 2 === 0,
        durationMs: 1500,
      });
      assert.ok(
        r.maxKvBlocks <= kvCapacityBlocks,
        `seed ${seed}: ${r.maxKvBlocks} blocks > ${kvCapacityBlocks}`,
      );
      assert.ok(r.maxKvBlocks >= 0.6 * kvCapacityBlocks, `seed ${seed}: only reached ${r.maxKvBlocks}`);
    }
  });

  it("falls back to the policy's fail mode when the bus is down", () => {
    const syncs = ["a", "b", "c", "d"].map((id) => createGlobalInflightView({ instanceId: id }));
    exchange(syncs, 0);
    const a = syncs[0]!;
    assert.equal(a.load(0).liveInstances, 4);
    a.setBusConnected(false);
    const load = a.load(1);
    assert.equal(load.globalStateAvailable, false);
    assert.equal(load.liveInstances, 4, "last known instance count");

    // static: limit 100 ÷ 4 instances = 25 for critical (share 1.0), own counts only.
    const staticPolicy = withPolicyDefaults({ ingress: { maxInflight: 100 } });
    let n = 0;
    while (tryAdmit(a, staticPolicy, 1)) n += 1;
    assert.equal(n, 25);
    // standard gets 0.9 × 25 = 22.5 → 22: already full.
    assert.equal(tryAdmit(a, staticPolicy, 1, "standard"), false);

    const open = createGlobalInflightView({ instanceId: "o" });
    open.setBusConnected(false);
    const openPolicy = withPolicyDefaults({ ingress: { maxInflight: 100 }, failMode: "open" });
    n = 0;
    while (tryAdmit(open, openPolicy, 1)) n += 1;
    assert.equal(n, 100, "open: the full limit against local counts");

    const closed = createGlobalInflightView({ instanceId: "c" });
    closed.setBusConnected(false);
    const closedPolicy = withPolicyDefaults({ ingress: { maxInflight: 100 }, failMode: "closed" });
    const decision = decideIngress(
      { className: "critical", promptTokens: 1, maxTokens: 1 },
      viewFor(closed, 1),
      closedPolicy,
      1,
    );
    assert.equal(decision.admitted, false);
    assert.equal(!decision.admitted && decision.reason, "fail_closed");

    // Reconnected: the global view is back.
    a.setBusConnected(true);
    assert.equal(a.load(2).globalStateAvailable, true);
  });
});
