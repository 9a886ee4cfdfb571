import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { diffPolicies, renderDiff } from "./diff.js";

describe("diffPolicies", () => {
  it("reports added, removed and changed leaves by path", () => {
    const before = { model: "m", ingress: { kvOvercommit: 1.25, maxInflight: 10 }, description: "old" };
    const after = { model: "m", ingress: { kvOvercommit: 1.5 }, failMode: "FAIL_MODE_OPEN" };
    assert.deepEqual(renderDiff(diffPolicies(before, after)), [
      '- description: "old"',
      '+ failMode: "FAIL_MODE_OPEN"',
      "~ ingress.kvOvercommit: 1.25 -> 1.5",
      "- ingress.maxInflight: 10",
    ]);
  });

  it("addresses list elements by index in numeric order", () => {
    const names = (n: number) => ({ classes: Array.from({ length: n }, (_, i) => ({ name: `c${i}` })) });
    const lines = renderDiff(diffPolicies(names(2), names(11)));
    assert.equal(lines.length, 9);
    assert.equal(lines[0], '+ classes[2].name: "c2"');
    assert.equal(lines[8], '+ classes[10].name: "c10"');
  });

  it("is empty for equal documents and keeps empty containers as leaves", () => {
    assert.deepEqual(diffPolicies({ a: { b: [1] } }, { a: { b: [1] } }), []);
    assert.deepEqual(renderDiff(diffPolicies({}, { ingress: {} })), ["+ ingress: {}"]);
  });
});
