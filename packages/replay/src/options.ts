// Options of one replay run, with their defaults. Times are in ENGINE ms (the trace's and the objectives'
// clock) unless the name says wall: with `speedupFactor` S the whole timeline is compressed S times, so a
// request due at trace time t (after rate scaling) is sent at wall time t / S, and every wall duration the
// client measures is multiplied by S to report it in engine time — the clock the mock engines' step model
// and `sluice sim` both run on.

import { type ClassMix, DEFAULT_CLASS_MIX, DEFAULT_SPREAD_BUCKET_MS, type Trace } from "@sluice/sim";
import { ReplayUsageError } from "./errors.js";

export interface ReplayOptions {
  trace: Trace;
  /** Base URLs (`http://host:port`) or full `/v1/completions` URLs; requests go to the least busy. */
  targets: readonly URL[];
  /** Arrivals are divided by this (2 = twice the trace's rate), as in `sluice sim`. */
  rateScale: number;
  /** Only requests recorded in the first `durationMs` of the trace (trace time, before scaling). */
  durationMs?: number;
  /** As `sluice sim --spread-bucket-ms`. */
  spreadBucketMs: number;
  seed: number;
  classMix: ClassMix;
  /** The engines' speed-up over real time (`--speedup` of `sluice up` / `sluice mock-engine`). */
  speedupFactor: number;
  /** At most this many requests in flight; 0 = unlimited. Arrivals beyond it wait (and show as lag). */
  concurrencyLimit: number;
  /** `model` field of every request. */
  model: string;
  /** Wall time one request may take, connect to `[DONE]`. */
  requestTimeoutWallMs: number;
  /**
   * Client-bottleneck threshold, engine ms: when the p99 send lag or the p99 event-loop delay (both × S)
   * exceeds it, the client's own lateness is a visible share of TTFT and goodput is not reported.
   */
  maxClientLagMs: number;
  /** Request headers sent with every request (e.g. authorization). */
  headers: Readonly<Record<string, string>>;
  /** Called about once a wall second while running, and once at the end. */
  onProgress?: (progress: ReplayProgress) => void;
  /** Wall clock in ms; performance.now by default. */
  now?: () => number;
}

export interface ReplayProgress {
  total: number;
  sent: number;
  inFlight: number;
  completed: number;
  rejected: number;
  failed: number;
  /** Engine ms of the trace timeline reached so far. */
  traceMs: number;
  /** Send lag of the last request sent, engine ms. */
  lastLagMs: number;
}

export const DEFAULT_REPLAY_OPTIONS = Object.freeze({
  rateScale: 1,
  spreadBucketMs: DEFAULT_SPREAD_BUCKET_MS,
  seed: 1,
  classMix: DEFAULT_CLASS_MIX,
  speedupFactor: 1,
  concurrencyLimit: 0,
  model: "mock-llm",
  requestTimeoutWallMs: 600_000,
  maxClientLagMs: 100,
  headers: Object.freeze({}) as Readonly<Record<string, string>>,
});

export type ResolvedReplayOptions = Omit<Required<ReplayOptions>, "durationMs" | "onProgress"> &
  Pick<ReplayOptions, "durationMs" | "onProgress">;

export function withDefaults(
  options: Pick<ReplayOptions, "trace" | "targets"> & Partial<ReplayOptions>,
): ResolvedReplayOptions {
  const o = { ...DEFAULT_REPLAY_OPTIONS, now: () => performance.now(), ...options };
  if (o.targets.length === 0) throw new ReplayUsageError("at least one target URL is needed");
  for (const t of o.targets) {
    if (t.protocol !== "http:" && t.protocol !== "https:") {
      throw new ReplayUsageError(`target ${t.href} must be an http:// or https:// URL`);
    }
  }
  if (!(o.speedupFactor > 0) || !Number.isFinite(o.speedupFactor)) {
    throw new ReplayUsageError(`speed-up must be a positive number, got ${o.speedupFactor}`);
  }
  if (!Number.isInteger(o.concurrencyLimit) || o.concurrencyLimit < 0) {
    throw new ReplayUsageError(`concurrency limit must be an integer ≥ 0, got ${o.concurrencyLimit}`);
  }
  if (!(o.requestTimeoutWallMs > 0)) {
    throw new ReplayUsageError(`request timeout must be positive, got ${o.requestTimeoutWallMs} ms`);
  }
  if (!(o.maxClientLagMs > 0)) {
    throw new ReplayUsageError(`client lag threshold must be positive, got ${o.maxClientLagMs} ms`);
  }
  if (o.model === "") throw new ReplayUsageError("model must not be empty");
  return o;
}

/** `http://h:p` → `http://h:p/v1/completions`; a URL that already names a path is used as given. */
export function completionsUrl(target: URL): URL {
  if (target.pathname !== "/" && target.pathname !== "") return target;
  return new URL("/v1/completions", target);
}
