import type { KvEvent } from "@sluice/core";

/**
 * KV cache events in NVIDIA Dynamo's `RouterEvent` JSON, as serde serializes it
 * (ai-dynamo/dynamo `lib/llm/src/kv_router/protocols.rs` + `indexer.rs`):
 *
 *   {"worker_id": u64, "event": {"event_id": u64, "data": DATA, "dp_rank": 0}}
 *   DATA = {"stored": {"parent_hash": u64 | null, "blocks": [{"block_hash": u64, "tokens_hash": u64}, …]}}
 *        | {"removed": {"block_hashes": [u64, …]}}
 *        | "cleared"
 *
 * (`KvCacheEventData` is an externally tagged snake_case enum, so the unit variant `Cleared` is the
 * bare string; `ExternalSequenceBlockHash` / `LocalBlockHash` serialize as plain u64 numbers.)
 * Hashes are full 64-bit values, beyond a double's 2^53, so this module writes the JSON text itself
 * from bigints instead of going through `JSON.stringify`, and `parseRouterEvent` reads them back
 * exactly.
 */

const U64_MAX = (1n << 64n) - 1n;

function u64(value: bigint): string {
  return BigInt.asUintN(64, value).toString();
}

/**
 * Dynamo's `worker_id` is a u64 while Sluice worker ids are subject tokens: an id that is a decimal u64
 * (e.g. a Dynamo lease id) is used as is, any other id maps to its FNV-1a 64-bit hash (stable, so a
 * subscriber can compute it too; Sluice subscribers key on the subject's worker token anyway).
 */
export function dynamoWorkerId(workerId: string): bigint {
  if (/^(0|[1-9][0-9]{0,19})$/.test(workerId)) {
    const value = BigInt(workerId);
    if (value <= U64_MAX) return value;
  }
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(workerId)) {
    hash ^= BigInt(byte);
    hash = BigInt.asUintN(64, hash * 0x100000001b3n);
  }
  return hash;
}

function eventData(event: KvEvent): string {
  switch (event.type) {
    case "stored": {
      const blocks = event.blockHashes.map((blockHash, i) => {
        // The engine fills tokenHashes whenever the request carried local hashes, which the mock always
        // does; 0 only marks an event from a request that did not.
        const tokensHash = event.tokenHashes?.[i] ?? 0n;
        return `{"block_hash":${u64(blockHash)},"tokens_hash":${u64(tokensHash)}}`;
      });
      const parent = event.parentHash === null ? "null" : u64(event.parentHash);
      return `{"stored":{"parent_hash":${parent},"blocks":[${blocks.join(",")}]}}`;
    }
    case "removed":
      return `{"removed":{"block_hashes":[${event.blockHashes.map(u64).join(",")}]}}`;
    case "cleared":
      return `"cleared"`;
  }
}

/** One `RouterEvent` as JSON text. */
export function routerEventJson(workerId: bigint, eventId: bigint, event: KvEvent): string {
  return `{"worker_id":${u64(workerId)},"event":{"event_id":${u64(eventId)},"data":${eventData(event)},"dp_rank":0}}`;
}

/** A parsed `RouterEvent` with every u64 as an exact bigint. */
export interface ParsedRouterEvent {
  workerId: bigint;
  eventId: bigint;
  dpRank: number;
  data:
    | { stored: { parentHash: bigint | null; blocks: { blockHash: bigint; tokensHash: bigint }[] } }
    | { removed: { blockHashes: bigint[] } }
    | "cleared";
}

// Quotes every bare integer in the JSON text (outside strings) so JSON.parse keeps all 64 bits.
function quoteIntegers(text: string): string {
  return text.replace(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, (token) =>
    token.startsWith('"') ? token : `"${token}"`,
  );
}

function big(value: unknown, field: string): bigint {
  if (typeof value !== "string" || !/^\d+$/.test(value))
    throw new Error(`RouterEvent: ${field} is not a u64`);
  return BigInt(value);
}

