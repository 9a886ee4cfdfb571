// The JetStream stream that keeps decision events for replay (`sluice events --since`). Both the
// aggregator leader (at election) and `sluice events` (when the stream is missing) call
// `ensureEventsStream`, so history exists as soon as either has run once. Creation is idempotent:
// an existing stream keeps its data and only has its limits brought in line.

import { SUBJECT_ROOT } from "@sluice/runtime";
import {
  DiscardPolicy,
  type JetStreamManager,
  nanos,
  RetentionPolicy,
  StorageType,
  type StreamInfo,
} from "nats";
import { EventsStreamError } from "./errors.js";

export const DEFAULT_EVENTS_STREAM = "SLUICE_EVENTS";
/** A day of history covers "what happened last night" without unbounded disk use. */
export const DEFAULT_EVENTS_MAX_AGE_MS = 24 * 3_600_000;
export const DEFAULT_EVENTS_MAX_BYTES = 256 * 1024 * 1024;
/** Every namespace's decision events: one stream serves all namespaces, filtered per query. */
export const EVENTS_STREAM_SUBJECT = `${SUBJECT_ROOT}.*.events.>`;

export interface EventsStreamOptions {
  readonly name?: string;
  readonly maxAgeMs?: number;
  readonly maxBytes?: number;
}

export function eventsStreamOptionsWithDefaults(
  options: EventsStreamOptions = {},
): Required<EventsStreamOptions> {
  const o = {
    name: options.name ?? DEFAULT_EVENTS_STREAM,
    maxAgeMs: options.maxAgeMs ?? DEFAULT_EVENTS_MAX_AGE_MS,
    maxBytes: options.maxBytes ?? DEFAULT_EVENTS_MAX_BYTES,
  };
  if (!/^[A-Za-z0-9_-]+$/.test(o.name)) {
    throw new EventsStreamError(
      `events stream name ${JSON.stringify(o.name)}: use letters, digits, '-' and '_'`,
    );
  }
  if (!(o.maxAgeMs >= 1_000) || !(o.maxBytes >= 1_048_576)) {
    throw new EventsStreamError(
      `events stream limits too small: maxAgeMs=${o.maxAgeMs} (>= 1000), maxBytes=${o.maxBytes} (>= 1048576)`,
    );
  }
  return o;
}

export type EnsureOutcome = "created" | "updated" | "unchanged";

const isNotFound = (err: unknown): boolean => err instanceof Error && /stream not found/i.test(err.message);

/** Creates the events stream, or brings an existing one's subjects and limits in line. */
export async function ensureEventsStream(
  jsm: JetStreamManager,
  options: EventsStreamOptions = {},
): Promise<EnsureOutcome> {
  const o = eventsStreamOptionsWithDefaults(options);
  const wanted = { max_age: nanos(o.maxAgeMs), max_bytes: o.maxBytes };
  let info: StreamInfo | undefined;
  try {
    info = await jsm.streams.info(o.name);
  } catch (err) {
    if (!isNotFound(err)) throw new EventsStreamError(`cannot read stream ${o.name}`, { cause: err });
  }
  try {
    if (info === undefined) {
      await jsm.streams.add({
        name: o.name,
        subjects: [EVENTS_STREAM_SUBJECT],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        ...wanted,
      });
      return "created";
    }
    const c = info.config;
    if (
      c.max_age === wanted.max_age &&
      c.max_bytes === wanted.max_bytes &&
      c.subjects.length === 1 &&
      c.subjects[0] === EVENTS_STREAM_SUBJECT
    ) {
      return "unchanged";
    }
    await jsm.streams.update(o.name, { ...wanted, subjects: [EVENTS_STREAM_SUBJECT] });
    return "updated";
  } catch (err) {
    // Two candidates racing to create it: the loser finds it there, which is what it wanted.
    if (info === undefined && err instanceof Error && /already in use/i.test(err.message)) return "unchanged";
    throw new EventsStreamError(`cannot create or update stream ${o.name}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
