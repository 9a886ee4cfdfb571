// Dynamo `RouterEvent` JSON (from `sluice mock-engine`, an engine-scheduler or a real Dynamo worker)
// → the core's `KvEvent`. Parsing is @sluice/mock-engine's `parseRouterEvent`, which reads every
// u64 exactly as a bigint.
import type { KvEvent } from "@sluice/core";
import { type ParsedRouterEvent, parseRouterEvent } from "@sluice/mock-engine";
import { MalformedInputError } from "./errors.js";

export interface DecodedKvEvent {
  /** Dynamo's u64 worker id (the lease id on a Dynamo deployment). */
  dynamoWorkerId: bigint;
  eventId: bigint;
  event: KvEvent;
}

function kvEventOf(parsed: ParsedRouterEvent): KvEvent {
  const data = parsed.data;
  if (data === "cleared") return { type: "cleared" };
  if ("stored" in data) {
    return {
      type: "stored",
      parentHash: data.stored.parentHash,
      blockHashes: data.stored.blocks.map((b) => b.blockHash),
      tokenHashes: data.stored.blocks.map((b) => b.tokensHash),
    };
  }
  return { type: "removed", blockHashes: data.removed.blockHashes };
}

const decoder = new TextDecoder();

/** Decodes one NATS message payload. Throws MalformedInputError on anything but a RouterEvent. */
export function decodeKvEvent(payload: Uint8Array): DecodedKvEvent {
  let parsed: ParsedRouterEvent;
  try {
    parsed = parseRouterEvent(decoder.decode(payload));
  } catch (error) {
    throw new MalformedInputError(`KV event: ${(error as Error).message}`, { cause: error });
  }
  return { dynamoWorkerId: parsed.workerId, eventId: parsed.eventId, event: kvEventOf(parsed) };
}
