// `….engine.{worker}.load`: the observed load of this engine as binary `sluice.v1.EngineLoad`, on
// change (debounced, ≥ 1 ms) plus a heartbeat so subscribers can tell a quiet engine from a dead one.
// Waiting = the sidecar's queue + the engine's own waiting queue (from its metrics); running is the
// engine's own count when scraped, else the sidecar's in-engine count.
import { create, toBinary } from "@bufbuild/protobuf";
import { EngineLoadSchema } from "@sluice/proto";

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

const fingerprint = (l: LoadSnapshot) =>
  `${l.waiting}/${l.running}/${l.kvUsedBlocks}/${l.pendingPrefillTokens}/${l.preemptionsTotal}`;

export function createLoadPublisher(deps: LoadPublisherDeps): LoadPublisher {
  if (!(deps.debounceMs >= 1)) throw new RangeError(`load debounce must be ≥ 1 ms, got ${deps.debounceMs}`);
  let seq = 0n;
  let last = "";
  let lastAtMs = Number.NEGATIVE_INFINITY;
  let pending: NodeJS.Timeout | undefined;
  let closed = false;

  const publishNow = (l: LoadSnapshot = deps.snapshot()) => {
    last = fingerprint(l);
    lastAtMs = performance.now();
    const u32 = (v: number) => Math.min(0xffff_ffff, Math.max(0, Math.round(v)));
    const msg = create(EngineLoadSchema, {
      workerId: deps.workerId,
      seq: seq + 1n,
      timestampMs: Date.now(),
      waiting: u32(l.waiting),
      running: u32(l.running),
      kvUsedBlocks: u32(l.kvUsedBlocks),
      kvTotalBlocks: u32(l.kvTotalBlocks),
      pendingPrefillTokens: u32(l.pendingPrefillTokens),
      prefillTokensPerS: l.prefillTokensPerS,
      decodeStepMs: l.decodeStepMs,
      oldestWaitingMs: u32(l.oldestWaitingMs),
      preemptionsTotal: BigInt(u32(l.preemptionsTotal)),
      heartbeatIntervalMs: u32(deps.heartbeatIntervalMs),
    });
    try {
      deps.publish(deps.subject, toBinary(EngineLoadSchema, msg));
      seq += 1n;
    } catch {
      // NATS closed or reconnecting: the next change or heartbeat tries again; serving is unaffected.
    }
  };

  const heartbeat = setInterval(() => {
    if (performance.now() - lastAtMs >= deps.heartbeatIntervalMs * 0.9) publishNow();
  }, deps.heartbeatIntervalMs);
  heartbeat.unref();

  return {
    markChanged() {
      if (closed || pending !== undefined) return;
      const l = deps.snapshot();
      if (fingerprint(l) === last) return;
      const waitMs = lastAtMs + deps.debounceMs - performance.now();
      if (waitMs <= 0) {
        publishNow(l);
        return;
      }
      pending = setTimeout(() => {
        pending = undefined;
        if (closed) return;
        const now = deps.snapshot();
        if (fingerprint(now) !== last) publishNow(now);
      }, waitMs);
    },
    published: () => Number(seq),
    close() {
      closed = true;
      clearInterval(heartbeat);
      if (pending !== undefined) clearTimeout(pending);
    },
  };
}
