import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  parsePolicyText,
  parsePolicyValue,
  parseStoredPolicy,
  policyModelOf,
  serializePolicy,
} from "./policy-document.js";
import { PolicyDocumentError } from "./policy-errors.js";

function refused(text: string, model?: string): PolicyDocumentError {
  try {
    parsePolicyText(text, model === undefined ? {} : { model });
  } catch (err) {
    assert.ok(err instanceof PolicyDocumentError, `expected PolicyDocumentError, got ${String(err)}`);
    return err;
  }
  assert.fail("document was accepted");
}

describe("parsePolicyText", () => {
  it("refuses deeply nested text before the YAML parser sees it (100 000 levels crashed the CLI)", () => {
    const deep = `{"ingress":{"classLimitShare":${"[".repeat(100_000)}1${"]".repeat(100_000)}}}`;
    assert.match(refused(deep).message, /nested 100002 levels deep; a policy needs at most 64/);
    assert.equal(policyModelOf(`{"model":"m","x":${"[".repeat(1_000)}${"]".repeat(1_000)}}`), undefined);
    // Brackets inside strings are text, not nesting.
    assert.equal(parsePolicyText(`description: "${"[".repeat(200)}"\n`).resolved.ingress.maxInflight, 0);
  });

  it("reads YAML, fills the model from the key and resolves defaults", () => {
    const p = parsePolicyText("ingress:\n  kvOvercommit: 1.5\nfailMode: FAIL_MODE_OPEN\n", {
      model: "llama",
    });
    assert.equal(p.model, "llama");
    assert.equal(p.resolved.ingress.kvOvercommit, 1.5);
    assert.equal(p.resolved.failMode, "open");
    assert.equal(p.resolved.model, "llama");
    assert.deepEqual(p.json, { model: "llama", ingress: { kvOvercommit: 1.5 }, failMode: "FAIL_MODE_OPEN" });
  });

  it("reads JSON with proto field names too, and round-trips its stored form", () => {
    const p = parsePolicyText(
      '{"default_class":"critical","rejection":{"httpStatus":"HTTP_REJECT_STATUS_OVERLOADED"}}',
    );
    assert.equal(p.resolved.defaultClass, "critical");
    assert.equal(p.resolved.rejection.httpStatus, 529);
    const again = parsePolicyText(serializePolicy(p));
    assert.deepEqual(again.json, p.json);
  });

  it("keeps an explicit engine.maxQueue of 0 (optional field)", () => {
    assert.equal(parsePolicyText("engine: {maxQueue: 0}").resolved.engine.maxQueue, 0);
    assert.equal(parsePolicyText("engine: {}").resolved.engine.maxQueue, 64);
  });

  it("names the path and value of a non-number", () => {
    const err = refused("classes:\n  - name: critical\n  - name: standard\n    ttftObjectiveMs: fast\n");
    assert.equal(err.field, "classes[1].ttftObjectiveMs");
    assert.match(err.message, /classes\[1\]\.ttftObjectiveMs: "fast" is not a number/);
  });

  it("rejects unknown fields with a suggestion and bad enum names with the allowed values", () => {
    const err = refused("ingress:\n  kvOvercomit: 2\nfailMode: LOOSE\n");
    assert.equal(err.issues.length, 2);
    assert.match(err.message, /ingress\.kvOvercomit: unknown field \(did you mean "kvOvercommit"\?\)/);
    assert.match(err.message, /failMode: "LOOSE" is not one of FAIL_MODE_UNSPECIFIED, FAIL_MODE_STATIC/);
  });

  it("checks integer ranges of uint32 fields", () => {
    assert.match(
      refused("ingress: {maxInflight: -1}").message,
      /ingress\.maxInflight: -1 is out of range \(must be 0\.\.4294967295\)/,
    );
    assert.match(
      refused("ingress: {maxInflight: 1.5}").message,
      /ingress\.maxInflight: 1\.5 is not an integer/,
    );
  });

  it("reports core's range checks with the field path", () => {
    const err = refused("ingress: {kvOvercommit: -1}");
    assert.equal(err.field, "ingress.kvOvercommit");
    assert.match(err.message, /^ingress\.kvOvercommit: must be a finite number ≥ 0, got -1$/);
    const share = refused(
      "classes: [{name: gold, priority: 5, ttftObjectiveMs: 100, itlObjectiveMs: 10, limitShare: 1.5}]",
    );
    assert.equal(share.field, "classes[0].limitShare");
    assert.equal(refused("defaultClass: platinum").field, "defaultClass");
  });

  it("refuses a model that does not match the key", () => {
    const err = refused("model: other", "llama");
    assert.equal(err.field, "model");
    assert.match(err.message, /"other" does not match the policy key "llama"/);
  });

  it("reports syntax errors with a position, and empty or non-mapping documents", () => {
    assert.match(refused("ingress: [1, 2").message, /^\(document\): syntax error at line \d+, column \d+/);
    assert.match(refused("").message, /\(document\): is empty/);
    assert.match(refused("- 1\n- 2\n").message, /\(document\): a list is not a mapping of Policy fields/);
    assert.match(refused("ingress: 3").message, /ingress: 3 is not a mapping of IngressPolicy fields/);
  });

  it("accepts proto3 JSON numbers as strings and null as the default", () => {
    const p = parsePolicyValue({ ingress: { maxInflight: "12", kvOvercommit: null } });
    assert.equal(p.resolved.ingress.maxInflight, 12);
    assert.equal(p.resolved.ingress.kvOvercommit, 1.25);
  });

  it("peeks at the model a text names", () => {
    assert.equal(policyModelOf("model: llama\ningress: {kvOvercommit: x}"), "llama");
    assert.equal(policyModelOf("ingress: {}"), undefined);
    assert.equal(policyModelOf("{broken"), undefined);
  });

  it("reads stored values as JSON only, naming the document when it is not JSON", () => {
    const p = parsePolicyText("ingress: {kvOvercommit: 1.5}", { model: "m" });
    assert.deepEqual(parseStoredPolicy(serializePolicy(p), { model: "m" }).json, p.json);
    assert.throws(
      () => parseStoredPolicy("ingress:\n  kvOvercommit: 1.5\n", { model: "m" }),
      (err: unknown) =>
        err instanceof PolicyDocumentError &&
        /^\(document\): stored policies are proto3 JSON/.test(err.message),
    );
  });
});