/** Parses Dynamo `RouterEvent` JSON exactly (hashes as bigint). Throws on anything else. */
export function parseRouterEvent(text: string): ParsedRouterEvent {
  const raw = JSON.parse(quoteIntegers(text)) as {
    worker_id?: unknown;
    event?: { event_id?: unknown; dp_rank?: unknown; data?: unknown };
  };
  const event = raw.event;
  if (typeof event !== "object" || event === null) throw new Error("RouterEvent: missing event");
  const workerId = big(raw.worker_id, "worker_id");
  const eventId = big(event.event_id, "event_id");
  const dpRank = event.dp_rank === undefined ? 0 : Number(big(event.dp_rank, "dp_rank"));
  const data = event.data as Record<string, unknown> | string | undefined;
  if (data === "cleared") return { workerId, eventId, dpRank, data };
  if (typeof data === "object" && data !== null && "stored" in data) {
    const stored = data.stored as { parent_hash?: unknown; blocks?: unknown };
    if (!Array.isArray(stored.blocks)) throw new Error("RouterEvent: stored.blocks is not an array");
    return {
      workerId,
      eventId,
      dpRank,
      data: {
        stored: {
          parentHash: stored.parent_hash === null ? null : big(stored.parent_hash, "parent_hash"),
          blocks: (stored.blocks as { block_hash?: unknown; tokens_hash?: unknown }[]).map((b) => ({
            blockHash: big(b.block_hash, "block_hash"),
            tokensHash: big(b.tokens_hash, "tokens_hash"),
          })),
        },
      },
    };
  }
  if (typeof data === "object" && data !== null && "removed" in data) {
    const removed = data.removed as { block_hashes?: unknown };
    if (!Array.isArray(removed.block_hashes))
      throw new Error("RouterEvent: removed.block_hashes is not an array");
    return {
      workerId,
      eventId,
      dpRank,
      data: { removed: { blockHashes: removed.block_hashes.map((h) => big(h, "block_hashes[]")) } },
    };
  }
  throw new Error("RouterEvent: unknown event data");
}

/**
 * The publishing slice of a NATS client: the runtime's `NatsClient.publish` (returns `false` when it
 * dropped the message because NATS is not connected) and nats.js `NatsConnection.publish` both fit.
 */
export interface Publisher {
  /** `false` means dropped; any other result (nats.js returns nothing) means handed to NATS. */
  publish(subject: string, payload: Uint8Array): unknown;
}

export interface KvEventPublisher {
  /** Publishes each event as one `RouterEvent` message, with the next event id. */
  publish(events: readonly KvEvent[]): void;
  /** Event id of the last event handed to NATS (0 before the first). */
  lastEventId(): bigint;
  /** Events not handed to NATS (not connected, or publishing threw). */
  dropped(): number;
}

/**
 * Publishes KV events with a per-worker monotonically increasing `event_id` (starting at 1). Events
 * the publisher drops (NATS down: the runtime client drops rather than buffers) or that throw are
 * counted as dropped and do not use up an id, so ids stay gapless among delivered events; serving
 * carries on either way.
 */
export function createKvEventPublisher(
  publisher: Publisher | (() => Publisher | undefined),
  subject: string,
  workerId: string,
): KvEventPublisher {
  const dynamoId = dynamoWorkerId(workerId);
  const encoder = new TextEncoder();
  const current = typeof publisher === "function" ? publisher : () => publisher;
  let eventId = 0n;
  let droppedCount = 0;
  return {
    publish(events) {
      for (const event of events) {
        const target = current();
        if (target === undefined) {
          droppedCount += 1;
          continue;
        }
        const nextId = eventId + 1n;
        try {
          if (target.publish(subject, encoder.encode(routerEventJson(dynamoId, nextId, event))) === false) {
            droppedCount += 1;
            continue;
          }
          eventId = nextId;
        } catch {
          droppedCount += 1;
        }
      }
    },
    lastEventId: () => eventId,
    dropped: () => droppedCount,
  };
}
