import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { natsOptionsWithDefaults, natsReconnectDelayMs } from "./nats.js";

describe("NATS options", () => {
  it("accepts a comma-separated server list and fills defaults", () => {
    const o = natsOptionsWithDefaults({ servers: "nats://a:4222, nats://b:4222", name: "t" });
    assert.deepEqual(o.servers, ["nats://a:4222", "nats://b:4222"]);
    assert.equal(o.reconnectDelayMs, 250);
    assert.throws(() => natsOptionsWithDefaults({ servers: " , ", name: "t" }), /servers list is empty/);
    assert.throws(
      () =>
        natsOptionsWithDefaults({
          servers: "nats://a",
          name: "t",
          reconnectDelayMs: 10,
          maxReconnectDelayMs: 5,
        }),
      RangeError,
    );
  });

  it("backs off with the outage length, capped, plus jitter", () => {
    const o = { reconnectDelayMs: 250, maxReconnectDelayMs: 5000, reconnectJitterMs: 100 };
    assert.equal(
      natsReconnectDelayMs(0, o, () => 0),
      250,
    );
    assert.equal(
      natsReconnectDelayMs(4000, o, () => 0),
      2000,
    );
    assert.equal(
      natsReconnectDelayMs(60_000, o, () => 0),
      5000,
    );
    assert.equal(
      natsReconnectDelayMs(60_000, o, () => 0.5),
      5050,
    );
  });
});
