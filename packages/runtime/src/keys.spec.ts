import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { KeySegmentError, normalizeKeyPrefix, sluiceKeys } from "./keys.js";

describe("sluiceKeys", () => {
  it("lays keys out as DESIGN §3", () => {
    const k = sluiceKeys();
    assert.equal(k.instance("router", "r-1"), "/sluice/v1/instances/router/r-1");
    assert.equal(k.instances(), "/sluice/v1/instances/");
    assert.equal(k.instances("router"), "/sluice/v1/instances/router/");
    assert.equal(k.engine("w1"), "/sluice/v1/engines/w1");
    assert.equal(k.engines, "/sluice/v1/engines/");
    assert.equal(k.policy("_default"), "/sluice/v1/policies/_default");
    assert.equal(k.policies, "/sluice/v1/policies/");
    assert.equal(k.election("aggregator"), "/sluice/v1/elections/aggregator");
  });

  it("normalises the prefix", () => {
    assert.equal(normalizeKeyPrefix("sluice/test/"), "/sluice/test");
    assert.equal(sluiceKeys("/x//").engine("w"), "/x/engines/w");
    assert.throws(() => normalizeKeyPrefix("///"), KeySegmentError);
  });

  it("refuses segments that would nest keys", () => {
    assert.throws(
      () => sluiceKeys().instance("router", "a/b"),
      /instance id "a\/b" cannot be an etcd key segment/,
    );
    assert.throws(() => sluiceKeys().engine(""), KeySegmentError);
    assert.throws(() => sluiceKeys().policy("m 1"), KeySegmentError);
  });
});
