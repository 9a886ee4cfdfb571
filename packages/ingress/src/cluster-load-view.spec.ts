import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { ClusterLoadSchema } from "@sluice/proto";
import { createClusterLoadView } from "./cluster-load-view.js";

function message(leaderId: string, seq: bigint, sheddableMs: number): Uint8Array {
  return toBinary(
    ClusterLoadSchema,
    create(ClusterLoadSchema, {
      leaderId,
      seq,
      models: [{ model: "m", classHeadroom: [{ requestClass: "sheddable", predictedTtftMs: sheddableMs }] }],
    }),
  );
}

describe("cluster load view", () => {
  it("keeps the newest prediction per model, stamped with the local arrival time", () => {
    const view = createClusterLoadView();
    assert.equal(view.predictionFor("m"), undefined);
    view.receive(message("a", 1n, 500), 100);
    assert.deepEqual(view.predictionFor("m"), { predictedTtftMsByClass: { sheddable: 500 }, atMs: 100 });
    view.receive(message("a", 2n, 900), 200);
    assert.deepEqual(view.predictionFor("m")?.predictedTtftMsByClass, { sheddable: 900 });
  });

  it("ignores a redelivered older seq from the same leader, but follows a new leader from its first seq", () => {
    const view = createClusterLoadView();
    view.receive(message("a", 5n, 500), 100);
    view.receive(message("a", 4n, 9_999), 150);
    assert.deepEqual(view.predictionFor("m"), { predictedTtftMsByClass: { sheddable: 500 }, atMs: 100 });
    view.receive(message("b", 1n, 700), 300);
    assert.deepEqual(view.predictionFor("m"), { predictedTtftMsByClass: { sheddable: 700 }, atMs: 300 });
  });

  it("throws on bytes that are not a ClusterLoad, so the caller counts and drops them", () => {
    const view = createClusterLoadView();
    assert.throws(() => view.receive(new Uint8Array([0xff, 0xff, 0xff]), 0));
    assert.equal(view.predictionFor("m"), undefined);
  });
});
