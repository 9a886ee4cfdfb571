// `sluice.v1.EngineLoad` in the protobuf binary format, written directly. The sidecar publishes a load
// snapshot on every change of its engine's load, which at low traffic is twice per request; the
// reflective protobuf-es `create` + `toBinary` cost ~30–60 µs a snapshot and was the largest single
// item of the sidecar's per-request CPU (issue 6). The output is byte for byte what `toBinary` gives
// (fields in number order, proto3 defaults omitted, doubles little-endian); `engine-load-binary.spec.ts`
// checks that against the reflective codec.

import type { LoadSnapshot } from "./load-publisher.js";

/**
 * The fields of an `EngineLoad`, already in their wire ranges (the publisher clamps them): the load
 * snapshot (uint32 counts, doubles for rates and times, `preemptionsTotal` a uint64 below 2^53) plus
 * the publisher's own fields.
 */
export interface EngineLoadFields extends LoadSnapshot {
  /** Bytes of the UTF-8 `worker_id` (fixed per publisher, so encoded once). */
  workerIdUtf8: Uint8Array;
  /** uint64, below 2^53. */
  seq: number;
  timestampMs: number;
  heartbeatIntervalMs: number;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;

/** Largest message: 13 tags (1 byte each) + 2 × 10-byte uint64 + 6 × 5-byte uint32 + 3 × 8-byte double + length. */
const MAX_FIXED_BYTES = 13 + 2 * 10 + 6 * 5 + 3 * 8 + 5;

// One scratch buffer per process: encoding is synchronous, and the result is copied out of it.
let buf = new Uint8Array(256);
let view = new DataView(buf.buffer);
let pos = 0;

function tag(field: number, wire: number): void {
  buf[pos++] = (field << 3) | wire;
}

/** Non-negative integers below 2^53: 7 bits a byte, low first (division, not `>>>`, above 2^32). */
function varint(value: number): void {
  let v = value;
  while (v >= 0x80) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[pos++] = v;
}

function uint(field: number, value: number): void {
  if (value === 0) return;
  tag(field, WIRE_VARINT);
  varint(value);
}

function double(field: number, value: number): void {
  // proto3 omits the default: +0 only (protobuf-es writes −0, and NaN, as values).
  if (Object.is(value, 0)) return;
  tag(field, WIRE_FIXED64);
  view.setFloat64(pos, value, true);
  pos += 8;
}

/** Encodes `fields` exactly as `toBinary(EngineLoadSchema, create(EngineLoadSchema, …))` does. */
export function encodeEngineLoad(fields: EngineLoadFields): Uint8Array {
  const needed = MAX_FIXED_BYTES + fields.workerIdUtf8.length;
  if (buf.length < needed) {
    buf = new Uint8Array(needed * 2);
    view = new DataView(buf.buffer);
  }
  pos = 0;
  if (fields.workerIdUtf8.length > 0) {
    tag(1, WIRE_LEN);
    varint(fields.workerIdUtf8.length);
    buf.set(fields.workerIdUtf8, pos);
    pos += fields.workerIdUtf8.length;
  }
  uint(2, fields.seq);
  double(3, fields.timestampMs);
  uint(4, fields.waiting);
  uint(5, fields.running);
  uint(6, fields.kvUsedBlocks);
  uint(7, fields.kvTotalBlocks);
  uint(8, fields.pendingPrefillTokens);
  double(9, fields.prefillTokensPerS);
  double(10, fields.decodeStepMs);
  uint(11, fields.oldestWaitingMs);
  uint(12, fields.preemptionsTotal);
  uint(13, fields.heartbeatIntervalMs);
  return buf.slice(0, pos);
}
