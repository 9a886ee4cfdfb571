import { create, toBinary } from "@bufbuild/protobuf";
import type { EngineLoadSnapshot } from "@sluice/core";
import { EngineLoadSchema } from "@sluice/proto";
import type { Publisher } from "./kv-events.js";
import type { StepStats } from "./step-stats.js";

export interface LoadPublisherOptions {
  /** Minimum spacing of change-driven snapshots. */
  debounceMs?: number;
  /** A snapshot goes out at least this often even when nothing changes (liveness for subscribers). */
  heartbeatIntervalMs?: number;
}

export const DEFAULT_LOAD_DEBOUNCE_MS = 1;
export const DEFAULT_LOAD_HEARTBEAT_INTERVAL_MS = 1_000;

export interface LoadPublisherDeps {
  publisher: () => Publisher | undefined;
  subject: string;
  workerId: string;
  load: () => EngineLoadSnapshot;
  stats: StepStats;
  /** Engine-clock now, for the age of the oldest waiting request. */
  engineNowMs: () => number;
  /** Wall clock (Unix ms) for `timestamp_ms`. */
  wallNowMs?: () => number;
}

export interface LoadPublisher {
  /** The engine's queue or batch may have changed: publish (debounced) if the snapshot differs. */
  markChanged(): void;
  /** Snapshots handed to NATS so far (the last `seq`). */
  published(): bigint;
  close(): void;
}

function fingerprint(load: EngineLoadSnapshot): string {
  return `${load.waiting}/${load.running}/${load.kvUsedBlocks}/${load.pendingPrefillTokens}/${load.preemptions}`;
}

/**
 * Publishes `sluice.v1.EngineLoad` (binary protobuf) on change with a debounce, plus a heartbeat.
 * Publishing failures (NATS down or closed) are swallowed: the next change or heartbeat tries again.
 */
export function createLoadPublisher(
  deps: LoadPublisherDeps,
  options: LoadPublisherOptions = {},
): LoadPublisher {
  const debounceMs = options.debounceMs ?? DEFAULT_LOAD_DEBOUNCE_MS;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_LOAD_HEARTBEAT_INTERVAL_MS;
  if (!(debounceMs >= 1)) throw new RangeError(`load debounce must be >= 1 ms, got ${debounceMs}`);
  if (!(heartbeatIntervalMs >= debounceMs)) {
    throw new RangeError(`load heartbeat interval (${heartbeatIntervalMs} ms) must be >= the debounce`);
  }
  const wallNowMs = deps.wallNowMs ?? Date.now;
  let seq = 0n;
  let lastFingerprint = "";
  let lastPublishMs = Number.NEGATIVE_INFINITY;
  let debounceTimer: NodeJS.Timeout | undefined;
  let closed = false;

  function publishNow(): void {
    const load = deps.load();
    lastFingerprint = fingerprint(load);
    lastPublishMs = performance.now();
    const target = deps.publisher();
    if (target === undefined) return;
    const oldestWaitingMs =
      load.oldestWaitingArrivalMs === null
        ? 0
        : Math.max(0, deps.engineNowMs() - load.oldestWaitingArrivalMs);
    const message = create(EngineLoadSchema, {
      workerId: deps.workerId,
      seq: seq + 1n,
      timestampMs: wallNowMs(),
      waiting: load.waiting,
      running: load.running,
      kvUsedBlocks: load.kvUsedBlocks,
      kvTotalBlocks: load.kvTotalBlocks,
      pendingPrefillTokens: load.pendingPrefillTokens,
      prefillTokensPerS: deps.stats.prefillTokensPerS(),
      decodeStepMs: deps.stats.decodeStepMs(),
      oldestWaitingMs: Math.min(Math.round(oldestWaitingMs), 0xffff_ffff),
      preemptionsTotal: BigInt(load.preemptions),
      heartbeatIntervalMs,
    });
    try {
      // Dropped (NATS down) does not use up a sequence number; the next change or heartbeat retries.
      if (target.publish(deps.subject, toBinary(EngineLoadSchema, message)) !== false) seq += 1n;
    } catch {
      // Connection closed: the heartbeat retries; serving is unaffected.
    }
  }

  const heartbeat = setInterval(() => {
    if (performance.now() - lastPublishMs >= heartbeatIntervalMs * 0.9) publishNow();
  }, heartbeatIntervalMs);
  heartbeat.unref();

  return {
    markChanged() {
      if (closed || debounceTimer !== undefined) return;
      if (fingerprint(deps.load()) === lastFingerprint) return;
      const waitMs = lastPublishMs + debounceMs - performance.now();
      if (waitMs <= 0) {
        publishNow();
        return;
      }
      // Trailing edge: whatever the state is when the window ends gets published.
      debounceTimer = setTimeout(() => {
        debounceTimer = undefined;
        if (!closed && fingerprint(deps.load()) !== lastFingerprint) publishNow();
      }, waitMs);
    },
    published: () => seq,
    close() {
      closed = true;
      clearInterval(heartbeat);
      if (debounceTimer !== undefined) clearTimeout(debounceTimer);
    },
  };
}
