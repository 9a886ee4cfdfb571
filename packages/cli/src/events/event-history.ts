// Reads decision events from the JetStream stream: history from a start time through an ordered
// consumer (no server-side state left behind), then, with `follow`, live events as they arrive.

import { ensureEventsStream } from "@sluice/aggregator";
import { type DecisionEvent, DecisionEventSchema } from "@sluice/proto";
import { protoJsonCodec } from "@sluice/runtime";
import { DeliverPolicy, type JsMsg, type NatsConnection } from "nats";

export interface ReadEventsOptions {
  readonly nc: NatsConnection;
  readonly stream: string;
  /** `sluice.v1.{ns}.events.{level|*}.{outcome|*}` */
  readonly subjectFilter: string;
  /** Replay from this time; undefined = only events published from now on (needs `follow`). */
  readonly startTimeMs: number | undefined;
  readonly follow: boolean;
  /** Create the stream (with default limits) when it does not exist, so history starts now. */
  readonly createIfMissing: boolean;
  /** Stops following. */
  readonly signal?: AbortSignal;
  onEvent(event: DecisionEvent): void;
  onMalformed(subject: string): void;
}

export type ReadEventsResult =
  | { kind: "done" }
  | { kind: "no-stream" }
  | { kind: "no-jetstream"; message: string };

const codec = protoJsonCodec(DecisionEventSchema);
/** How long an empty history is waited on before it is declared empty. */
const EMPTY_HISTORY_WAIT_MS = 1_000;

export async function readEvents(options: ReadEventsOptions): Promise<ReadEventsResult> {
  const { nc } = options;
  let lastSeqAtStart: number;
  try {
    const jsm = await nc.jetstreamManager();
    try {
      lastSeqAtStart = (await jsm.streams.info(options.stream)).state.last_seq;
    } catch (err) {
      if (!(err instanceof Error && /stream not found/i.test(err.message))) throw err;
      if (!options.createIfMissing) return { kind: "no-stream" };
      await ensureEventsStream(jsm, { name: options.stream });
      lastSeqAtStart = 0;
    }
  } catch (err) {
    return { kind: "no-jetstream", message: err instanceof Error ? err.message : String(err) };
  }

  const consumer = await nc.jetstream().consumers.get(options.stream, {
    // A single filter (not an array): `filter_subjects` needs nats-server 2.10, production may run 2.9.
    filterSubjects: options.subjectFilter,
    ...(options.startTimeMs === undefined
      ? { deliver_policy: DeliverPolicy.New }
      : {
          deliver_policy: DeliverPolicy.StartTime,
          opt_start_time: new Date(options.startTimeMs).toISOString(),
        }),
  });
  const handle = (m: JsMsg): void => {
    const decoded = codec.tryDecode(m.data);
    if (decoded.ok) options.onEvent(decoded.value);
    else options.onMalformed(m.subject);
  };

  if (!options.follow) {
    if (options.startTimeMs === undefined || lastSeqAtStart === 0) return { kind: "done" };
    for (;;) {
      const m = await consumer.next({ expires: EMPTY_HISTORY_WAIT_MS });
      if (m === null) break;
      handle(m);
      // Events published after the command started belong to --follow, not to the history.
      if (m.info.pending === 0 || m.seq >= lastSeqAtStart) break;
    }
    await consumer.delete().catch(() => undefined);
    return { kind: "done" };
  }

  const messages = await consumer.consume();
  const stop = (): void => void messages.close();
  if (options.signal?.aborted) stop();
  options.signal?.addEventListener("abort", stop, { once: true });
  try {
    for await (const m of messages) handle(m);
  } finally {
    options.signal?.removeEventListener("abort", stop);
  }
  return { kind: "done" };
}
