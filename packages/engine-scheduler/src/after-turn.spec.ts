import assert from "node:assert/strict";
import { describe, it } from "node:test";
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
});
