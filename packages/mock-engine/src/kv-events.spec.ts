import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createKvEventPublisher, dynamoWorkerId, parseRouterEvent, routerEventJson } from "./kv-events.js";

const BIG = 18_446_744_073_709_551_557n; // > 2^53: a double would round it

describe("routerEventJson", () => {
  it("writes Dynamo's serde shape with exact u64 hashes", () => {
    const text = routerEventJson(7n, 1n, {
      type: "stored",
      parentHash: null,
      blockHashes: [BIG, 5n],
      tokenHashes: [BIG - 2n, 6n],
    });
    assert.equal(
      text,
      `{"worker_id":7,"event":{"event_id":1,"data":{"stored":{"parent_hash":null,"blocks":[{"block_hash":${BIG},"tokens_hash":${BIG - 2n}},{"block_hash":5,"tokens_hash":6}]}},"dp_rank":0}}`,
    );
    const parsed = parseRouterEvent(text);
    assert.deepEqual(parsed.data, {
      stored: {
        parentHash: null,
        blocks: [
          { blockHash: BIG, tokensHash: BIG - 2n },
          { blockHash: 5n, tokensHash: 6n },
        ],
      },
    });
  });

  it("writes removed and cleared events", () => {
    const removed = routerEventJson(1n, 2n, { type: "removed", blockHashes: [BIG, 3n] });
    assert.equal(
      removed,
      `{"worker_id":1,"event":{"event_id":2,"data":{"removed":{"block_hashes":[${BIG},3]}},"dp_rank":0}}`,
    );
    assert.deepEqual(parseRouterEvent(removed).data, { removed: { blockHashes: [BIG, 3n] } });
    const cleared = routerEventJson(1n, 3n, { type: "cleared" });
    assert.equal(cleared, `{"worker_id":1,"event":{"event_id":3,"data":"cleared","dp_rank":0}}`);
    assert.equal(parseRouterEvent(cleared).data, "cleared");
  });

  it("keeps a stored event's parent hash", () => {
    const text = routerEventJson(1n, 1n, {
      type: "stored",
      parentHash: BIG,
      blockHashes: [1n],
      tokenHashes: [2n],
    });
    const data = parseRouterEvent(text).data;
    assert.ok(typeof data === "object" && "stored" in data);
    assert.equal(data.stored.parentHash, BIG);
  });
});

describe("dynamoWorkerId", () => {
  it("uses decimal u64 ids as they are and hashes any other id stably", () => {
    assert.equal(dynamoWorkerId("42"), 42n);
    assert.equal(dynamoWorkerId("18446744073709551615"), (1n << 64n) - 1n);
    assert.notEqual(dynamoWorkerId("18446744073709551616"), 18446744073709551616n);
    assert.equal(dynamoWorkerId("mock-a"), dynamoWorkerId("mock-a"));
    assert.notEqual(dynamoWorkerId("mock-a"), dynamoWorkerId("mock-b"));
    assert.ok(dynamoWorkerId("mock-a") < 1n << 64n);
  });
});

describe("createKvEventPublisher", () => {
  it("numbers events 1, 2, 3 … and counts events it could not hand over", () => {
    const sent: string[] = [];
    let connected = true;
    const publisher = createKvEventPublisher(
      () =>
        connected
          ? { publish: (_s: string, p: Uint8Array) => sent.push(new TextDecoder().decode(p)) }
          : undefined,
      "kv",
      "9",
    );
    publisher.publish([{ type: "cleared" }, { type: "removed", blockHashes: [1n] }]);
    connected = false;
    publisher.publish([{ type: "cleared" }]);
    connected = true;
    publisher.publish([{ type: "cleared" }]);
    assert.deepEqual(
      sent.map((t) => parseRouterEvent(t).eventId),
      [1n, 2n, 3n],
    );
    assert.equal(publisher.dropped(), 1);
    assert.equal(publisher.lastEventId(), 3n);
  });
  it("does not use up an id for an event the publisher dropped (returned false)", () => {
    const sent: string[] = [];
    let up = false;
    const publisher = createKvEventPublisher(
      {
        publish: (_s: string, p: Uint8Array) => {
          if (!up) return false;
          sent.push(new TextDecoder().decode(p));
          return true;
        },
      },
      "kv",
      "9",
    );
    publisher.publish([{ type: "cleared" }, { type: "cleared" }]);
    up = true;
    publisher.publish([{ type: "cleared" }]);
    assert.deepEqual(
      sent.map((t) => parseRouterEvent(t).eventId),
      [1n],
    );
    assert.equal(publisher.dropped(), 2);
  });
});
