// L2 prefix index: which worker holds which KV blocks, fed by Dynamo-shaped KV events, answering
// "how many leading blocks of this prompt does each worker have cached".
//
// Structure (Dynamo's flat / nested-map index, not its radix tree): a Dynamo *sequence* hash already
// identifies a block together with its whole prefix, so one hash table `sequence hash → bitset of
// workers` is enough. `findMatches` walks the prompt's sequence hashes and ANDs the bitsets, so a
// worker drops out at the first block it lacks; with 128 workers that is 4 machine words per block.
//
// Why not `Map<bigint, …>`: measured on Node 20 with 1M keys, random lookups in a bigint-keyed Map
// cost ~2× those in an open-addressing table over u32 key halves, it builds ~3× slower, and it needs
// a bitset object per block. The table below keeps key halves, worker count and worker bitset of a
// slot side by side in one Uint32Array (linear probing, backward-shift deletion, load ≤ 0.5), so a
// probe touches one cache line. bench/l2-index.ts measures it at 1M (block, worker) entries.
//
// Event ids and gaps: see `PrefixIndexOptions.gapPolicy`. Matching never trusts a worker whose
// index may hold blocks it no longer has: under `reset` such blocks were dropped, under
// `mark-stale` the worker is left out of every match until repaired.
import type { BlockHash, KvEvent } from "../engine/types.js";
import { RouterConfigError, RouterInputError } from "./errors.js";

// Bounds the bitset width (and so the slot size); far beyond any real deployment of one model.
const MAX_WORKERS = 65_536;

/** What to do when a worker's `event_id` skips ahead (events were lost). */
export type GapPolicy = "reset" | "mark-stale";

export interface PrefixIndexOptions {
  /** Table slots allocated up front (rounded up to a power of two ≥ 2 × this); grows by doubling. */
  initialCapacityBlocks: number;
  /** Workers the bitsets are sized for up front (rounded up to a multiple of 32); grows by doubling. */
  initialWorkerCapacity: number;
  /**
   * `reset` (default): drop every block of the worker, then apply the event. The index then holds a
   * subset of the worker's real cache, so overlap is only ever under-estimated (never routes on a
   * block that is gone) and the worker stays usable.
   * `mark-stale`: keep the blocks but report no matches for the worker until the shell repairs it
   * (`resetWorker`, or a `cleared` event from the worker); events keep being applied meanwhile.
   */
  gapPolicy: GapPolicy;
}

export const DEFAULT_PREFIX_INDEX_OPTIONS: Readonly<PrefixIndexOptions> = Object.freeze({
  initialCapacityBlocks: 65_536,
  initialWorkerCapacity: 64,
  gapPolicy: "reset",
});

export function prefixIndexOptionsWithDefaults(
  options: Partial<PrefixIndexOptions> = {},
): PrefixIndexOptions {
  const o: PrefixIndexOptions = {
    initialCapacityBlocks:
      options.initialCapacityBlocks ?? DEFAULT_PREFIX_INDEX_OPTIONS.initialCapacityBlocks,
    initialWorkerCapacity:
      options.initialWorkerCapacity ?? DEFAULT_PREFIX_INDEX_OPTIONS.initialWorkerCapacity,
    gapPolicy: options.gapPolicy ?? DEFAULT_PREFIX_INDEX_OPTIONS.gapPolicy,
  };
  if (
    !Number.isInteger(o.initialWorkerCapacity) ||
    o.initialWorkerCapacity < 1 ||
    o.initialWorkerCapacity > MAX_WORKERS
  ) {
    throw new RouterConfigError(
      `initialWorkerCapacity must be an integer in [1, ${MAX_WORKERS}], got ${o.initialWorkerCapacity}`,
    );
  }
  if (
    !Number.isInteger(o.initialCapacityBlocks) ||
    o.initialCapacityBlocks < 1 ||
    o.initialCapacityBlocks > 2 ** 28
  ) {
    throw new RouterConfigError(
      `initialCapacityBlocks must be an integer in [1, 2^28], got ${o.initialCapacityBlocks}`,
    );
  }
  if (o.gapPolicy !== "reset" && o.gapPolicy !== "mark-stale") {
    throw new RouterConfigError(`gapPolicy must be "reset" or "mark-stale", got ${String(o.gapPolicy)}`);
  }
  return o;
}

