// `….engine.{worker}.load`: the observed load of this engine as binary `sluice.v1.EngineLoad`, on
// change (debounced, ≥ 1 ms) plus a heartbeat so subscribers can tell a quiet engine from a dead one.
// Waiting = the sidecar's queue + the engine's own waiting queue (from its metrics); running is the
// engine's own count when scraped, else the sidecar's in-engine count.
import { encodeEngineLoad } from "./engine-load-binary.js";

export interface LoadSnapshot {
  waiting: number;
  running: number;
  kvUsedBlocks: number;
  kvTotalBlocks: number;
  pendingPrefillTokens: number;
  prefillTokensPerS: number;
  decodeStepMs: number;
  oldestWaitingMs: number;
  preemptionsTotal: number;
}

export interface LoadPublisherDeps {
  publish: (subject: string, data: Uint8Array) => void;
  subject: string;
  workerId: string;
  snapshot: () => LoadSnapshot;
  debounceMs: number;
  heartbeatIntervalMs: number;
  /** Monotonic ms clock; default `performance.now` (tests pass a fake one). */
  nowMs?: () => number;
}

export interface LoadPublisher {
  /**
   * Something may have changed: publish (debounced) if the snapshot differs from the last one. Takes a
   * snapshot, so the sidecar calls it after the request path (its `AfterTurn`), not inside it.
   */
  markChanged(): void;
  /** Snapshots published so far. */
  published(): number;
  close(): void;
}

/** What counts as a change worth a snapshot (model estimates drift continuously: heartbeat only). */
const sameLoad = (a: LoadSnapshot, b: LoadSnapshot | undefined) =>
  b !== undefined &&
  a.waiting === b.waiting &&
  a.running === b.running &&
  a.kvUsedBlocks === b.kvUsedBlocks &&
  a.pendingPrefillTokens === b.pendingPrefillTokens &&
  a.preemptionsTotal === b.preemptionsTotal;

/** uint32 on the wire: rounded and clamped into range, NaN as 0. */
const u32 = (v: number) => (v > 0 ? Math.min(0xffff_ffff, Math.round(v)) : 0);

export function createLoadPublisher(deps: LoadPublisherDeps): LoadPublisher {
  if (!(deps.debounceMs >= 1)) throw new RangeError(`load debounce must be ≥ 1 ms, got ${deps.debounceMs}`);
  const workerIdUtf8 = new TextEncoder().encode(deps.workerId);
  const heartbeatIntervalMs = u32(deps.heartbeatIntervalMs);
  const nowMs = deps.nowMs ?? (() => performance.now());
  let seq = 0;
  let last: LoadSnapshot | undefined;
  let lastAtMs = Number.NEGATIVE_INFINITY;
  let pending: NodeJS.Timeout | undefined;
  let closed = false;

  const publishNow = (l: LoadSnapshot = deps.snapshot()) => {
    last = l;
    lastAtMs = nowMs();
    const data = encodeEngineLoad({
      workerIdUtf8,
      seq: seq + 1,
      timestampMs: Date.now(),
      waiting: u32(l.waiting),
      running: u32(l.running),
      kvUsedBlocks: u32(l.kvUsedBlocks),
      kvTotalBlocks: u32(l.kvTotalBlocks),
      pendingPrefillTokens: u32(l.pendingPrefillTokens),
      prefillTokensPerS: l.prefillTokensPerS,
      decodeStepMs: l.decodeStepMs,
      oldestWaitingMs: u32(l.oldestWaitingMs),
      preemptionsTotal: u32(l.preemptionsTotal),
      heartbeatIntervalMs,
    });
    try {
      deps.publish(deps.subject, data);
      seq += 1;
    } catch {
      // NATS closed or reconnecting: the next change or heartbeat tries again; serving is unaffected.
    }
  };

  const heartbeat = setInterval(() => {
    if (nowMs() - lastAtMs >= deps.heartbeatIntervalMs * 0.9) publishNow();
  }, deps.heartbeatIntervalMs);
  heartbeat.unref();

  return {
    markChanged() {
      if (closed || pending !== undefined) return;
      const l = deps.snapshot();
      if (sameLoad(l, last)) return;
      const waitMs = lastAtMs + deps.debounceMs - nowMs();
      if (waitMs <= 0) {
        publishNow(l);
        return;
      }
      pending = setTimeout(() => {
        pending = undefined;
        if (closed) return;
        const now = deps.snapshot();
        if (!sameLoad(now, last)) publishNow(now);
      }, waitMs);
    },
    published: () => seq,
    close() {
      closed = true;
      clearInterval(heartbeat);
      if (pending !== undefined) clearTimeout(pending);
    },
  };
}
