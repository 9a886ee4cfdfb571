import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_POLICY } from "./defaults.js";
import { PolicyError } from "./errors.js";
import { withPolicyDefaults } from "./with-defaults.js";

const KEY = "a".repeat(64);

describe("withPolicyDefaults", () => {
  it("returns the defaults for an empty policy, deeply frozen", () => {
    const p = withPolicyDefaults();
    assert.deepEqual(p, DEFAULT_POLICY);
    assert.ok(
      Object.isFrozen(p.ingress) && Object.isFrozen(p.classes[0]) && Object.isFrozen(p.router.classMaxHeld),
    );
  });

  it("treats plain zeros as unset (proto3) but keeps explicit zeros in maps and engine.maxQueue", () => {
    const p = withPolicyDefaults({
      ingress: { kvOvercommit: 0, maxInflight: 0, classLimitShare: { standard: 0 } },
      rejection: { retryAfterMinMs: 0, retryAfterMaxMs: 0 },
      engine: { maxQueue: 0, ttftMarginMs: 0 },
      router: { classMaxHeld: { critical: 0 } },
      classes: [
        { name: "critical", ttftObjectiveMs: 0, limitShare: 0 },
        { name: "standard", ttftObjectiveMs: 1500 },
      ],
    });
    assert.equal(p.ingress.kvOvercommit, 1.25);
    assert.deepEqual(p.ingress.classLimitShare, { standard: 0 } as Record<string, number>);
    assert.deepEqual([p.rejection.retryAfterMinMs, p.rejection.retryAfterMaxMs], [100, 30000]);
    assert.deepEqual([p.engine.maxQueue, p.engine.ttftMarginMs], [0, 50]);
    assert.deepEqual(p.router.classMaxHeld, { critical: 0, standard: 128 });
    assert.deepEqual(
      p.classes.map((c) => [c.name, c.ttftObjectiveMs, c.limitShare]),
      [
        ["critical", 1000, 1],
        ["standard", 1500, 0.9],
      ],
    );
  });

  it("sorts classes by priority and accepts complete custom classes", () => {
    const p = withPolicyDefaults({
      classes: [
        { name: "batch", priority: 50, ttftObjectiveMs: 60000, itlObjectiveMs: 500, limitShare: 0.5 },
        { name: "gold", priority: 400, ttftObjectiveMs: 500, itlObjectiveMs: 30 },
        { name: "standard" },
      ],
      tenants: [{ tenant: "acme", apiKeySha256: [KEY], requestClass: "gold", trusted: true }],
    });
    assert.deepEqual(
      p.classes.map((c) => [c.name, c.limitShare]),
      [
        ["gold", 1],
        ["standard", 0.9],
        ["batch", 0.5],
      ],
    );
    assert.equal(p.tenants[0]!.requestClass, "gold");
  });

  it("refuses invalid policies naming the field", () => {
    const bad: [Parameters<typeof withPolicyDefaults>[0], string][] = [
      [{ classes: [{ name: "Gold!" }] }, "classes[0].name"],
      [{ classes: [{ name: "standard" }, { name: "standard" }] }, "classes[1].name"],
      [{ classes: [{ name: "gold", priority: 1, itlObjectiveMs: 1 }] }, "classes[0].ttftObjectiveMs"],
      [{ classes: [{ name: "standard", limitShare: 1.5 }] }, "classes[0].limitShare"],
      [{ defaultClass: "gold" }, "defaultClass"],
      [{ classes: [{ name: "critical" }] }, "defaultClass"],
      [{ tenants: [{ tenant: "" }] }, "tenants[0].tenant"],
      [{ tenants: [{ tenant: "a" }, { tenant: "a" }] }, "tenants[1].tenant"],
      [{ tenants: [{ tenant: "a", apiKeySha256: ["ABC"] }] }, "tenants[0].apiKeySha256[0]"],
      [
        {
          tenants: [
            { tenant: "a", apiKeySha256: [KEY] },
            { tenant: "b", apiKeySha256: [KEY] },
          ],
        },
        "tenants[1].apiKeySha256[0]",
      ],
      [{ tenants: [{ tenant: "a", requestClass: "gold" }] }, "tenants[0].requestClass"],
      [{ tenants: [{ tenant: "a", maxInflight: -1 }] }, "tenants[0].maxInflight"],
      [{ ingress: { maxInflight: 1.5 } }, "ingress.maxInflight"],
      [{ ingress: { kvOvercommit: -1 } }, "ingress.kvOvercommit"],
      [{ ingress: { kvOvercommit: Number.NaN } }, "ingress.kvOvercommit"],
      [{ ingress: { classLimitShare: { gold: 0.5 } } }, "ingress.classLimitShare.gold"],
      [{ ingress: { classLimitShare: { standard: 2 } } }, "ingress.classLimitShare.standard"],
      [{ router: { busyDecodeBlockFraction: 1.2 } }, "router.busyDecodeBlockFraction"],
      [{ router: { classMaxHeld: { standard: -3 } } }, "router.classMaxHeld.standard"],
      [{ rejection: { retryAfterMinMs: 5000, retryAfterMaxMs: 1000 } }, "rejection.retryAfterMinMs"],
      [{ rejection: { httpStatus: 500 as 429 } }, "rejection.httpStatus"],
      [{ failMode: "sometimes" as "open" }, "failMode"],
    ];
    for (const [input, field] of bad) {
      assert.throws(
        () => withPolicyDefaults(input),
        (e: unknown) => e instanceof PolicyError && e.field === field,
        `expected PolicyError on ${field} for ${JSON.stringify(input)}`,
      );
    }
  });
});
