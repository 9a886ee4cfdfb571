import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createPublishLoop } from "./publish-loop.js";

describe("publish loop", () => {
  it("publishes at start, coalesces a burst of changes into one debounced publish, and stops", async () => {
    const calls: { force: boolean; dirty: boolean }[] = [];
    const loop = createPublishLoop({
      debounceMs: 30,
      heartbeatMs: 60_000,
      nowMs: Date.now,
      publish: (force, dirtySinceMs) => {
        calls.push({ force, dirty: dirtySinceMs !== undefined });
        return true;
      },
    });
    loop.markDirty(); // before start (a standby): no publish
    await sleep(50);
    assert.equal(calls.length, 0);
    loop.start();
    assert.deepEqual(calls, [{ force: true, dirty: true }]);
    for (let i = 0; i < 100; i++) loop.markDirty();
    await sleep(200);
    assert.deepEqual(calls.slice(1), [{ force: false, dirty: true }]);
    loop.stop();
    loop.markDirty();
    await sleep(80);
    assert.equal(calls.length, 2);
  });

  it("sends heartbeats when nothing changes", async () => {
    let published = 0;
    const loop = createPublishLoop({
      debounceMs: 10,
      heartbeatMs: 20,
      nowMs: Date.now,
      publish: (force) => {
        if (force) published += 1;
        return force;
      },
    });
    loop.start();
    await sleep(300);
    loop.stop();
    // Start + at least a few heartbeats; no upper bound asserted on a loaded machine's timers.
    assert.ok(published >= 3, `published ${published}`);
  });
});
