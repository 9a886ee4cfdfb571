import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { IngressStateSchema } from "@sluice/proto";
import { createModelSync, TENANT_BUCKET } from "./model-sync.js";

describe("model sync", () => {
  it("exchanges per-model load over IngressState and retires mirrors on acknowledgement", () => {
    const a = createModelSync({ instanceId: "a", maxSnapshotAgeMs: 1_000 });
    const b = createModelSync({ instanceId: "b", maxSnapshotAgeMs: 1_000 });
    for (const s of [a, b]) {
      s.setBusConnected(true);
      s.setLeasedPeers(new Set(["a", "b"]), 0);
    }
    // Wire round trip, as NATS carries it.
    const send = (from: typeof a, to: typeof a, now: number) =>
      to.receive(fromBinary(IngressStateSchema, toBinary(IngressStateSchema, from.snapshot(now, 250))), now);

    a.view("m1").admitted("standard", 10);
    a.view("m2").admitted("critical", 5);
    assert.deepEqual(send(a, b, 1), { applied: true, changed: true });
    assert.equal(b.load("m1", 1).inflightRequests, 1);
    assert.equal(b.load("m2", 1).inflightKvBlocks, 5);
    assert.equal(b.load("m3", 1).inflightRequests, 0, "a model the peer does not serve");
    // b admits on m1 before a has acknowledged anything of b's: a counts it as mirrored load too.
    b.view("m1").admitted("standard", 3);
    send(b, a, 2);
    assert.equal(a.load("m1", 2).inflightRequests, 2);
    // Same load again is an ack-only message: applied, but no answer is needed.
    assert.deepEqual(send(a, b, 3), { applied: true, changed: false });
    // b's mirror of its own admission is retired once a acknowledged b's snapshot.
    assert.equal(b.load("m1", 3).inflightRequests, 2);
    assert.deepEqual(b.livePeers(3), ["a"]);
    // A peer whose lease is gone leaves at once.
    b.setLeasedPeers(new Set(["b"]), 4);
    assert.equal(b.load("m1", 4).inflightRequests, 1);
    assert.deepEqual(b.livePeers(4), []);
  });

  it("counts only its own load while the bus is down", () => {
    const a = createModelSync({ instanceId: "a", maxSnapshotAgeMs: 1_000 });
    a.setBusConnected(false);
    a.view("m").admitted("standard", 1);
    const load = a.load("m", 0);
    assert.equal(load.globalStateAvailable, false);
    assert.equal(load.inflightRequests, 1);
  });

  it("carries per-tenant counts on the same stream, and a late view learns peers at once", () => {
    const a = createModelSync({ instanceId: "a", maxSnapshotAgeMs: 1_000 });
    const b = createModelSync({ instanceId: "b", maxSnapshotAgeMs: 1_000 });
    for (const s of [a, b]) {
      s.setBusConnected(true);
      s.setLeasedPeers(new Set(["a", "b"]), 0);
    }
    const send = (from: typeof a, to: typeof a, now: number) =>
      to.receive(fromBinary(IngressStateSchema, toBinary(IngressStateSchema, from.snapshot(now, 250))), now);
    a.view("m").admitted("standard", 1);
    a.tenantView("m", "acme").admitted(TENANT_BUCKET, 0);
    a.tenantView("m", "acme").admitted(TENANT_BUCKET, 0);
    const wire = a.snapshot(1, 250);
    assert.deepEqual(
      wire.tenantInflight.map((t) => [t.model, t.tenant, t.inflightRequests]),
      [["m", "acme", 2]],
    );
    b.receive(fromBinary(IngressStateSchema, toBinary(IngressStateSchema, wire)), 1);
    // b never used these views before the message: they were created from it.
    assert.equal(b.tenantView("m", "acme").load(1).inflightRequests, 2);
    assert.equal(b.tenantView("m", "other").load(1).inflightRequests, 0);
    // A view b creates only now still sees a as live (replayed), so its instance count is right.
    assert.equal(b.tenantView("m2", "late").load(2).liveInstances, 2);
    assert.equal(b.load("m-late", 2).liveInstances, 2);
    // b's own tenant admission is mirrored against a until a acknowledges it.
    b.tenantView("m", "acme").admitted(TENANT_BUCKET, 0);
    assert.equal(b.tenantView("m", "acme").load(2).inflightRequests, 4);
    send(b, a, 3);
    assert.equal(a.tenantView("m", "acme").load(3).inflightRequests, 3);
    send(a, b, 4);
    assert.equal(b.tenantView("m", "acme").load(4).inflightRequests, 3);
    // Released everywhere: nothing stays on the wire.
    b.tenantView("m", "acme").released(TENANT_BUCKET, 0);
    assert.deepEqual(b.snapshot(5, 250).tenantInflight, []);
  });
});
