// Azure LLM inference trace CSV (Splitwise, ISCA'24): `TIMESTAMP,ContextTokens,GeneratedTokens`, timestamp
// `YYYY-MM-DD HH:MM:SS.fffffff` (UTC, up to 7 fractional digits). No prefix information.

import { TraceFormatError } from "./errors.js";
import type { Trace, TraceReadOptions, TraceRecord } from "./trace.js";

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/;
const POSITIVE_INT = /^\d+$/;

/** Milliseconds since the epoch, fractional (sub-ms digits kept). */
export function parseAzureTimestamp(text: string): number | undefined {
  const m = TIMESTAMP.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac] = m;
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) {
    return undefined;
  }
  const wholeMs = Date.UTC(Number(y), month - 1, day, Number(h), Number(mi), Number(s));
  const fracMs = frac ? Number(`0.${frac}`) * 1000 : 0;
  return wholeMs + fracMs;
}

function parseRow(
  line: string,
  file: string,
  lineNo: number,
): { atMs: number; prompt: number; output: number } {
  const cells = line.split(",");
  if (cells.length !== 3) {
    throw new TraceFormatError(file, lineNo, `expected 3 comma-separated fields, got ${cells.length}`);
  }
  const [ts, ctx, gen] = cells.map((c) => c.trim()) as [string, string, string];
  const atMs = parseAzureTimestamp(ts);
  if (atMs === undefined) {
    throw new TraceFormatError(file, lineNo, `TIMESTAMP "${ts}" is not YYYY-MM-DD HH:MM:SS[.fffffff]`);
  }
  if (!POSITIVE_INT.test(ctx) || Number(ctx) < 1) {
    throw new TraceFormatError(file, lineNo, `ContextTokens must be a positive integer, got "${ctx}"`);
  }
  if (!POSITIVE_INT.test(gen) || Number(gen) < 1) {
    throw new TraceFormatError(file, lineNo, `GeneratedTokens must be a positive integer, got "${gen}"`);
  }
  return { atMs, prompt: Number(ctx), output: Number(gen) };
}

/** Parses Azure CSV text (header required). Timestamps become ms since the earliest request. */
export function parseAzureTrace(text: string, file: string, options: TraceReadOptions = {}): Trace {
  const lines = text.split("\n");
  const header = (lines[0] ?? "").trim().replace(/^\uFEFF/, "");
  if (header.replace(/\s/g, "") !== "TIMESTAMP,ContextTokens,GeneratedTokens") {
    throw new TraceFormatError(
      file,
      1,
      `expected header "TIMESTAMP,ContextTokens,GeneratedTokens", got "${header}"`,
    );
  }
  const rows: { atMs: number; prompt: number; output: number }[] = [];
  let skippedLines = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === "") continue;
    try {
      rows.push(parseRow(line, file, i + 1));
    } catch (error) {
      if (!options.skipMalformed) throw error;
      skippedLines++;
    }
  }
  if (rows.length === 0) throw new TraceFormatError(file, 0, "no requests in trace");
  rows.sort((a, b) => a.atMs - b.atMs);
  const startMs = (rows[0] as { atMs: number }).atMs;
  const records: TraceRecord[] = rows.map((r) => ({
    timestampMs: r.atMs - startMs,
    promptTokens: r.prompt,
    outputTokens: r.output,
  }));
  return { format: "azure", source: file, records, skippedLines };
}
