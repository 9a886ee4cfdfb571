import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clusterAggregateOptionsWithDefaults, type ResolvedPolicy, withPolicyDefaults } from "@sluice/core";
import { createClusterState } from "./cluster-state.js";
import { aggregateOptionsFromPolicies } from "./policy-shares.js";

const enc = (o: object) => new TextEncoder().encode(JSON.stringify(o));

describe("aggregate options from live policies", () => {
  it("takes kv_overcommit and the L1 class shares of each model's policy", () => {
    const policies = new Map<string, ResolvedPolicy>([
      ["tight", withPolicyDefaults({ ingress: { kvOvercommit: 1, classLimitShare: { standard: 0.5 } } })],
    ]);
    const fallback = withPolicyDefaults({});
    const source = aggregateOptionsFromPolicies(
      clusterAggregateOptionsWithDefaults(),
      (model) => policies.get(model) ?? fallback,
    );
    const state = createClusterState(clusterAggregateOptionsWithDefaults(), "t", source.optionsFor);
    state.putEngine("a", enc({ model: "tight", kv_total_blocks: 100, max_num_seqs: 10 }));
    state.putEngine("b", enc({ model: "wide", kv_total_blocks: 100, max_num_seqs: 10 }));
    const headroom = (model: string, cls: string) =>
      state
        .view(0)
        .find((v) => v.model === model)
        ?.classHeadroom.find((h) => h.requestClass === cls)?.kvBlocks;
    assert.equal(headroom("tight", "standard"), 50, "1 × 100 blocks × the L1 share 0.5");
    assert.equal(headroom("tight", "critical"), 100);
    assert.equal(headroom("wide", "standard"), 112, "defaults: floor(1.25 × 100 × 0.9)");
    assert.deepEqual(
      state.view(0).map((v) => v.model),
      ["tight", "wide"],
    );
    // A new policy object (a new revision) takes effect at the next view.
    policies.set("wide", withPolicyDefaults({ ingress: { kvOvercommit: 2 } }));
    assert.equal(headroom("wide", "standard"), 180);
    assert.equal(source.optionsFor("wide"), source.optionsFor("wide"), "built once per policy object");
  });
});
