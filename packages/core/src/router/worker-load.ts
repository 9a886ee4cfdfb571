// L2 predicted per-worker load: what the router (and its peer replicas) just routed, known at once,
// before any engine reports it. Engines' observed load is stored beside it in separate fields and
// never overwrites it (DESIGN §3; NVIDIA Dynamo issue #7753 is what happens when it does).
//
// Replicas share one picture by exchanging `RouterSync` deltas (add / prefill_done / free). The
// operations are made commutative per request id, so replicas that see the deltas of different
// publishers interleaved differently still converge:
//   - a `free` for a request not (yet) known leaves a tombstone, and a later `add` of it is ignored;
//   - a `prefill_done` for a request not (yet) known is remembered and applied when its `add` comes;
//   - each publisher's stream is deduplicated by (replica id, seq) — NATS keeps one publisher's
//     order, so seq ≤ last is a redelivery and seq > last + 1 is a gap the shell should resync.
import type { BlockHash } from "../engine/types.js";
import { RouterConfigError, RouterInputError } from "./errors.js";
import { createHashCounts, type HashCounts } from "./hash-counts.js";

/** A routed request as `sluice.v1.RoutedAdd` carries it (protobuf-es field names). */
export interface RoutedAdd {
  requestId: string;
  workerId: string;
  /** Sequence hashes of the request's full prompt blocks, so shared prefixes count once. */
  blockHashes: readonly BlockHash[];
  /** Blocks the request occupies at first token (partial block included), ≥ `blockHashes.length`. */
  blocks: number;
  /** Prompt tokens not covered by the prefix cache that the worker must prefill. */
  prefillTokens: number;
  /** Prompt blocks already cached on the worker. */
  overlapBlocks: number;
}

/** `sluice.v1.RoutedPrefillDone` / `sluice.v1.RoutedFree`. */
export interface RoutedRef {
  requestId: string;
  workerId: string;
}

/** `sluice.v1.RouterSync` in protobuf-es v2 shape, so the shell passes decoded messages straight in. */
export interface RouterSyncDelta {
  replicaId: string;
  seq: bigint;
  timestampMs: number;
  event:
    | { case: "add"; value: RoutedAdd }
    | { case: "prefillDone"; value: RoutedRef }
    | { case: "free"; value: RoutedRef }
    | { case: undefined; value?: undefined };
}

/** An engine's own report (NATS `….engine.{worker}.load`), kept apart from the prediction. */
export interface ObservedWorkerLoad {
  kvUsedBlocks: number;
  kvTotalBlocks: number;
  pendingPrefillTokens: number;
  waiting: number;
  running: number;
  /** Measured prefill throughput; 0 when the engine has not measured one yet. */
  prefillTokensPerS: number;
  /** Measured rate at which KV blocks are released by finishing requests; 0 when unknown. */
  kvBlocksReleasedPerS: number;
  /** When the engine took the snapshot (same time base as the router's `nowMs`). */
  observedAtMs: number;
}

export interface WorkerLoadView {
  workerId: string;
  /** Distinct blocks referenced by this router picture's requests on the worker (shared prefixes once). */
  predictedActiveBlocks: number;
  /** Σ uncached prompt tokens of requests routed to the worker that have no first token yet. */
  predictedPendingPrefillTokens: number;
  predictedRequests: number;
  /** The last observation, or undefined if the engine has not reported. */
  observed: ObservedWorkerLoad | undefined;
}

export type SyncOutcome =
  | { kind: "applied"; gap: false }
  /** Applied, but seqs between `expectedSeq` and `receivedSeq` of that replica were lost: resync. */
  | { kind: "applied"; gap: true; expectedSeq: bigint; receivedSeq: bigint }
  /** Already seen (redelivery, or this replica's own message echoed back). */
  | { kind: "duplicate" };

