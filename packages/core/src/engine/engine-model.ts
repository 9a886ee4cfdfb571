// The vLLM-v1-like engine model: FCFS waiting queue, continuous batching under `maxNumSeqs` and
// `maxNumBatchedTokens`, chunked prefill, prefix caching over a ref-counted block pool with LRU eviction,
// watermark at admission and preemption by recompute. One `step` = one scheduler iteration + its forward
// pass, priced by a `StepTimeModel`. Work per step is O(running sequences); per request O(its blocks);
// nothing is allocated per token.
//
// One iteration, in order:
//   1. every running request in the decode phase gets 1 token of budget (admission order);
//   2. running requests part-way through their prompt (or a recompute) get a chunk of the rest;
//   3. unless this step preempted, waiting requests are admitted FCFS while budget and `maxNumSeqs` allow:
//      full prompt blocks are looked up by chained hash (hits are referenced, never more than
//      `seqLen − 1` tokens so the last token is computed), admission is refused — and the queue stops —
//      when free blocks minus the whole remaining prefill would fall under the watermark; only the
//      blocks of the scheduled chunk are allocated (vLLM v1), later chunks allocate as they run;
//   4. a request whose computed tokens reach its known tokens emits one output token (the first one when
//      its prefill just completed); after `maxTokens` it finishes and releases its blocks.
// A request that cannot get a block preempts the most recently admitted running request (possibly
// itself): all its blocks are released (full prompt blocks stay cached), it goes back to the head of the
// waiting queue and later recomputes prompt + generated tokens, as vLLM's RECOMPUTE mode does.
//
// Simplifications, on purpose:
//   - the model sees no token ids, so only prompt blocks (with caller-supplied hashes) are ever cached;
//     vLLM also caches blocks of generated tokens;
//   - decodes are served before partial prefills (vLLM v1 walks `running` in order; the difference only
//     shows when the budget is smaller than the batch);
//   - plain free blocks are used before cached ones are evicted (see kv/block-pool.ts);
//   - blocks are registered in the prefix cache when their chunk is scheduled (as vLLM does); if that
//     request is preempted later in the same step the chunk is undone but the blocks stay cached;
//   - no speculative decoding, `long_prefill_token_threshold`, `max_model_len`, priorities or LoRA.
import { BlockPool } from "../kv/block-pool.js";
import { EngineBusyError, InvalidEngineRequestError, RequestTooLongError } from "./errors.js";
import { withDefaults } from "./options.js";
import type {
  BlockHash,
  EngineLoadSnapshot,
  EngineModel,
  EngineModelOptions,
  EngineRequest,
  KvEvent,
  StepResult,
} from "./types.js";

const WAITING = 0;
const RUNNING = 1;
const GONE = 2;

/** Mutable per-request state; one object per request for its whole life (re-used across preemptions). */
interface Seq {
  readonly id: string;
  readonly promptTokens: number;
  readonly hashes: readonly BlockHash[];
  readonly localHashes: readonly BlockHash[] | undefined;
  readonly maxTokens: number;
  readonly arrivalMs: number;
  /** Known tokens: prompt + generated (the last generated one's KV is computed by the next decode). */
  seqLen: number;
  /** Tokens whose KV is computed (or taken from the prefix cache). */
  computed: number;
  generated: number;
  /** Allocated blocks in token order; index j holds tokens [j·blockSize, (j+1)·blockSize). */
  readonly blocks: number[];
  /** Leading prompt blocks already accounted in the prefix cache (hit, registered or duplicate). */
  accounted: number;
  /** True until the (re)computed prefill completes; decides decode vs prefill scheduling. */
  inPrefill: boolean;
  state: number;
  /** Prefix-cache query counted (first admission only, so hit rates are per request). */
  queried: boolean;
  /** Step number this request was scheduled in, and what it was given, for rollback on preemption. */
  scheduledStep: number;
  scheduledTokens: number;
  scheduledDecode: boolean;
}

