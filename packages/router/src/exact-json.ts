// JSON with u64 fields (Dynamo worker ids are etcd lease ids, hashes are full 64-bit): every bare
// number is read as its decimal text, so nothing is rounded through a double. Callers convert with
// `u64Of` / `numberOf`.
import { MalformedInputError } from "./errors.js";

// Same technique as @sluice/mock-engine `parseRouterEvent`: quote numbers outside strings.
function quoteNumbers(text: string): string {
  return text.replace(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, (token) =>
    token.startsWith('"') ? token : `"${token}"`,
  );
}

export function parseExactJson(text: string, what: string): unknown {
  try {
    return JSON.parse(quoteNumbers(text));
  } catch (error) {
    throw new MalformedInputError(`${what}: not JSON`, { cause: error });
  }
}

export function u64Of(value: unknown, field: string): bigint {
  if (typeof value !== "string" || !/^\d{1,20}$/.test(value) || BigInt(value) >= 1n << 64n) {
    throw new MalformedInputError(`${field} is not a u64`);
  }
  return BigInt(value);
}

/** A finite number ≥ 0, or `fallback` when absent / null. */
export function numberOf(value: unknown, field: string, fallback = 0): number {
  if (value === undefined || value === null) return fallback;
  const n = typeof value === "string" ? Number(value) : Number.NaN;
  if (!Number.isFinite(n) || n < 0) throw new MalformedInputError(`${field} is not a number ≥ 0`);
  return n;
}

export function objectOf(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new MalformedInputError(`${field} is not an object`);
  }
  return value as Record<string, unknown>;
}
