// Reads a trace file, choosing the format from `--format` or the file extension.

import { readFile } from "node:fs/promises";
import { parseAzureTrace } from "./azure-reader.js";
import { SimUsageError, TraceFormatError } from "./errors.js";
import { parseMooncakeTrace } from "./mooncake-reader.js";
import type { Trace, TraceFormat, TraceReadOptions } from "./trace.js";

export function traceFormatFromPath(path: string): TraceFormat {
  const lower = path.toLowerCase();
  if (lower.endsWith(".jsonl") || lower.endsWith(".json")) return "mooncake";
  if (lower.endsWith(".csv")) return "azure";
  throw new SimUsageError(
    `cannot tell the trace format of "${path}" from its extension; pass --format mooncake|azure`,
  );
}

export function parseTrace(
  text: string,
  source: string,
  format: TraceFormat,
  options?: TraceReadOptions,
): Trace {
  return format === "mooncake"
    ? parseMooncakeTrace(text, source, options)
    : parseAzureTrace(text, source, options);
}

export async function readTraceFile(
  path: string,
  format?: TraceFormat,
  options?: TraceReadOptions,
): Promise<Trace> {
  const chosen = format ?? traceFormatFromPath(path);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new TraceFormatError(path, 0, `cannot read trace: ${(error as Error).message}`, { cause: error });
  }
  return parseTrace(text, path, chosen, options);
}
