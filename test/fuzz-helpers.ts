// Shared by the fuzz suites (test/fuzz-*.test.ts): a seeded PRNG (every suite prints its seed, and
// SLUICE_FUZZ_SEED replays a failure), the case budget (SLUICE_FUZZ_CASES runs more), a raw HTTP/1.1
// client that can send anything a socket can (bad framing, trickled bytes, resets), the OpenAI error
// shape check, and Prometheus text helpers.

import assert from "node:assert/strict";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** The seed of this run: SLUICE_FUZZ_SEED when given (to replay a failure), else random. */
export function fuzzSeed(suite: string): number {
  const given = process.env.SLUICE_FUZZ_SEED;
  const seed = given !== undefined && given !== "" ? Number(given) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  console.log(`[fuzz ${suite}] seed ${seed} (replay with SLUICE_FUZZ_SEED=${seed})`);
  return seed;
}

/** Random cases per target: `fallback` (sized for CI), or SLUICE_FUZZ_CASES to run more. */
export function fuzzCaseCount(fallback: number): number {
  const given = Number(process.env.SLUICE_FUZZ_CASES);
  return Number.isSafeInteger(given) && given > 0 ? given : fallback;
}

export function reportCases(suite: string, target: string, counts: Readonly<Record<string, number>>): void {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const detail = Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  console.log(`[fuzz ${suite}] ${target}: ${total} cases (${detail})`);
}

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** Integer in [lo, hi]. */
  between(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  bytes(n: number): Buffer;
}

/** mulberry32: small, fast and good enough to drive a fuzzer; the same seed gives the same cases. */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    between: (lo, hi) => lo + int(hi - lo + 1),
    chance: (p) => next() < p,
    pick<T>(items: readonly T[]): T {
      return items[int(items.length)] as T;
    },
    bytes(n) {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = int(256);
      return b;
    },
  };
}

/** A JSON value of a random type (for "wrong type" cases); `depth` bounds nesting. */
export function randomJsonValue(rng: Rng, depth = 2): unknown {
  switch (rng.int(depth > 0 ? 12 : 10)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.between(-1_000_000, 1_000_000);
    case 3:
      return rng.pick([0, -1, 1.5, -0.0001, 1e308, -1e308, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER]);
    case 4:
      return "";
    case 5:
      return rng.bytes(rng.between(1, 40)).toString("latin1");
    case 6:
      return "\u0000\ud800\uffff";
    case 7:
      return [];
    case 8:
      return {};
    case 9:
      return "x".repeat(rng.between(1, 5000));
    case 10:
      return Array.from({ length: rng.between(1, 5) }, () => randomJsonValue(rng, depth - 1));
    default:
      return Object.fromEntries(
        Array.from({ length: rng.between(1, 4) }, (_, i) => [`k${i}`, randomJsonValue(rng, depth - 1)]),
      );
  }
}

/** `depth` levels of `[` … `]` (or `{"a":` … `}`) around `inner`, as text (JSON.stringify would overflow). */
export function deeplyNested(depth: number, kind: "array" | "object", inner = "1"): string {
  return kind === "array"
    ? `${"[".repeat(depth)}${inner}${"]".repeat(depth)}`
    : `${'{"a":'.repeat(depth)}${inner}${"}".repeat(depth)}`;
}

export interface RawResponse {
  /** Undefined when the connection closed (or was reset) without a complete status line. */
  status: number | undefined;
  headers: Record<string, string>;
  body: string;
  /** Why the exchange ended: the response was read, the peer closed, or it errored. */
  ended: "response" | "closed" | "error" | "timeout";
  errorCode?: string | undefined;
}

export interface RawSendOptions {
  /** Give up (destroying the socket) after this long. */
  timeoutMs?: number;
  /** Sent in pieces with a pause between them (slowloris); `pieceBytes` per write. */
  trickle?: { pieceBytes: number; pauseMs: number };
  /** Reset (RST) the connection after writing this many bytes instead of finishing. */
  resetAfterBytes?: number;
  /** Called just before the reset; resolves when the reset may go ahead. */
  beforeReset?: () => Promise<void>;
}

/**
 * Writes `request` (complete HTTP/1.1 bytes, any framing) to `host:port` and reads until the peer
 * closes. Requests should carry `connection: close` so a well-behaved server closes after answering.
 */
