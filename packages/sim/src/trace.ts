// The trace model every reader produces: one record per request, arrival relative to the trace start.

export type TraceFormat = "mooncake" | "azure";

export interface TraceRecord {
  /** Arrival in ms since the first request of the trace, as recorded (before jitter and rate scaling). */
  timestampMs: number;
  promptTokens: number;
  outputTokens: number;
  /** Mooncake `hash_ids` (trace-block ids); undefined when the trace has no prefix information. */
  hashIds?: number[];
}

export interface Trace {
  format: TraceFormat;
  /** Where it came from (file path or a fixture name), for messages and reports. */
  source: string;
  records: TraceRecord[];
  /** Malformed lines skipped (only non-zero when the reader was told to skip instead of fail). */
  skippedLines: number;
}

export interface TraceReadOptions {
  /** Skip and count malformed lines instead of failing on the first one. */
  skipMalformed?: boolean;
}