export function createEngineModel(options: Partial<EngineModelOptions> = {}): EngineModel {
  const opts = withDefaults(options);
  const { blockSize, numGpuBlocks, maxNumSeqs, maxNumBatchedTokens, enablePrefixCaching, stepTime } = opts;
  const watermarkBlocks = Math.floor(opts.watermark * numGpuBlocks);
  const maxBlocksPerRequest = numGpuBlocks - watermarkBlocks;
  const pool = new BlockPool(numGpuBlocks);

  const byId = new Map<string, Seq>();
  const running: Seq[] = [];
  // Waiting deque: `waiting[waitingHead..]`; aborted entries are skipped lazily (state GONE).
  let waiting: Seq[] = [];
  let waitingHead = 0;
  let waitingCount = 0;

  let pendingPrefillTokens = 0;
  let prefixQueryTokens = 0;
  let prefixHitTokens = 0;
  let preemptions = 0;
  let finishedRequests = 0;
  let stepNo = 0;
  let busyUntilMs = Number.NEGATIVE_INFINITY;
  let clearedPending = false;

  // Per-step scratch, reset at the start of each step (never shrunk, so no per-step garbage).
  const emitting: Seq[] = [];
  const hitBlocks: number[] = [];
  let budget = 0;
  let prefillTokens = 0;
  let decodeSeqs = 0;
  let preemptedAny = false;
  let result: StepResult;
  let events: KvEvent[] | null = null;
  let evicted: BlockHash[] = [];

  const blocksFor = (tokens: number) => Math.ceil(tokens / blockSize);
  const prefillContribution = (s: Seq) => (s.inPrefill ? s.seqLen - s.computed : 0);

  function flushRemoved(): void {
    if (events === null || evicted.length === 0) return;
    events.push({ type: "removed", blockHashes: evicted });
    evicted = [];
    pool.evicted = evicted;
  }

  /** Caches the prompt blocks `s` has just filled and emits `stored` events per contiguous new run. */
  function registerFullBlocks(s: Seq): void {
    if (!enablePrefixCaching) return;
    const full = Math.min(s.hashes.length, Math.floor(s.computed / blockSize));
    if (full <= s.accounted) return;
    let runStart = -1;
    for (let j = s.accounted; j < full; j++) {
      const stored = pool.register(s.blocks[j]!, s.hashes[j]!);
      if (events === null) continue;
      if (stored && runStart < 0) runStart = j;
      if (!stored && runStart >= 0) {
        emitStored(s, runStart, j);
        runStart = -1;
      }
    }
    if (runStart >= 0) emitStored(s, runStart, full);
    s.accounted = full;
  }

  function emitStored(s: Seq, from: number, to: number): void {
    flushRemoved();
    events!.push({
      type: "stored",
      parentHash: from > 0 ? s.hashes[from - 1]! : null,
      blockHashes: s.hashes.slice(from, to),
      tokenHashes: s.localHashes ? s.localHashes.slice(from, to) : null,
    });
  }

  function releaseBlocks(s: Seq): void {
    // Tail first, as vLLM does: a request's last blocks reach the LRU head first and are evicted before
    // its prefix, which other requests are more likely to share.
    for (let j = s.blocks.length - 1; j >= 0; j--) pool.release(s.blocks[j]!);
    s.blocks.length = 0;
  }

  function pushWaitingFront(s: Seq): void {
    if (waitingHead > 0) {
      waitingHead -= 1;
      waiting[waitingHead] = s;
    } else waiting.unshift(s);
    waitingCount += 1;
  }

  function peekWaiting(): Seq | undefined {
    while (waitingHead < waiting.length) {
      const s = waiting[waitingHead]!;
      if (s.state === WAITING) return s;
      waitingHead += 1; // aborted while waiting
    }
    if (waitingHead > 0) {
      waiting = [];
      waitingHead = 0;
    }
    return undefined;
  }

  function popWaiting(): void {
    waitingHead += 1;
    waitingCount -= 1;
    // Compact once the consumed prefix dominates, keeping memory bounded at O(waiting) amortised.
    if (waitingHead > 1024 && waitingHead * 2 > waiting.length) {
      waiting = waiting.slice(waitingHead);
      waitingHead = 0;
    }
  }

  /** Preemption by recompute: free everything, back to the head of the waiting queue. */
  function preempt(victim: Seq): void {
    if (victim.scheduledStep === stepNo) {
      // Already given work earlier in this step: undo it (it did not run).
      budget += victim.scheduledTokens;
      if (victim.scheduledDecode) decodeSeqs -= 1;
      else prefillTokens -= victim.scheduledTokens;
      victim.scheduledStep = -1;
    }
    pendingPrefillTokens += victim.seqLen - prefillContribution(victim);
    releaseBlocks(victim);
    victim.computed = 0;
    victim.accounted = 0;
    victim.inPrefill = true;
    victim.state = WAITING;
    pushWaitingFront(victim);
    preemptions += 1;
    preemptedAny = true;
    result.preempted.push(victim.id);
  }

  /** Grows `s` to hold `tokens` tokens, preempting from the running tail; false if `s` itself was preempted. */
  function ensureBlocks(s: Seq, tokens: number): boolean {
    let need = blocksFor(tokens) - s.blocks.length;
    while (need > 0) {
      const b = pool.allocate();
      if (b >= 0) {
        s.blocks.push(b);
        need -= 1;
        continue;
      }
      const victim = running.pop()!;
      preempt(victim);
      if (victim === s) return false;
    }
    return true;
  }

  function schedule(s: Seq, tokens: number, decode: boolean): void {
    s.computed += tokens;
    budget -= tokens;
    s.scheduledStep = stepNo;
    s.scheduledTokens = tokens;
    s.scheduledDecode = decode;
    if (decode) decodeSeqs += 1;
    else {
      prefillTokens += tokens;
      pendingPrefillTokens -= tokens;
      registerFullBlocks(s);
    }
    if (s.computed === s.seqLen) emitting.push(s);
  }

  /** Tries to admit the waiting head with the remaining budget; false if it must wait (FCFS: stop). */
  function admit(s: Seq): boolean {
    hitBlocks.length = 0;
    let hitsFromFree = 0;
    if (enablePrefixCaching) {
      // vLLM never serves the whole sequence from cache: the last token is recomputed to get logits.
      const maxHit = Math.min(s.hashes.length, Math.floor((s.seqLen - 1) / blockSize));
      for (let j = 0; j < maxHit; j++) {
        const b = pool.lookup(s.hashes[j]!);
        if (b < 0) break;
        hitBlocks.push(b);
        if (pool.isCachedFree(b)) hitsFromFree += 1;
      }
    }
    const hits = hitBlocks.length;
    // Watermark on the whole remaining prefill, so an admitted request can normally finish its prompt
    // without preempting others; chunks still allocate only what they compute (vLLM v1).
    const wholeNeed = blocksFor(s.seqLen) - hits;
    if (pool.freeBlocks - hitsFromFree - wholeNeed < watermarkBlocks) return false;

    const hitTokens = hits * blockSize;
    if (!s.queried) {
      s.queried = true;
      prefixQueryTokens += s.promptTokens;
      prefixHitTokens += Math.min(hitTokens, s.promptTokens);
    }
    for (let j = 0; j < hits; j++) {
      const b = hitBlocks[j]!;
      pool.touch(b);
      s.blocks.push(b);
    }
    s.computed = hitTokens;
    s.accounted = hits;
    pendingPrefillTokens -= hitTokens;
    const chunk = Math.min(s.seqLen - hitTokens, budget);
    // Cannot fail: the watermark check above reserved more than this chunk needs.
    for (let need = blocksFor(hitTokens + chunk) - hits; need > 0; need--) s.blocks.push(pool.allocate());
    popWaiting();
    s.state = RUNNING;
    running.push(s);
    schedule(s, chunk, false);
    return true;
  }

  function newResult(): StepResult {
    return {
      durationMs: 0,
      prefillTokens: 0,
      decodeSeqs: 0,
      firstTokens: [],
      tokens: [],
      finished: [],
      preempted: [],
      kvEvents: [],
    };
  }

  function step(nowMs: number): StepResult {
    if (!Number.isFinite(nowMs)) throw new RangeError(`step: nowMs must be finite, got ${nowMs}`);
    // Tolerance for float drift of callers that add durations repeatedly.
    if (nowMs < busyUntilMs - 1e-6) throw new EngineBusyError(nowMs, busyUntilMs);
    stepNo += 1;
    result = newResult();
    budget = maxNumBatchedTokens;
    prefillTokens = 0;
    decodeSeqs = 0;
    preemptedAny = false;
    emitting.length = 0;
    if (opts.collectKvEvents) {
      events = result.kvEvents;
      evicted = [];
      pool.evicted = evicted;
      if (clearedPending) events.push({ type: "cleared" });
    } else {
      events = null;
      pool.evicted = null;
    }
    clearedPending = false;

    // 1. Decodes first: one token of budget each, in admission order.
    for (let i = 0; i < running.length && budget > 0; i++) {
      const s = running[i]!;
      if (s.inPrefill) continue;
      if (!ensureBlocks(s, s.computed + 1)) continue; // preempted itself; it was the tail
      schedule(s, 1, true);
    }
    // 2. Chunked prefill of running requests that are part-way through their prompt (or recompute).
    for (let i = 0; i < running.length && budget > 0; i++) {
      const s = running[i]!;
      if (!s.inPrefill) continue;
      const chunk = Math.min(s.seqLen - s.computed, budget);
      if (!ensureBlocks(s, s.computed + chunk)) continue;
      schedule(s, chunk, false);
    }
    // 3. New (or preempted) requests, FCFS, unless this step had to preempt (vLLM v1 does the same).
    if (!preemptedAny) {
      while (budget > 0 && running.length < maxNumSeqs) {
        const s = peekWaiting();
        if (s === undefined || !admit(s)) break;
      }
    }

    const kvUsage = pool.usedBlocks / numGpuBlocks;
    let outputSeqs = 0;
    let anyFinished = false;
    for (let i = 0; i < emitting.length; i++) {
      const s = emitting[i]!;
      if (s.scheduledStep !== stepNo || s.state !== RUNNING) continue; // preempted after scheduling
      outputSeqs += 1;
      s.generated += 1;
      s.inPrefill = false;
      if (s.generated === 1) result.firstTokens.push(s.id);
      if (opts.reportTokens) result.tokens.push(s.id);
      if (s.generated >= s.maxTokens) {
        result.finished.push(s.id);
        releaseBlocks(s);
        s.state = GONE;
        byId.delete(s.id);
        finishedRequests += 1;
        anyFinished = true;
      } else s.seqLen += 1;
    }
    if (anyFinished) {
      let w = 0;
      for (let r = 0; r < running.length; r++) {
        const s = running[r]!;
        if (s.state === RUNNING) running[w++] = s;
      }
      running.length = w;
    }
    flushRemoved();

    result.prefillTokens = prefillTokens;
    result.decodeSeqs = decodeSeqs;
    const scheduledAnything = prefillTokens > 0 || decodeSeqs > 0 || outputSeqs > 0;
    result.durationMs = scheduledAnything
      ? stepTime.stepMs({ prefillTokens, decodeSeqs, outputSeqs, kvUsage })
      : 0;
    busyUntilMs = nowMs + result.durationMs;
    events = null;
    return result;
  }

  function add(req: EngineRequest): void {
    const id = req.id;
    if (typeof id !== "string" || id === "")
      throw new InvalidEngineRequestError(String(id), "id must be a non-empty string");
    if (byId.has(id))
      throw new InvalidEngineRequestError(id, "duplicate id: a request with this id is still in the engine");
    if (!Number.isInteger(req.promptTokens) || req.promptTokens < 1) {
      throw new InvalidEngineRequestError(id, `promptTokens must be an integer ≥ 1, got ${req.promptTokens}`);
    }
    if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) {
      throw new InvalidEngineRequestError(id, `maxTokens must be an integer ≥ 1, got ${req.maxTokens}`);
    }
    if (!Number.isFinite(req.arrivalMs))
      throw new InvalidEngineRequestError(id, `arrivalMs must be finite, got ${req.arrivalMs}`);
    const fullBlocks = Math.floor(req.promptTokens / blockSize);
    if (!Array.isArray(req.blockHashes) || req.blockHashes.length > fullBlocks) {
      throw new InvalidEngineRequestError(
        id,
        `blockHashes must be an array of at most floor(promptTokens / blockSize) = ${fullBlocks} hashes`,
      );
    }
    if (req.localBlockHashes !== undefined && req.localBlockHashes.length !== req.blockHashes.length) {
      throw new InvalidEngineRequestError(id, "localBlockHashes must have the same length as blockHashes");
    }
    // The longest sequence that can still need KV: prompt + all outputs but the last.
    const neededBlocks = blocksFor(req.promptTokens + req.maxTokens - 1);
    if (neededBlocks > maxBlocksPerRequest)
      throw new RequestTooLongError(id, neededBlocks, maxBlocksPerRequest);

    const s: Seq = {
      id,
      promptTokens: req.promptTokens,
      hashes: req.blockHashes,
      localHashes: req.localBlockHashes,
      maxTokens: req.maxTokens,
      arrivalMs: req.arrivalMs,
      seqLen: req.promptTokens,
      computed: 0,
      generated: 0,
      blocks: [],
      accounted: 0,
      inPrefill: true,
      state: WAITING,
      queried: false,
      scheduledStep: -1,
      scheduledTokens: 0,
      scheduledDecode: false,
    };
    byId.set(id, s);
    waiting.push(s);
    waitingCount += 1;
    pendingPrefillTokens += s.seqLen;
  }

  function abort(id: string): boolean {
    const s = byId.get(id);
    if (s === undefined) return false;
    byId.delete(id);
    pendingPrefillTokens -= prefillContribution(s);
    if (s.state === WAITING) {
      waitingCount -= 1; // left in the deque, skipped lazily
    } else if (s.state === RUNNING) {
      releaseBlocks(s);
      const idx = running.indexOf(s);
      if (idx >= 0) running.splice(idx, 1);
    }
    s.state = GONE;
    return true;
  }

  function load(): EngineLoadSnapshot {
    const head = peekWaiting();
    return {
      waiting: waitingCount,
      running: running.length,
      kvUsedBlocks: pool.usedBlocks,
      kvTotalBlocks: numGpuBlocks,
      kvCachedFreeBlocks: pool.cachedFreeBlocks,
      pendingPrefillTokens,
      oldestWaitingArrivalMs: head === undefined ? null : head.arrivalMs,
      prefixCacheQueryTokens: prefixQueryTokens,
      prefixCacheHitTokens: prefixHitTokens,
      preemptions,
      finishedRequests,
    };
  }

  function cachedPrefixTokens(blockHashes: readonly BlockHash[]): number {
    if (!enablePrefixCaching) return 0;
    let hits = 0;
    while (hits < blockHashes.length && pool.lookup(blockHashes[hits]!) >= 0) hits += 1;
    return hits * blockSize;
  }

  return {
    options: opts,
    cachedPrefixTokens,
    add,
    abort,
    hasWork: () => waitingCount > 0 || running.length > 0,
    step,
    load,
    resetPrefixCache(): boolean {
      if (!pool.reset()) return false;
      clearedPending = true;
      return true;
    },
  };
}
