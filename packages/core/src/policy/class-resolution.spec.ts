import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ClassRequest, resolveClass } from "./class-resolution.js";
import { withPolicyDefaults } from "./with-defaults.js";

const TRUSTED_KEY = "1".repeat(64);
const PLAIN_KEY = "2".repeat(64);
const BATCH_KEY = "3".repeat(64);

const policy = withPolicyDefaults({
  tenants: [
    { tenant: "ops", apiKeySha256: [TRUSTED_KEY], requestClass: "standard", trusted: true },
    { tenant: "shop", apiKeySha256: [PLAIN_KEY], requestClass: "standard" },
    { tenant: "batch", apiKeySha256: [BATCH_KEY], requestClass: "sheddable" },
  ],
});

function cls(request: ClassRequest): [string, string | undefined, string] {
  const r = resolveClass(request, policy);
  return [r.objectives.name, r.tenant?.tenant, r.source];
}

describe("resolveClass", () => {
  it("puts anonymous requests in the default class and tenants in their mapped class", () => {
    assert.deepEqual(cls({}), ["standard", undefined, "default"]);
    assert.deepEqual(cls({ apiKeySha256: BATCH_KEY }), ["sheddable", "batch", "tenant"]);
    assert.deepEqual(cls({ apiKeySha256: BATCH_KEY.toUpperCase() }), ["sheddable", "batch", "tenant"]);
    assert.deepEqual(cls({ tenant: "shop" }), ["standard", "shop", "tenant"]);
    assert.deepEqual(cls({ apiKeySha256: "f".repeat(64) }), ["standard", undefined, "default"]);
  });

  it("lets a trusted tenant choose any class with the header", () => {
    assert.deepEqual(cls({ apiKeySha256: TRUSTED_KEY, headerClass: "critical" }), [
      "critical",
      "ops",
      "header",
    ]);
    assert.deepEqual(cls({ apiKeySha256: TRUSTED_KEY, headerClass: "sheddable" }), [
      "sheddable",
      "ops",
      "header",
    ]);
  });

  it("lets untrusted callers only lower their class", () => {
    assert.deepEqual(cls({ headerClass: "critical" }), ["standard", undefined, "default"]);
    assert.deepEqual(cls({ headerClass: "sheddable" }), ["sheddable", undefined, "header"]);
    assert.deepEqual(cls({ apiKeySha256: PLAIN_KEY, headerClass: "critical" }), [
      "standard",
      "shop",
      "tenant",
    ]);
    assert.deepEqual(cls({ apiKeySha256: BATCH_KEY, headerClass: "standard" }), [
      "sheddable",
      "batch",
      "tenant",
    ]);
    assert.deepEqual(cls({ apiKeySha256: PLAIN_KEY, headerClass: " Sheddable " }), [
      "sheddable",
      "shop",
      "header",
    ]);
  });

  it("ignores unknown class names", () => {
    assert.deepEqual(cls({ headerClass: "platinum" }), ["standard", undefined, "default"]);
    assert.deepEqual(cls({ apiKeySha256: TRUSTED_KEY, headerClass: "platinum" }), [
      "standard",
      "ops",
      "tenant",
    ]);
  });

  it("prefers the API key over a claimed tenant id", () => {
    assert.deepEqual(cls({ apiKeySha256: BATCH_KEY, tenant: "ops", headerClass: "critical" }), [
      "sheddable",
      "batch",
      "tenant",
    ]);
  });
});
