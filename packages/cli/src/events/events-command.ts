// `sluice events`: decision events from the JetStream history (`--since`), then live (`--follow`).

import { DEFAULT_EVENTS_STREAM } from "@sluice/aggregator";
import {
  ConfigError,
  commonSchema,
  defineSchema,
  loadConfig,
  natsSecurityFromConfig,
  renderHelp,
  subjects,
} from "@sluice/runtime";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type SluiceCommand } from "../command.js";
import { natsClientSecuritySchema } from "./client-security.js";
import { connectNatsWithDeadline, DEFAULT_CONNECT_DEADLINE_MS } from "./connect-deadline.js";
import {
  type EventFilter,
  formatEventJson,
  formatEventLine,
  LEVEL_TOKENS,
  matchesFilter,
  OUTCOME_TOKENS,
} from "./decision-event-format.js";
import { EXIT_UNREACHABLE, SharedStateUnreachableError } from "./errors.js";
import { readEvents } from "./event-history.js";

/** History shown when neither --since nor --follow is given. */
export const DEFAULT_EVENTS_SINCE_MS = 10 * 60_000;

export const eventsSchema = defineSchema({
  namespace: commonSchema.namespace,
  "nats-url": commonSchema["nats-url"],
  ...natsClientSecuritySchema,
  level: {
    type: "enum",
    values: ["any", ...LEVEL_TOKENS],
    default: "any",
    description: "Only events of this level.",
  },
  outcome: {
    type: "enum",
    values: ["any", ...OUTCOME_TOKENS],
    default: "any",
    description: "Only events with this outcome.",
  },
  class: {
    type: "string",
    default: "",
    defaultText: "any class",
    description: "Only events of this request class (matched on the decoded event).",
  },
  since: {
    type: "duration",
    defaultMs: 0,
    minMs: 0,
    maxMs: 366 * 24 * 3_600_000,
    defaultText: "10m without --follow; live only with --follow",
    description: "Replay the history of this long ago from the events stream first.",
  },
  follow: {
    type: "boolean",
    default: false,
    description: "After the history, print events live until interrupted.",
  },
  json: { type: "boolean", default: false, description: "One JSON object (proto3 JSON) per line." },
  stream: {
    type: "string",
    default: DEFAULT_EVENTS_STREAM,
    pattern: /[A-Za-z0-9_-]+/,
    patternText: "a JetStream stream name",
    description:
      "JetStream stream holding the history; created (24 h / 256 MiB limits) if missing, as the aggregator leader does.",
  },
});

const SUMMARY =
  "Prints decision events: the history from the JetStream stream (--since), then live ones (--follow). " +
  "Exit codes: 0 ok, 1 failure, 2 bad flags, 3 NATS unreachable.";

export const eventsCommand: SluiceCommand = {
  name: "events",
  summary: "Show decision events (history and live)",
  run: (argv) => runEvents(argv),
};

export interface EventsIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Readonly<Record<string, string | undefined>>;
  /** Aborting stops --follow (default: SIGINT / SIGTERM). */
  signal?: AbortSignal;
}

export async function runEvents(argv: string[], io: Partial<EventsIo> = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let loaded: ReturnType<typeof loadConfig<typeof eventsSchema>>;
  try {
    loaded = loadConfig(eventsSchema, { argv, ...(io.env ? { env: io.env } : {}) });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stderr.write(`sluice events: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (loaded.kind === "help") {
    stdout.write(renderHelp(eventsSchema, { command: "sluice events", summary: SUMMARY }));
    return EXIT_OK;
  }
  const config = loaded.values;
  const sinceGiven = loaded.sources.since?.kind !== "default";
  const sinceMs = sinceGiven ? config.sinceMs : config.follow ? undefined : DEFAULT_EVENTS_SINCE_MS;
  const filter: EventFilter = {
    ...(config.level !== "any" ? { level: config.level } : {}),
    ...(config.outcome !== "any" ? { outcome: config.outcome } : {}),
    ...(config.class !== "" ? { requestClass: config.class } : {}),
  };
  const subjectFilter = subjects(config.namespace).eventsFilter({
    ...(filter.level !== undefined ? { level: filter.level } : {}),
    ...(filter.outcome !== undefined ? { outcome: filter.outcome } : {}),
  });

  let security: ReturnType<typeof natsSecurityFromConfig>;
  try {
    security = natsSecurityFromConfig(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stderr.write(`sluice events: ${err.message}\n`);
    return EXIT_USAGE;
  }
  let nc: Awaited<ReturnType<typeof connectNatsWithDeadline>>;
  try {
    nc = await connectNatsWithDeadline(
      config.natsUrl,
      "sluice-events",
      DEFAULT_CONNECT_DEADLINE_MS,
      security,
    );
  } catch (err) {
    if (!(err instanceof SharedStateUnreachableError)) throw err;
    stderr.write(`sluice events: ${err.message}\n`);
    return EXIT_UNREACHABLE;
  }

  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  if (io.signal === undefined) {
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  } else {
    io.signal.addEventListener("abort", onSignal, { once: true });
  }
  let malformed = 0;
  try {
    const result = await readEvents({
      nc,
      stream: config.stream,
      subjectFilter,
      startTimeMs: sinceMs === undefined ? undefined : Date.now() - sinceMs,
      follow: config.follow,
      createIfMissing: true,
      signal: abort.signal,
      onEvent: (event) => {
        if (matchesFilter(event, filter)) {
          stdout.write(`${config.json ? formatEventJson(event) : formatEventLine(event)}\n`);
        }
      },
      onMalformed: () => {
        malformed += 1;
      },
    });
    if (result.kind === "no-jetstream") {
      stderr.write(
        `sluice events: NATS has no usable JetStream (${result.message}); event history needs it\n`,
      );
      return EXIT_FAILURE;
    }
    if (malformed > 0) stderr.write(`sluice events: skipped ${malformed} malformed event(s)\n`);
    return EXIT_OK;
  } catch (err) {
    stderr.write(`sluice events: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILURE;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await nc.close().catch(() => undefined);
  }
}
