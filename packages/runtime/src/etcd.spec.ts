import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { etcdRetryDelayMs, etcdSessionOptionsWithDefaults } from "./etcd.js";

describe("etcd session options", () => {
  it("fills defaults and refuses contradictions", () => {
    const o = etcdSessionOptionsWithDefaults({ endpoints: [" 127.0.0.1:2379 ", ""] });
    assert.deepEqual(o.endpoints, ["127.0.0.1:2379"]);
    assert.equal(o.leaseTtlSec, 5);
    assert.equal(o.revokeTimeoutMs, 1000);
    assert.throws(() => etcdSessionOptionsWithDefaults({ endpoints: [" "] }), /endpoints list is empty/);
    assert.throws(() => etcdSessionOptionsWithDefaults({ endpoints: ["e"], leaseTtlSec: 1 }), RangeError);
    assert.throws(
      () =>
        etcdSessionOptionsWithDefaults({ endpoints: ["e"], regrantDelayMs: 1000, maxRegrantDelayMs: 500 }),
      /regrantDelayMs/,
    );
    assert.throws(() => etcdSessionOptionsWithDefaults({ endpoints: ["e"], revokeTimeoutMs: 0 }), RangeError);
  });

  it("doubles the retry delay per failure, capped", () => {
    const o = { regrantDelayMs: 500, maxRegrantDelayMs: 5000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 50].map((failures) => etcdRetryDelayMs(failures, o)),
      [500, 1000, 2000, 4000, 5000, 5000],
    );
  });
});
