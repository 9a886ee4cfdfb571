// Mooncake JSONL: {"timestamp": ms, "input_length": n, "output_length": n, "hash_ids": [ids of 512-token
// blocks]}, one request a line (kvcache-ai/Mooncake FAST25-release traces).

import { TraceFormatError } from "./errors.js";
import type { Trace, TraceReadOptions, TraceRecord } from "./trace.js";

function isNonNegativeInt(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function parseLine(line: string, file: string, lineNo: number): TraceRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    throw new TraceFormatError(file, lineNo, "not valid JSON", { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new TraceFormatError(file, lineNo, "expected a JSON object");
  }
  const row = parsed as Record<string, unknown>;
  const { timestamp, input_length: input, output_length: output, hash_ids: hashIds } = row;
  if (typeof timestamp !== "number" || !Number.isFinite(timestamp) || timestamp < 0) {
    throw new TraceFormatError(
      file,
      lineNo,
      `"timestamp" must be a non-negative number of ms, got ${String(timestamp)}`,
    );
  }
  if (!isNonNegativeInt(input) || input < 1) {
    throw new TraceFormatError(
      file,
      lineNo,
      `"input_length" must be a positive integer, got ${String(input)}`,
    );
  }
  if (!isNonNegativeInt(output) || output < 1) {
    throw new TraceFormatError(
      file,
      lineNo,
      `"output_length" must be a positive integer, got ${String(output)}`,
    );
  }
  if (!Array.isArray(hashIds) || !hashIds.every(isNonNegativeInt)) {
    throw new TraceFormatError(file, lineNo, `"hash_ids" must be an array of non-negative integers`);
  }
  return { timestampMs: timestamp, promptTokens: input, outputTokens: output, hashIds: hashIds as number[] };
}

/** Parses Mooncake JSONL text. Blank lines are ignored; records are sorted by timestamp (stable). */
export function parseMooncakeTrace(text: string, file: string, options: TraceReadOptions = {}): Trace {
  const records: TraceRecord[] = [];
  let skippedLines = 0;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === "") continue;
    try {
      records.push(parseLine(line, file, i + 1));
    } catch (error) {
      if (!options.skipMalformed) throw error;
      skippedLines++;
    }
  }
  if (records.length === 0) throw new TraceFormatError(file, 0, "no requests in trace");
  records.sort((a, b) => a.timestampMs - b.timestampMs);
  return { format: "mooncake", source: file, records, skippedLines };
}
