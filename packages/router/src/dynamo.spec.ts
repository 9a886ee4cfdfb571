import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { dynamoSubjects, parseDynamoLoad, parseDynamoModelEntry } from "./dynamo.js";
import { MalformedInputError } from "./errors.js";
import { decodeKvEvent } from "./kv-events.js";

const enc = (s: string) => new TextEncoder().encode(s);
// A lease id above 2^53: must survive parsing exactly.
const LEASE_HEX = "694d9a3b8c7e1f01";
const LEASE = BigInt(`0x${LEASE_HEX}`).toString();

describe("Dynamo compatibility parsing", () => {
  it("names Dynamo's subjects", () => {
    assert.deepEqual(dynamoSubjects("dyn", "backend"), {
      kvEvents: "namespace.dyn.component.backend.kv_events",
      kvMetrics: "namespace.dyn.kv_metrics",
    });
  });

  it("reads a ModelEntry's runtime_config and the lease id of its key", () => {
    const entry = parseDynamoModelEntry(
      `models/qwen/${LEASE_HEX}`,
      JSON.stringify({
        name: "Qwen/Qwen3-0.6B",
        endpoint: { namespace: "dyn", component: "backend", name: "generate" },
        model_type: "Chat",
        model_input: "Tokens",
        runtime_config: { total_kv_blocks: 8192, max_num_seqs: 256, max_num_batched_tokens: 8192 },
      }),
      16,
    );
    assert.equal(entry.worker.workerId, LEASE);
    assert.equal(entry.worker.kvTotalBlocks, 8192);
    assert.equal(entry.worker.maxNumBatchedTokens, 8192);
    assert.equal(entry.worker.blockSize, 16);
    assert.equal(entry.model, "Qwen/Qwen3-0.6B");
    assert.equal(entry.address, `dyn://dyn.backend.generate/${LEASE}`);
    assert.throws(
      () =>
        parseDynamoModelEntry(`models/q/${LEASE_HEX}`, JSON.stringify({ name: "q", runtime_config: {} }), 16),
      MalformedInputError,
    );
    assert.throws(() => parseDynamoModelEntry("models/q/not-hex", "{}", 16), MalformedInputError);
  });

  it("reads both kv_metrics generations exactly", () => {
    const legacy = parseDynamoLoad(
      enc(
        `{"worker_id":${LEASE},"data":{"worker_stats":{"data_parallel_rank":null,"request_active_slots":3,"request_total_slots":256,"num_requests_waiting":2},"kv_stats":{"kv_active_blocks":120,"kv_total_blocks":8192,"gpu_cache_usage_perc":0.0146,"gpu_prefix_cache_hit_rate":0.5},"spec_decode_stats":null}}`,
      ),
      1000,
      () => 0,
    );
    assert.equal(legacy.workerId, LEASE);
    assert.equal(legacy.observed.kvUsedBlocks, 120);
    assert.equal(legacy.observed.kvTotalBlocks, 8192);
    assert.equal(legacy.observed.waiting, 2);
    assert.equal(legacy.observed.running, 3);
    const active = parseDynamoLoad(
      enc(`{"worker_id":${LEASE},"dp_rank":0,"active_decode_blocks":77,"active_prefill_tokens":null}`),
      1000,
      () => 4096,
    );
    assert.equal(active.observed.kvUsedBlocks, 77);
    assert.equal(active.observed.kvTotalBlocks, 4096);
    assert.equal(active.observed.pendingPrefillTokens, 0);
    assert.throws(() => parseDynamoLoad(enc(`{"worker_id":1}`), 0, () => 0), MalformedInputError);
    assert.throws(() => parseDynamoLoad(enc("not json"), 0, () => 0), MalformedInputError);
  });

  it("decodes RouterEvent JSON with u64 hashes", () => {
    const big = (1n << 64n) - 5n;
    const stored = decodeKvEvent(
      enc(
        `{"worker_id":${LEASE},"event":{"event_id":7,"data":{"stored":{"parent_hash":null,"blocks":[{"block_hash":${big},"tokens_hash":12}]}},"dp_rank":0}}`,
      ),
    );
    assert.equal(stored.dynamoWorkerId.toString(), LEASE);
    assert.equal(stored.eventId, 7n);
    assert.deepEqual(stored.event, {
      type: "stored",
      parentHash: null,
      blockHashes: [big],
      tokenHashes: [12n],
    });
    const cleared = decodeKvEvent(enc(`{"worker_id":1,"event":{"event_id":8,"data":"cleared","dp_rank":0}}`));
    assert.deepEqual(cleared.event, { type: "cleared" });
    assert.throws(() => decodeKvEvent(enc(`{"worker_id":1}`)), MalformedInputError);
  });
});
