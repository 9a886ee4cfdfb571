import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { policyKeys } from "./policy-keys.js";

describe("policyKeys", () => {
  const keys = policyKeys("/sluice/v1/");

  it("builds enforcing and shadow keys under one watchable prefix", () => {
    assert.equal(keys.policies, "/sluice/v1/policies/");
    assert.equal(keys.enforcing("llama"), "/sluice/v1/policies/llama");
    assert.equal(keys.shadow("_default"), "/sluice/v1/policies/_shadow/_default");
    assert.ok(keys.shadow("llama").startsWith(keys.policies));
  });

  it("parses keys back and ignores what is not a policy", () => {
    assert.deepEqual(keys.parse("/sluice/v1/policies/llama"), { kind: "enforcing", model: "llama" });
    assert.deepEqual(keys.parse("/sluice/v1/policies/_shadow/llama"), { kind: "shadow", model: "llama" });
    assert.equal(keys.parse("/sluice/v1/policies/_shadow"), undefined);
    assert.equal(keys.parse("/sluice/v1/policies/a/b"), undefined);
    assert.equal(keys.parse("/sluice/v1/engines/w1"), undefined);
  });

  it("refuses model names that would change the key's shape", () => {
    assert.throws(() => keys.enforcing("_shadow"), /reserved/);
    assert.throws(() => keys.enforcing("a/b"), /cannot be an etcd key segment/);
    assert.throws(() => keys.shadow(""), /cannot be an etcd key segment/);
  });
});