/** Result of applying one KV event. */
export type KvEventOutcome =
  | {
      kind: "applied";
      /** A `stored` event named a parent the worker is not known to hold (index may lag; blocks still stored). */
      parentMissing: boolean;
      /** `removed` hashes the worker was not known to hold (ignored). */
      unknownRemovals: number;
    }
  /** `eventId` ≤ the last applied one (and > 1): a redelivery or a replay; ignored. */
  | { kind: "duplicate"; lastEventId: bigint }
  /**
   * `eventId` 0 or 1 after higher ids: the worker's publisher restarted under the same worker id
   * (its engine cache restarted empty too). Its blocks were dropped, then this event was applied.
   */
  | { kind: "restart"; previousEventId: bigint; droppedBlocks: number }
  /**
   * Events between `expectedEventId` and `receivedEventId` were lost. The gap policy was applied
   * (`droppedBlocks` > 0 under `reset`, `stale` under `mark-stale`), then this event was applied.
   */
  | { kind: "gap"; expectedEventId: bigint; receivedEventId: bigint; droppedBlocks: number; stale: boolean };

export interface PrefixIndexStats {
  /** Distinct block hashes indexed. */
  blocks: number;
  /** (block, worker) pairs indexed. */
  workerBlocks: number;
  workers: number;
  staleWorkers: number;
  gaps: number;
  duplicates: number;
  restarts: number;
  parentMissing: number;
  unknownRemovals: number;
}

/**
 * Per-worker result of `PrefixIndex.matchPrefix`: one object owned and reused by the index, so a
 * lookup allocates nothing. It describes the last `matchPrefix` call and is valid until the next
 * call of any method of the same index (read it synchronously, as a routing decision does).
 * Why: a 128-entry Map per lookup plus per-worker objects in the decision made ~19 young-generation
 * collections per 10 000 routes in bench/l2-route.ts; without them, 1–3.
 */
export interface PrefixMatches {
  /** Leading blocks of the prompt cached on `workerId`; undefined when none (like `Map.get`). */
  get(workerId: string): number | undefined;
  /** Workers with ≥ 1 matched block. */
  readonly size: number;
  /** Visits each worker with ≥ 1 matched block (in the order the walk settled them). */
  forEach(visit: (matchedBlocks: number, workerId: string) => void): void;
  /**
   * `get` by the worker's dense slot (`PrefixIndex.slotOf`): 0 when none or when `slot` is −1.
   * Lets a caller that resolved its workers' slots once score them without a string lookup each.
   */
  depthAt(slot: number): number;
}

