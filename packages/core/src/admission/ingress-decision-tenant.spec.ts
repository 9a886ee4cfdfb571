import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PolicyInput, ResolvedPolicy } from "../policy/types.js";
import { withPolicyDefaults } from "../policy/with-defaults.js";
import { InvalidAdmissionFactsError } from "./errors.js";
import {
  decideIngress,
  type IngressDecision,
  type IngressFacts,
  type IngressReject,
  type IngressView,
  type TenantLoad,
  tenantInflightLimitOf,
} from "./ingress-decision.js";

const NOW = 1_000_000;

const baseView: IngressView = {
  globalStateAvailable: true,
  inflightRequests: 0,
  inflightKvBlocks: 0,
  liveInstances: 1,
  kvCapacityBlocks: 800,
  kvBlockSize: 16,
  completionRatePerS: 10,
  kvBlockReleaseRatePerS: 0,
  predictedTtftMsByClass: undefined,
  clusterLoadAtMs: NOW,
};

function policy(input: PolicyInput = {}): ResolvedPolicy {
  return withPolicyDefaults({
    ingress: { maxInflight: 100 },
    tenants: [{ tenant: "capped", maxInflight: 4 }, { tenant: "tiny", maxInflight: 1 }, { tenant: "free" }],
    ...input,
  });
}

function facts(tenant: string | undefined, count?: number): IngressFacts {
  return { className: "standard", promptTokens: 10, maxTokens: 6, tenant, count };
}

function tenantLoad(inflightRequests: number, over: Partial<TenantLoad> = {}): TenantLoad {
  return { globalStateAvailable: true, inflightRequests, liveInstances: 1, ...over };
}

function decide(f: IngressFacts, view: Partial<IngressView>, p = policy()): IngressDecision {
  return decideIngress(f, { ...baseView, ...view }, p, NOW);
}

function rejected(d: IngressDecision): IngressReject {
  assert.equal(d.admitted, false, "expected a rejection");
  return d as IngressReject;
}

describe("decideIngress: per-tenant in-flight limit", () => {
  it("rejects the capped tenant at its limit while others are still admitted", () => {
    const view = { inflightRequests: 10 };
    assert.equal(decide(facts("capped"), { ...view, tenantLoad: tenantLoad(3) }).admitted, true);
    const r = rejected(decide(facts("capped"), { ...view, tenantLoad: tenantLoad(4) }));
    assert.deepEqual([r.reason, r.observed, r.limit, r.class], ["tenant_inflight", 5, 4, "standard"]);
    // Same cluster load: a tenant without a limit, an unknown tenant and an anonymous request pass.
    assert.equal(decide(facts("free"), view).admitted, true);
    assert.equal(decide(facts("stranger"), view).admitted, true);
    assert.equal(decide(facts(undefined), view).admitted, true);
  });

  it("is checked before the cluster in-flight limit", () => {
    const r = rejected(decide(facts("capped"), { inflightRequests: 100, tenantLoad: tenantLoad(4) }));
    assert.equal(r.reason, "tenant_inflight");
    const c = rejected(decide(facts("capped"), { inflightRequests: 100, tenantLoad: tenantLoad(1) }));
    assert.equal(c.reason, "inflight_limit");
  });

  it("charges a tenant admission once, not once per frontend, so the exact limit is reachable", () => {
    const four = { liveInstances: 4, inflightRequests: 10 };
    assert.equal(
      decide(facts("capped"), { ...four, tenantLoad: tenantLoad(3, { liveInstances: 4 }) }).admitted,
      true,
    );
    const r = rejected(decide(facts("capped"), { ...four, tenantLoad: tenantLoad(4, { liveInstances: 4 }) }));
    assert.deepEqual([r.observed, r.limit], [5, 4]);
  });

  it("fail-static divides the tenant limit by the instance count rounding up; open keeps it whole", () => {
    const down = { globalStateAvailable: false, liveInstances: 3, inflightRequests: 2 };
    const local = (n: number) => tenantLoad(n, { globalStateAvailable: false, liveInstances: 3 });
    // ceil(4 / 3) = 2 per frontend.
    assert.equal(decide(facts("capped"), { ...down, tenantLoad: local(1) }).admitted, true);
    assert.deepEqual([rejected(decide(facts("capped"), { ...down, tenantLoad: local(2) })).limit], [2]);
    // A limit below the instance count still leaves one per frontend, never zero.
    assert.equal(decide(facts("tiny"), { ...down, tenantLoad: local(0) }).admitted, true);
    assert.equal(decide(facts("tiny"), { ...down, tenantLoad: local(1) }).admitted, false);
    const open = policy({ failMode: "open" });
    assert.equal(decide(facts("capped"), { ...down, tenantLoad: local(3) }, open).admitted, true);
    // closed: rule 1 already refuses everything that needs global state.
    const closed = policy({ failMode: "closed" });
    assert.equal(
      rejected(decide(facts("capped"), { ...down, tenantLoad: local(0) }, closed)).reason,
      "fail_closed",
    );
  });

  it("predicts Retry-After from the tenant's share of completions", () => {
    // 2 of 10 in-flight requests are the tenant's: ~2 of the 10 completions/s free its slots.
    const r = rejected(
      decide(facts("capped"), {
        inflightRequests: 10,
        tenantLoad: tenantLoad(4),
        completionRatePerS: 10,
      }),
    );
    // projected 5 − limit 4 = 1 request at 10/s × 4/10 = 4/s → 250 ms.
    assert.equal(r.retryAfterMs, 250);
    // More hits than the limit can ever hold: the maximum, not a wait that would never end.
    const huge = rejected(decide(facts("capped", 5), { inflightRequests: 0, tenantLoad: tenantLoad(0) }));
    assert.equal(huge.retryAfterMs, 30_000);
  });

  it("charges `count` requests on every rule", () => {
    assert.equal(decide(facts("capped", 4), { tenantLoad: tenantLoad(0) }).admitted, true);
    assert.equal(rejected(decide(facts("capped", 2), { tenantLoad: tenantLoad(3) })).observed, 5);
    // Cluster rule: 98 + 2 × 2 instances > 90 (standard share of 100).
    const r = rejected(decide(facts("free", 2), { inflightRequests: 87, liveInstances: 2 }));
    assert.deepEqual([r.reason, r.observed, r.limit], ["inflight_limit", 91, 90]);
    assert.throws(() => decide(facts("free", 0), {}), InvalidAdmissionFactsError);
    assert.throws(() => decide(facts("free", 1.5), {}), InvalidAdmissionFactsError);
  });

  it("refuses a view without the load of a limited tenant instead of leaving it unlimited", () => {
    assert.throws(() => decide(facts("capped"), {}), /tenantLoad/);
  });

  it("reads the tenant's limit from the policy", () => {
    const p = policy();
    assert.equal(tenantInflightLimitOf(p, "capped"), 4);
    assert.equal(tenantInflightLimitOf(p, "free"), 0);
    assert.equal(tenantInflightLimitOf(p, "stranger"), 0);
    assert.equal(tenantInflightLimitOf(p, undefined), 0);
  });
});
