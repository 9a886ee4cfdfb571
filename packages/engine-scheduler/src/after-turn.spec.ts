import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { createAfterTurn } from "./after-turn.js";

const nextTurn = () => new Promise((r) => setImmediate(r));

describe("createAfterTurn", () => {
  it("runs the tasks of one turn once each, after the turn, in the order first queued", async () => {
    const ran: string[] = [];
    const after = createAfterTurn(() => assert.fail("no error expected"));
    const a = () => ran.push("a");
    const b = () => ran.push("b");
    after.run(a);
    after.run(b);
    after.run(a);
    assert.deepEqual(ran, []);
    await nextTurn();
    assert.deepEqual(ran, ["a", "b"]);
    after.run(a);
    await nextTurn();
    assert.deepEqual(ran, ["a", "b", "a"]);
  });

  it("a throwing task is reported and the others still run", async () => {
    const errors: unknown[] = [];
    const ran: string[] = [];
    const after = createAfterTurn((e) => errors.push(e));
    after.run(() => {
      throw new Error("boom");
    });
    after.run(() => ran.push("next"));
    await nextTurn();
    assert.equal(errors.length, 1);
    assert.deepEqual(ran, ["next"]);
  });

  it("close runs what is queued and ignores later tasks", async () => {
    const ran: string[] = [];
    const after = createAfterTurn(() => {});
    after.run(() => ran.push("queued"));
    after.close();
    assert.deepEqual(ran, ["queued"]);
    after.run(() => ran.push("late"));
    await nextTurn();
    assert.deepEqual(ran, ["queued"]);
  });

  it("while busy, waits up to busyDelayMs so several turns leave together; going idle runs them after that turn", () => {
    mock.timers.enable({ apis: ["setTimeout", "setImmediate"] });
    try {
      let busy = true;
      const ran: string[] = [];
      const after = createAfterTurn(() => assert.fail("no error expected"), {
        busy: () => busy,
        busyDelayMs: 5,
      });
      after.run(() => ran.push("admitted"));
      mock.timers.tick(4);
      assert.equal(ran.length, 0, "busy: held for up to 5 ms");
      after.run(() => ran.push("first token"));
      mock.timers.tick(1);
      assert.deepEqual(ran, ["admitted", "first token"], "both after 5 ms, from the first");

      after.run(() => ran.push("queued"));
      mock.timers.tick(2);
      busy = false;
      after.run(() => ran.push("done"));
      assert.equal(ran.length, 2, "still this turn");
      mock.timers.tick(0);
      assert.deepEqual(ran.slice(2), ["queued", "done"], "idle: right after the turn, not at 5 ms");
      mock.timers.tick(10);
      assert.equal(ran.length, 4, "the cancelled timer does not run anything twice");
    } finally {
      mock.timers.reset();
    }
  });

  it("rejects a negative or non-finite busyDelayMs", () => {
    assert.throws(() => createAfterTurn(() => {}, { busyDelayMs: -1 }), RangeError);
    assert.throws(() => createAfterTurn(() => {}, { busyDelayMs: Number.NaN }), RangeError);
  });
});