export interface WorkerLoadOptions {
  /** Id of this router replica; stamped on the deltas it produces. */
  replicaId: string;
  /** Frees / prefill-dones remembered for requests whose `add` has not arrived; oldest forgotten first. */
  maxPendingTombstones: number;
  /**
   * A routed request whose first token has not been reported this long after it was routed stops
   * counting as pending prefill (`expire`): its MarkPrefillDone was lost (caller gone, notification
   * timed out, a replica died) or it is stuck; either way it must not inflate predicted TTFT forever.
   */
  prefillTimeoutMs: number;
  /** A routed request not released this long after it was routed is dropped (`expire`): a lost Release. */
  requestTimeoutMs: number;
}

export const DEFAULT_WORKER_LOAD_OPTIONS: Readonly<Omit<WorkerLoadOptions, "replicaId">> = Object.freeze({
  maxPendingTombstones: 65_536,
  prefillTimeoutMs: 60_000,
  requestTimeoutMs: 30 * 60_000,
});

export function workerLoadOptionsWithDefaults(
  options: Partial<WorkerLoadOptions> & Pick<WorkerLoadOptions, "replicaId">,
): WorkerLoadOptions {
  const o: WorkerLoadOptions = {
    replicaId: options.replicaId,
    maxPendingTombstones: options.maxPendingTombstones ?? DEFAULT_WORKER_LOAD_OPTIONS.maxPendingTombstones,
    prefillTimeoutMs: options.prefillTimeoutMs ?? DEFAULT_WORKER_LOAD_OPTIONS.prefillTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_WORKER_LOAD_OPTIONS.requestTimeoutMs,
  };
  if (typeof o.replicaId !== "string" || o.replicaId.length === 0) {
    throw new RouterConfigError("worker load: replicaId must be a non-empty string");
  }
  if (!Number.isInteger(o.maxPendingTombstones) || o.maxPendingTombstones < 1) {
    throw new RouterConfigError(`maxPendingTombstones must be an integer ≥ 1, got ${o.maxPendingTombstones}`);
  }
  for (const key of ["prefillTimeoutMs", "requestTimeoutMs"] as const) {
    if (!(o[key] > 0)) throw new RouterConfigError(`${key} must be > 0 ms, got ${o[key]}`);
  }
  return o;
}

export interface WorkerLoad {
  /** Records a request this replica routed; returns the delta to publish on `router.sync`. */
  route(request: RoutedAdd, nowMs: number): RouterSyncDelta;
  /** First token: its prefill tokens stop being pending. Undefined when unknown or already done. */
  prefillDone(requestId: string, nowMs: number): RouterSyncDelta | undefined;
  /** The request ended: its blocks are released. Undefined when unknown (idempotent). */
  free(requestId: string, nowMs: number): RouterSyncDelta | undefined;
  /** Applies a peer replica's delta to the same picture. */
  applySync(delta: RouterSyncDelta): SyncOutcome;
  /** Stores an engine observation (never touches the prediction). */
  observe(workerId: string, observed: ObservedWorkerLoad): void;
  /** The worker's lease went: forget its requests and observation. Returns the requests dropped. */
  removeWorker(workerId: string): number;
  /** A peer replica's lease went: forget its sequence state (its routed requests stay until freed). */
  forgetReplica(replicaId: string): void;
  /** The load picture of one worker (zeros for an unknown worker). */
  load(workerId: string): WorkerLoadView;
  /**
   * Dense slot of the worker's load entry, −1 when it has none (no request in flight and no
   * observation: its load is all zeros). A slot stays valid until `slotEpoch` changes, which it does
   * whenever an entry is created or dropped; a caller caching slots re-resolves then.
   */
  slotOf(workerId: string): number;
  /**
   * `load(workerId)` for the worker in `slot`, written into `out` instead of a new object (the
   * router scores every worker per request and must not allocate per worker). Slot −1 gives zeros,
   * no observation and workerId "". The observation is the stored object itself: read, do not keep.
   */
  loadAt(slot: number, out: WorkerLoadView): WorkerLoadView;
  /** Changes whenever a load entry (and so a slot) is created or dropped. */
  readonly slotEpoch: number;
  /** Worker of an in-flight request, if known. */
  workerOf(requestId: string): string | undefined;
  /** Workers with predicted requests or an observation. */
  workers(): string[];
  /**
   * Ages out what a lost notification left behind (`prefillTimeoutMs`, `requestTimeoutMs`, counted
   * from when the request was routed, or when its add arrived from a peer). Local only: every
   * replica (and the aggregator) expires the same entries on its own clock, so nothing is published.
   * O(requests in flight); call it periodically (about once a second), not per request.
   */
  expire(nowMs: number): { prefillExpired: number; requestsExpired: number };
  readonly replicaId: string;
}