export interface PrefixIndex {
  /**
   * Applies one KV event of `workerId` with Dynamo's per-worker `event_id` (expected to increase by 1).
   * The first event seen from a worker sets its baseline (a router that starts late cannot know what
   * came before; the worker's earlier blocks are simply not indexed).
   * @throws RouterInputError on a malformed event (the index is unchanged for that event).
   */
  applyEvent(workerId: string, eventId: bigint, event: KvEvent): KvEventOutcome;
  /**
   * Longest cached prefix per worker, in blocks, for a prompt's sequence hashes (parent to child).
   * Only workers with ≥ 1 matched block appear; stale workers never appear.
   */
  findMatches(sequenceHashes: readonly BlockHash[]): Map<string, number>;
  /**
   * Same answer as `findMatches`, without allocating: into the index's reusable `PrefixMatches`
   * (valid until the index is next called). The router's hot path.
   */
  matchPrefix(sequenceHashes: readonly BlockHash[]): PrefixMatches;
  /**
   * The worker's dense slot (an integer in [0, workers ever held at once)), or −1 when unknown. A slot
   * stays the worker's until `removeWorker`; any change to the slot assignment bumps `slotEpoch`, so a
   * caller caching slots re-resolves when the epoch it cached under differs.
   */
  slotOf(workerId: string): number;
  /** Changes whenever a worker gets or loses a slot (see `slotOf`). */
  readonly slotEpoch: number;
  /** Drops a worker and all its blocks (its lease went). Returns false if unknown. */
  removeWorker(workerId: string): boolean;
  /** Drops a worker's blocks and clears its stale mark, keeping its event id baseline. Returns blocks dropped. */
  resetWorker(workerId: string): number;
  isStale(workerId: string): boolean;
  /** Blocks indexed for a worker (0 if unknown). */
  workerBlockCount(workerId: string): number;
  lastEventId(workerId: string): bigint | undefined;
  workers(): string[];
  stats(): PrefixIndexStats;
  /** Bytes of the typed arrays the index holds (its table dominates; per-worker objects not counted). */
  memoryBytes(): number;
}

interface WorkerState {
  readonly id: string;
  readonly slot: number;
  lastEventId: bigint | undefined;
  stale: boolean;
  blocks: number;
}

const MAX_LOAD = 0.5;
// Lookups overlapped by `findMatches` (see there).
const BATCH = 16;

function strideFor(words: number): number {
  return (3 + words + 3) & ~3;
}

function roundUpPow2(n: number): number {
  let c = 16;
  while (c < n) c *= 2;
  return c;
}