export async function sendRaw(
  port: number,
  request: Buffer | string,
  options: RawSendOptions = {},
): Promise<RawResponse> {
  const data = typeof request === "string" ? Buffer.from(request, "latin1") : request;
  const socket = net.connect({ host: "127.0.0.1", port });
  socket.setNoDelay(true);
  const chunks: Buffer[] = [];
  let ended: RawResponse["ended"] | undefined;
  let errorCode: string | undefined;
  const done = new Promise<void>((resolve) => {
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      ended ??= "error";
      errorCode = error.code;
      resolve();
    });
    socket.on("close", () => {
      ended ??= "closed";
      resolve();
    });
  });
  const timer = setTimeout(() => {
    ended ??= "timeout";
    socket.destroy();
  }, options.timeoutMs ?? 15_000);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
  } catch {
    clearTimeout(timer);
    return { status: undefined, headers: {}, body: "", ended: "error", errorCode };
  }
  const limit = options.resetAfterBytes ?? data.length;
  const piece = options.trickle?.pieceBytes ?? limit;
  for (let at = 0; at < limit && !socket.destroyed; at += piece) {
    socket.write(data.subarray(at, Math.min(limit, at + piece)));
    if (options.trickle && at + piece < limit) await sleep(options.trickle.pauseMs);
  }
  if (options.resetAfterBytes !== undefined && !socket.destroyed) {
    await options.beforeReset?.();
    socket.resetAndDestroy();
  }
  await done;
  clearTimeout(timer);
  const parsed = parseResponse(Buffer.concat(chunks));
  return { ...parsed, ended: parsed.status !== undefined ? "response" : (ended ?? "closed"), errorCode };
}

function parseResponse(raw: Buffer): Pick<RawResponse, "status" | "headers" | "body"> {
  const text = raw.toString("utf8");
  const headEnd = text.indexOf("\r\n\r\n");
  const statusMatch = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  if (headEnd < 0 || !statusMatch) return { status: undefined, headers: {}, body: "" };
  const headers: Record<string, string> = {};
  for (const line of text.slice(0, headEnd).split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = text.slice(headEnd + 4);
  if (headers["transfer-encoding"]?.includes("chunked")) body = dechunk(body);
  return { status: Number(statusMatch[1]), headers, body };
}

function dechunk(text: string): string {
  let out = "";
  let at = 0;
  for (;;) {
    const eol = text.indexOf("\r\n", at);
    if (eol < 0) return out;
    const size = Number.parseInt(text.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

/** An HTTP/1.1 request as bytes; `headers` are written verbatim (duplicates and odd values allowed). */
export function rawRequest(
  method: string,
  path: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body: Buffer | string = "",
): Buffer {
  const head = `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n${headers
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), typeof body === "string" ? Buffer.from(body) : body]);
}

/** A JSON POST with a correct content-length. */
export function jsonPost(
  path: string,
  body: Buffer | string,
  extraHeaders: ReadonlyArray<readonly [string, string]> = [],
): Buffer {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  return rawRequest(
    "POST",
    path,
    [["content-type", "application/json"], ["content-length", String(bytes.length)], ...extraHeaders],
    bytes,
  );
}

/** Asserts the OpenAI error shape `{"error":{"message","type","param","code"}}` with a non-empty message. */
export function assertOpenAiError(response: RawResponse, context: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(response.body);
  } catch {
    assert.fail(
      `${context}: ${response.status} body is not JSON: ${JSON.stringify(response.body.slice(0, 200))}`,
    );
  }
  const error = (parsed as { error?: Record<string, unknown> }).error;
  assert.ok(
    error && typeof error === "object",
    `${context}: no "error" object in ${response.body.slice(0, 200)}`,
  );
  assert.equal(typeof error.message, "string", `${context}: error.message`);
  assert.ok((error.message as string).length > 0, `${context}: empty error.message`);
  assert.equal(typeof error.type, "string", `${context}: error.type`);
  assert.equal(typeof error.code, "string", `${context}: error.code`);
  assert.ok("param" in error, `${context}: error.param missing`);
  assert.ok(error.param === null || typeof error.param === "string", `${context}: error.param type`);
}

/** Sum of every sample of a metric family (all label sets) whose label text includes each filter. */
export function metricSum(text: string, name: string, ...labelFilters: string[]): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    if (!labelFilters.every((f) => rest.includes(f))) continue;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

export async function scrape(adminUrl: string): Promise<string> {
  return (await fetch(`${adminUrl}/metrics`)).text();
}

/** Polls `check` until it holds; fails with `what` after `timeoutMs` (the ingress tests' `until`). */
export { until as eventually } from "./ingress-helpers.js";

export async function assertHealthy(adminUrl: string, who: string): Promise<void> {
  const res = await fetch(`${adminUrl}/healthz`);
  assert.equal(res.status, 200, `${who} /healthz`);
  await res.body?.cancel();
}