interface RequestEntry {
  workerId: string;
  blockHashes: readonly BlockHash[];
  extraBlocks: number;
  prefillTokens: number;
  prefillDone: boolean;
  /** When it was routed here, or when its add arrived from a peer (this process's clock). */
  addedAtMs: number;
}

interface WorkerEntry {
  readonly workerId: string;
  readonly slot: number;
  /** Sequence hash → number of in-flight requests referencing it. */
  blockRefs: HashCounts;
  extraBlocks: number;
  pendingPrefillTokens: number;
  requests: number;
  observed: ObservedWorkerLoad | undefined;
}

function checkCount(value: unknown, what: string): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new RouterInputError(`${what} must be an integer ≥ 0, got ${String(value)}`);
  }
}

function checkAdd(add: RoutedAdd): void {
  if (typeof add.requestId !== "string" || add.requestId.length === 0) {
    throw new RouterInputError("routed request: requestId must be a non-empty string");
  }
  if (typeof add.workerId !== "string" || add.workerId.length === 0) {
    throw new RouterInputError(`routed request ${add.requestId}: workerId must be a non-empty string`);
  }
  const hashes = add.blockHashes;
  if (!Array.isArray(hashes))
    throw new RouterInputError(`routed request ${add.requestId}: blockHashes must be an array`);
  for (let i = 0; i < hashes.length; i++) {
    if (typeof hashes[i] !== "bigint") {
      throw new RouterInputError(`routed request ${add.requestId}: blockHashes[${i}] is not a bigint`);
    }
  }
  checkCount(add.blocks, `routed request ${add.requestId}: blocks`);
  checkCount(add.prefillTokens, `routed request ${add.requestId}: prefillTokens`);
  checkCount(add.overlapBlocks, `routed request ${add.requestId}: overlapBlocks`);
}