export function createPrefixIndex(options: Partial<PrefixIndexOptions> = {}): PrefixIndex {
  const opts = prefixIndexOptionsWithDefaults(options);

  // One interleaved Uint32Array, `stride` words per slot: [key lo, key hi, worker count, bitset…],
  // padded to a multiple of 4 words so a slot (32 bytes for ≤ 160 workers) sits in one cache line
  // and a probe costs one miss. Count 0 marks an empty slot (a block nobody holds is deleted at once).
  let cap = roundUpPow2(opts.initialCapacityBlocks * 2);
  let mask = cap - 1;
  let words = Math.ceil(opts.initialWorkerCapacity / 32);
  let stride = strideFor(words);
  let table = new Uint32Array(cap * stride);
  let used = 0;
  let pairs = 0;
  let staleMask = new Uint32Array(words);
  let active = new Uint32Array(words);

  const byId = new Map<string, WorkerState>();
  const bySlot: (WorkerState | undefined)[] = [];
  const freeSlots: number[] = [];
  const batchLo = new Uint32Array(BATCH);
  const batchHi = new Uint32Array(BATCH);
  const batchHome = new Int32Array(BATCH);
  // Result of the last walk: matched depth per worker slot (0 = none) and the slots set, so the next
  // walk clears only those (O(matches), not O(workers)).
  let depthBySlot = new Int32Array(words * 32);
  let matchedSlots = new Int32Array(words * 32);
  let matchedCount = 0;
  const counters = { gaps: 0, duplicates: 0, restarts: 0, parentMissing: 0, unknownRemovals: 0 };
  let slotEpoch = 0;

  // Splits a bigint into two u32 halves without allocating (an aliased BigUint64Array measured ~3×
  // faster than DataView.setBigUint64 on Node 20): `splitHash` stores the key, the lookups read its
  // halves from `split32`. Which half is which depends on the host's byte order, which is fine: the
  // halves are only ever compared with halves split the same way. The halves are not kept in `let`
  // variables nor passed to calls that may not be inlined: a u32 ≥ 2^31 is not a small integer, so
  // either boxes it in a new heap number (two per block looked up or stored, before this was fixed).
  const split64 = new BigUint64Array(1);
  const split32 = new Uint32Array(split64.buffer);
  function splitHash(h: BlockHash): void {
    split64[0] = h;
  }

  // Real keys are xxh3 outputs, but tests and traces may use small synthetic hashes: mix anyway.
  function home(l: number, h: number): number {
    let x = Math.imul(l ^ Math.imul(h, 0x85ebca6b), 0x9e3779b1);
    x ^= x >>> 15;
    return x & mask;
  }

  /** Table offset of the slot of the key last given to `splitHash`, or -1. */
  function find(): number {
    const l = split32[0]!;
    const h = split32[1]!;
    let p = home(l, h);
    for (;;) {
      const o = p * stride;
      if (table[o + 2] === 0) return -1;
      if (table[o] === l && table[o + 1] === h) return o;
      p = (p + 1) & mask;
    }
  }

  function rebuild(newCap: number, newWords: number): void {
    const old = table;
    const oldStride = stride;
    const oldCap = cap;
    const oldWords = words;
    cap = newCap;
    mask = cap - 1;
    words = newWords;
    stride = strideFor(words);
    table = new Uint32Array(cap * stride);
    for (let q = 0; q < oldCap; q++) {
      const oq = q * oldStride;
      if (old[oq + 2] === 0) continue;
      let p = home(old[oq]!, old[oq + 1]!);
      while (table[p * stride + 2] !== 0) p = (p + 1) & mask;
      table.set(old.subarray(oq, oq + 3 + oldWords), p * stride);
    }
    if (staleMask.length !== words) {
      const s = new Uint32Array(words);
      s.set(staleMask);
      staleMask = s;
      active = new Uint32Array(words);
      depthBySlot = new Int32Array(words * 32);
      matchedSlots = new Int32Array(words * 32);
      matchedCount = 0;
    }
  }

  // Offset of the slot of the key last given to `splitHash`, inserting an empty entry (count 0: the
  // caller must set a bit).
  function findOrInsert(): number {
    const lo = split32[0]!;
    const hi = split32[1]!;
    let p = home(lo, hi);
    let n = p * stride;
    while (table[n + 2] !== 0) {
      if (table[n] === lo && table[n + 1] === hi) return n;
      p = (p + 1) & mask;
      n = p * stride;
    }
    if (used + 1 > cap * MAX_LOAD) {
      rebuild(cap * 2, words);
      p = home(lo, hi);
      while (table[p * stride + 2] !== 0) p = (p + 1) & mask;
      n = p * stride;
    }
    table[n] = lo;
    table[n + 1] = hi;
    used++;
    return n;
  }

  // Backward-shift deletion keeps every probe chain unbroken without tombstones.
  function deleteAt(offset: number): void {
    let hole = (offset / stride) | 0;
    table[offset + 2] = 0;
    let j = hole;
    for (;;) {
      j = (j + 1) & mask;
      const oj = j * stride;
      if (table[oj + 2] === 0) break;
      const k = home(table[oj]!, table[oj + 1]!);
      const stays = hole <= j ? hole < k && k <= j : hole < k || k <= j;
      if (stays) continue;
      // Element stores, not copyWithin / fill: for an 8-word slot the builtin call costs more than
      // the move itself.
      const oh = hole * stride;
      for (let k = 0; k < stride; k++) table[oh + k] = table[oj + k]!;
      table[oj + 2] = 0;
      hole = j;
    }
    const oh = hole * stride;
    for (let k = 0; k < stride; k++) table[oh + k] = 0;
    used--;
  }

  // Clears one worker's bit everywhere: O(table), only for rare events (cleared, gap, lease loss).
  function dropWorkerBlocks(ws: WorkerState): number {
    const dropped = ws.blocks;
    if (dropped === 0) return 0;
    const bit = 3 + (ws.slot >>> 5);
    const m = 1 << (ws.slot & 31);
    let p = 0;
    while (p < cap) {
      const o = p * stride;
      if (table[o + 2] !== 0 && (table[o + bit]! & m) !== 0) {
        table[o + bit] = table[o + bit]! & ~m;
        pairs--;
        table[o + 2] = table[o + 2]! - 1;
        if (table[o + 2] === 0) {
          // The shift may pull a not-yet-visited entry into p: look at p again.
          deleteAt(o);
          continue;
        }
      }
      p++;
    }
    ws.blocks = 0;
    return dropped;
  }

  function workerState(workerId: string): WorkerState {
    let ws = byId.get(workerId);
    if (ws !== undefined) return ws;
    let slot = freeSlots.pop();
    if (slot === undefined) {
      slot = bySlot.length;
      if (slot >= MAX_WORKERS) throw new RouterInputError(`prefix index: more than ${MAX_WORKERS} workers`);
      bySlot.push(undefined);
    }
    if (slot >= words * 32) rebuild(cap, words * 2);
    ws = { id: workerId, slot, lastEventId: undefined, stale: false, blocks: 0 };
    byId.set(workerId, ws);
    bySlot[slot] = ws;
    slotEpoch++;
    return ws;
  }

  function setStale(ws: WorkerState, stale: boolean): void {
    ws.stale = stale;
    const w = ws.slot >>> 5;
    const m = 1 << (ws.slot & 31);
    staleMask[w] = stale ? staleMask[w]! | m : staleMask[w]! & ~m;
  }

  function checkHashes(hashes: unknown, what: string): asserts hashes is BlockHash[] {
    if (!Array.isArray(hashes)) throw new RouterInputError(`KV event ${what} is not an array`);
    for (const h of hashes) {
      if (typeof h !== "bigint" || h < 0n || h > 0xffff_ffff_ffff_ffffn) {
        throw new RouterInputError(`KV event ${what} holds a value that is not a u64 bigint: ${String(h)}`);
      }
    }
  }

  function applyData(ws: WorkerState, event: KvEvent): { parentMissing: boolean; unknownRemovals: number } {
    const bit = 3 + (ws.slot >>> 5);
    const m = 1 << (ws.slot & 31);
    if (event.type === "stored") {
      let parentMissing = false;
      if (event.parentHash !== null) {
        splitHash(event.parentHash);
        const po = find();
        parentMissing = po < 0 || (table[po + bit]! & m) === 0;
        if (parentMissing) counters.parentMissing++;
      }
      for (const h of event.blockHashes) {
        splitHash(h);
        const o = findOrInsert();
        const b = table[o + bit]!;
        if ((b & m) === 0) {
          table[o + bit] = b | m;
          table[o + 2] = table[o + 2]! + 1;
          ws.blocks++;
          pairs++;
        }
      }
      return { parentMissing, unknownRemovals: 0 };
    }
    if (event.type === "removed") {
      let unknownRemovals = 0;
      for (const h of event.blockHashes) {
        splitHash(h);
        const o = find();
        if (o < 0 || (table[o + bit]! & m) === 0) {
          unknownRemovals++;
          continue;
        }
        table[o + bit] = table[o + bit]! & ~m;
        ws.blocks--;
        pairs--;
        const left = table[o + 2]! - 1;
        table[o + 2] = left;
        if (left === 0) deleteAt(o);
      }
      counters.unknownRemovals += unknownRemovals;
      return { parentMissing: false, unknownRemovals };
    }
    // cleared: the worker's cache is now known exactly (empty), which also repairs a stale worker.
    dropWorkerBlocks(ws);
    setStale(ws, false);
    return { parentMissing: false, unknownRemovals: 0 };
  }

  function validate(workerId: string, eventId: bigint, event: KvEvent): void {
    if (typeof workerId !== "string" || workerId.length === 0) {
      throw new RouterInputError("KV event: worker id must be a non-empty string");
    }
    if (typeof eventId !== "bigint" || eventId < 0n) {
      throw new RouterInputError(
        `KV event of ${workerId}: event id must be a bigint ≥ 0, got ${String(eventId)}`,
      );
    }
    if (event === null || typeof event !== "object") throw new RouterInputError("KV event: not an object");
    if (event.type === "stored") {
      checkHashes(event.blockHashes, "stored.blockHashes");
      if (event.parentHash !== null) checkHashes([event.parentHash], "stored.parentHash");
    } else if (event.type === "removed") {
      checkHashes(event.blockHashes, "removed.blockHashes");
    } else if (event.type !== "cleared") {
      throw new RouterInputError(
        `KV event of ${workerId}: unknown type ${String((event as { type?: unknown }).type)}`,
      );
    }
  }

  // Records `depth` matched blocks for every worker whose bit is set in `dropped` (word `w`).
  function record(dropped: number, w: number, depth: number): void {
    let d = dropped;
    while (d !== 0) {
      const low = d & -d;
      const slot = w * 32 + (31 - Math.clz32(low));
      if (bySlot[slot] !== undefined) {
        depthBySlot[slot] = depth;
        matchedSlots[matchedCount++] = slot;
      }
      d ^= low;
    }
  }

  function clearMatches(): void {
    for (let i = 0; i < matchedCount; i++) depthBySlot[matchedSlots[i]!] = 0;
    matchedCount = 0;
  }

  // Longest cached prefix per worker slot, into depthBySlot / matchedSlots.
  function walkPrefix(sequenceHashes: readonly BlockHash[]): void {
    clearMatches();
    const n = sequenceHashes.length;
    if (n === 0 || pairs === 0) return;
    splitHash(sequenceHashes[0]!);
    let o = find();
    if (o < 0) return;
    let any = 0;
    for (let w = 0; w < words; w++) {
      const a = table[o + 3 + w]! & ~staleMask[w]!;
      active[w] = a;
      any |= a;
    }
    if (any === 0) return;
    // Blocks are looked up in batches of three passes: split the batch's keys (BigInt work, no
    // table access), then read their home slots in a loop doing nothing else (an empty home slot
    // already proves a key absent), then probe. The second pass's loads are independent and close
    // together in the instruction stream, so the CPU keeps many cache / TLB misses in flight at once
    // instead of queuing them one by one behind the BigInt conversions of the first pass.
    let depth = 1;
    walk: while (depth < n) {
      const batch = Math.min(BATCH, n - depth);
      for (let b = 0; b < batch; b++) {
        split64[0] = sequenceHashes[depth + b]!;
        batchLo[b] = split32[0]!;
        batchHi[b] = split32[1]!;
      }
      for (let b = 0; b < batch; b++) {
        const h = home(batchLo[b]!, batchHi[b]!);
        batchHome[b] = table[h * stride + 2] === 0 ? -1 : h;
      }
      for (let b = 0; b < batch; b++, depth++) {
        const l = batchLo[b]!;
        const h = batchHi[b]!;
        let p = batchHome[b]!;
        if (p < 0) break walk;
        o = p * stride;
        while (table[o] !== l || table[o + 1] !== h) {
          if (table[o + 2] === 0) break walk;
          p = (p + 1) & mask;
          o = p * stride;
        }
        if (table[o + 2] === 0) break walk;
        any = 0;
        for (let w = 0; w < words; w++) {
          const a = active[w]!;
          if (a === 0) continue;
          const kept = a & table[o + 3 + w]!;
          const dropped = a ^ kept;
          if (dropped !== 0) record(dropped, w, depth);
          active[w] = kept;
          any |= kept;
        }
        if (any === 0) return;
      }
    }
    for (let w = 0; w < words; w++) {
      if (active[w] !== 0) record(active[w]!, w, depth);
    }
  }

  const matches: PrefixMatches = {
    get(workerId) {
      const ws = byId.get(workerId);
      if (ws === undefined) return undefined;
      const depth = depthBySlot[ws.slot]!;
      return depth === 0 ? undefined : depth;
    },
    get size() {
      return matchedCount;
    },
    forEach(visit) {
      for (let i = 0; i < matchedCount; i++) {
        const slot = matchedSlots[i]!;
        const ws = bySlot[slot];
        if (ws !== undefined) visit(depthBySlot[slot]!, ws.id);
      }
    },
    depthAt: (slot) => (slot >= 0 && slot < depthBySlot.length ? depthBySlot[slot]! : 0),
  };

  return {
    applyEvent(workerId, eventId, event) {
      validate(workerId, eventId, event);
      const ws = workerState(workerId);
      const last = ws.lastEventId;
      if (last !== undefined && eventId <= last) {
        // Publishers number from 0 or 1; without this a worker restarted faster than its lease TTL
        // would have every new event ignored as a duplicate.
        if (eventId <= 1n) {
          counters.restarts++;
          const droppedBlocks = dropWorkerBlocks(ws);
          setStale(ws, false);
          ws.lastEventId = eventId;
          applyData(ws, event);
          return { kind: "restart", previousEventId: last, droppedBlocks };
        }
        counters.duplicates++;
        return { kind: "duplicate", lastEventId: last };
      }
      ws.lastEventId = eventId;
      if (last !== undefined && eventId !== last + 1n) {
        counters.gaps++;
        let droppedBlocks = 0;
        if (opts.gapPolicy === "reset") droppedBlocks = dropWorkerBlocks(ws);
        else setStale(ws, true);
        applyData(ws, event);
        return {
          kind: "gap",
          expectedEventId: last + 1n,
          receivedEventId: eventId,
          droppedBlocks,
          stale: ws.stale,
        };
      }
      const r = applyData(ws, event);
      return { kind: "applied", parentMissing: r.parentMissing, unknownRemovals: r.unknownRemovals };
    },

    findMatches(sequenceHashes) {
      walkPrefix(sequenceHashes);
      const result = new Map<string, number>();
      for (let i = 0; i < matchedCount; i++) {
        const slot = matchedSlots[i]!;
        result.set(bySlot[slot]!.id, depthBySlot[slot]!);
      }
      return result;
    },

    matchPrefix(sequenceHashes) {
      walkPrefix(sequenceHashes);
      return matches;
    },

    removeWorker(workerId) {
      const ws = byId.get(workerId);
      if (ws === undefined) return false;
      dropWorkerBlocks(ws);
      setStale(ws, false);
      byId.delete(workerId);
      bySlot[ws.slot] = undefined;
      // The slot may be handed to a new worker before the next walk: it must not inherit a depth.
      clearMatches();
      freeSlots.push(ws.slot);
      slotEpoch++;
      return true;
    },

    slotOf: (workerId) => byId.get(workerId)?.slot ?? -1,
    get slotEpoch() {
      return slotEpoch;
    },

    resetWorker(workerId) {
      const ws = byId.get(workerId);
      if (ws === undefined) return 0;
      const dropped = dropWorkerBlocks(ws);
      setStale(ws, false);
      return dropped;
    },

    isStale: (workerId) => byId.get(workerId)?.stale ?? false,
    workerBlockCount: (workerId) => byId.get(workerId)?.blocks ?? 0,
    lastEventId: (workerId) => byId.get(workerId)?.lastEventId,
    workers: () => [...byId.keys()],

    memoryBytes: () =>
      table.byteLength +
      staleMask.byteLength +
      active.byteLength +
      depthBySlot.byteLength +
      matchedSlots.byteLength,

    stats() {
      let staleWorkers = 0;
      for (const ws of byId.values()) if (ws.stale) staleWorkers++;
      return { blocks: used, workerBlocks: pairs, workers: byId.size, staleWorkers, ...counters };
    },
  };
}