export function createWorkerLoad(
  options: Partial<WorkerLoadOptions> & Pick<WorkerLoadOptions, "replicaId">,
): WorkerLoad {
  const opts = workerLoadOptionsWithDefaults(options);
  const requests = new Map<string, RequestEntry>();
  const workersById = new Map<string, WorkerEntry>();
  // Request id → what arrived before its add. Insertion-ordered, so the oldest is evicted first.
  const early = new Map<string, "freed" | "prefillDone">();
  const lastSeqByReplica = new Map<string, bigint>();
  let ownSeq = 0n;
  // Dense slots of the entries in workersById (see `slotOf`).
  const bySlot: (WorkerEntry | undefined)[] = [];
  const freeSlots: number[] = [];
  let slotEpoch = 0;

  function worker(workerId: string): WorkerEntry {
    let w = workersById.get(workerId);
    if (w === undefined) {
      const slot = freeSlots.pop() ?? bySlot.length;
      w = {
        workerId,
        slot,
        blockRefs: createHashCounts(),
        extraBlocks: 0,
        pendingPrefillTokens: 0,
        requests: 0,
        observed: undefined,
      };
      workersById.set(workerId, w);
      bySlot[slot] = w;
      slotEpoch++;
    }
    return w;
  }

  function dropWorker(w: WorkerEntry): void {
    workersById.delete(w.workerId);
    bySlot[w.slot] = undefined;
    freeSlots.push(w.slot);
    slotEpoch++;
  }

  function remember(requestId: string, what: "freed" | "prefillDone"): void {
    early.delete(requestId);
    early.set(requestId, what);
    if (early.size > opts.maxPendingTombstones) {
      const oldest = early.keys().next().value;
      if (oldest !== undefined) early.delete(oldest);
    }
  }

  function addEntry(add: RoutedAdd, prefillDone: boolean, addedAtMs: number): void {
    const w = worker(add.workerId);
    // Reference-counted per hash, so a block is counted once however many requests (or positions of
    // a malformed request) name it, and released exactly when its last holder ends. No per-request
    // dedup pass: chained sequence hashes never repeat within one prompt.
    const hashes = add.blockHashes;
    w.blockRefs.incrementAll(hashes);
    const extraBlocks = Math.max(0, add.blocks - hashes.length);
    w.extraBlocks += extraBlocks;
    if (!prefillDone) w.pendingPrefillTokens += add.prefillTokens;
    w.requests++;
    requests.set(add.requestId, {
      workerId: add.workerId,
      blockHashes: hashes,
      extraBlocks,
      prefillTokens: add.prefillTokens,
      prefillDone,
      addedAtMs,
    });
  }

  function markPrefillDone(entry: RequestEntry): boolean {
    if (entry.prefillDone) return false;
    entry.prefillDone = true;
    const w = worker(entry.workerId);
    w.pendingPrefillTokens -= entry.prefillTokens;
    return true;
  }

  function release(requestId: string, entry: RequestEntry): void {
    requests.delete(requestId);
    const w = workersById.get(entry.workerId);
    if (w === undefined) return;
    if (!entry.prefillDone) w.pendingPrefillTokens -= entry.prefillTokens;
    w.blockRefs.decrementAll(entry.blockHashes);
    w.extraBlocks -= entry.extraBlocks;
    w.requests--;
    if (w.requests === 0 && w.observed === undefined) dropWorker(w);
  }

  function delta(event: RouterSyncDelta["event"], nowMs: number): RouterSyncDelta {
    ownSeq += 1n;
    return { replicaId: opts.replicaId, seq: ownSeq, timestampMs: nowMs, event };
  }

  function applyAdd(add: RoutedAdd): void {
    const pending = early.get(add.requestId);
    if (pending === "freed") {
      early.delete(add.requestId);
      return;
    }
    if (requests.has(add.requestId)) return; // request ids are unique in flight: a re-add is a repeat
    if (pending === "prefillDone") early.delete(add.requestId);
    // Stamped by the next `expire` sweep, on this process's clock whatever the peer's clock says.
    addEntry(add, pending === "prefillDone", Number.NaN);
  }

  return {
    replicaId: opts.replicaId,

    route(request, nowMs) {
      checkAdd(request);
      if (requests.has(request.requestId)) {
        throw new RouterInputError(`routed request ${request.requestId} is already in flight`);
      }
      addEntry(request, false, nowMs);
      // The caller's hash array is shared, not copied: it is read-only everywhere in the router.
      return delta({ case: "add", value: { ...request } }, nowMs);
    },

    prefillDone(requestId, nowMs) {
      const entry = requests.get(requestId);
      if (entry === undefined || !markPrefillDone(entry)) return undefined;
      return delta({ case: "prefillDone", value: { requestId, workerId: entry.workerId } }, nowMs);
    },

    free(requestId, nowMs) {
      const entry = requests.get(requestId);
      if (entry === undefined) return undefined;
      release(requestId, entry);
      return delta({ case: "free", value: { requestId, workerId: entry.workerId } }, nowMs);
    },

    applySync(d) {
      if (typeof d.replicaId !== "string" || d.replicaId.length === 0 || typeof d.seq !== "bigint") {
        throw new RouterInputError("router sync: replicaId and a bigint seq are required");
      }
      if (d.replicaId === opts.replicaId) return { kind: "duplicate" };
      const last = lastSeqByReplica.get(d.replicaId);
      if (last !== undefined && d.seq <= last) return { kind: "duplicate" };
      const event = d.event;
      if (event.case === "add") checkAdd(event.value);
      else if (event.case === "prefillDone" || event.case === "free") {
        if (typeof event.value.requestId !== "string" || event.value.requestId.length === 0) {
          throw new RouterInputError(`router sync ${event.case}: requestId must be a non-empty string`);
        }
      } else throw new RouterInputError("router sync: no event set");
      lastSeqByReplica.set(d.replicaId, d.seq);

      if (event.case === "add") applyAdd(event.value);
      else if (event.case === "prefillDone") {
        const entry = requests.get(event.value.requestId);
        if (entry === undefined) {
          if (early.get(event.value.requestId) !== "freed") remember(event.value.requestId, "prefillDone");
        } else markPrefillDone(entry);
      } else {
        const entry = requests.get(event.value.requestId);
        if (entry === undefined) remember(event.value.requestId, "freed");
        else release(event.value.requestId, entry);
      }
      if (last !== undefined && d.seq !== last + 1n) {
        return { kind: "applied", gap: true, expectedSeq: last + 1n, receivedSeq: d.seq };
      }
      return { kind: "applied", gap: false };
    },

    observe(workerId, observed) {
      if (typeof workerId !== "string" || workerId.length === 0) {
        throw new RouterInputError("observed load: workerId must be a non-empty string");
      }
      for (const key of [
        "kvUsedBlocks",
        "kvTotalBlocks",
        "pendingPrefillTokens",
        "waiting",
        "running",
        "prefillTokensPerS",
        "kvBlocksReleasedPerS",
      ] as const) {
        const v = observed[key];
        if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
          throw new RouterInputError(
            `observed load of ${workerId}: ${key} must be a finite number ≥ 0, got ${v}`,
          );
        }
      }
      if (!Number.isFinite(observed.observedAtMs)) {
        throw new RouterInputError(`observed load of ${workerId}: observedAtMs must be finite`);
      }
      worker(workerId).observed = { ...observed };
    },

    removeWorker(workerId) {
      let dropped = 0;
      for (const [id, entry] of requests) {
        if (entry.workerId === workerId) {
          requests.delete(id);
          dropped++;
        }
      }
      const w = workersById.get(workerId);
      if (w !== undefined) dropWorker(w);
      return dropped;
    },

    forgetReplica(replicaId) {
      lastSeqByReplica.delete(replicaId);
    },

    load(workerId) {
      const w = workersById.get(workerId);
      return {
        workerId,
        predictedActiveBlocks: w === undefined ? 0 : w.blockRefs.size + w.extraBlocks,
        predictedPendingPrefillTokens: w?.pendingPrefillTokens ?? 0,
        predictedRequests: w?.requests ?? 0,
        observed: w?.observed,
      };
    },

    slotOf: (workerId) => workersById.get(workerId)?.slot ?? -1,

    loadAt(slot, out) {
      const w = slot >= 0 ? bySlot[slot] : undefined;
      if (w === undefined) {
        out.workerId = "";
        out.predictedActiveBlocks = 0;
        out.predictedPendingPrefillTokens = 0;
        out.predictedRequests = 0;
        out.observed = undefined;
        return out;
      }
      out.workerId = w.workerId;
      out.predictedActiveBlocks = w.blockRefs.size + w.extraBlocks;
      out.predictedPendingPrefillTokens = w.pendingPrefillTokens;
      out.predictedRequests = w.requests;
      out.observed = w.observed;
      return out;
    },

    get slotEpoch() {
      return slotEpoch;
    },

    workerOf: (requestId) => requests.get(requestId)?.workerId,
    workers: () => [...workersById.keys()],

    expire(nowMs) {
      let prefillExpired = 0;
      let requestsExpired = 0;
      for (const [id, entry] of requests) {
        if (Number.isNaN(entry.addedAtMs)) {
          entry.addedAtMs = nowMs;
          continue;
        }
        const ageMs = nowMs - entry.addedAtMs;
        if (ageMs > opts.requestTimeoutMs) {
          release(id, entry);
          requestsExpired++;
        } else if (ageMs > opts.prefillTimeoutMs && markPrefillDone(entry)) prefillExpired++;
      }
      return { prefillExpired, requestsExpired };
    },
  };
}
