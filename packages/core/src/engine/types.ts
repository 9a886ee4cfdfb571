// Public API of the vLLM-like engine model. The same model runs in real time inside
// `sluice mock-engine` (driven by timers) and in virtual time inside `sluice sim` (driven by a
// discrete-event loop), so it is pure: no I/O, no timers, time is passed in by the caller.

/**
 * A KV block identity: the Dynamo *sequence* hash of a full block (chained over every block before
 * it, see `kv/block-hash.ts`). A `bigint` because real xxh3-64 values do not fit a double and KV
 * events must carry them exactly on the wire. The engine keys its prefix cache by these values in a
 * `Map<bigint, …>` (V8 hashes a bigint key by value, O(1)); no bigint arithmetic happens in the model,
 * so the simulator may pass synthetic hashes (e.g. `BigInt(hashId)` chained with
 * `chainSequenceHashes`) at no extra cost.
 */
export type BlockHash = bigint;

/** Inputs of one engine iteration that a step-time model prices. */
export interface StepTimeInput {
  /** New prefill tokens computed in this step (prompt chunks and recompute; cache hits excluded). */
  prefillTokens: number;
  /** Sequences in the decode phase that compute one token this step. */
  decodeSeqs: number;
  /** Sequences that emit an output token at the end of this step: decodes plus completed prefills. */
  outputSeqs: number;
  /** Active KV blocks (referenced by a running request) / total blocks, in [0, 1], after scheduling. */
  kvUsage: number;
}

/** Prices one iteration in milliseconds. Must be pure and cheap: the simulator calls it every step. */
export interface StepTimeModel {
  stepMs(step: StepTimeInput): number;
}

export interface EngineModelOptions {
  /** KV cache capacity in blocks (vLLM `num_gpu_blocks`). */
  numGpuBlocks: number;
  /** Tokens per KV block (vLLM `block_size`). */
  blockSize: number;
  /** Maximum running sequences in a batch (vLLM `max_num_seqs`). */
  maxNumSeqs: number;
  /** Token budget of one step: decodes cost 1 each, prefill chunks their length (vLLM `max_num_batched_tokens`). */
  maxNumBatchedTokens: number;
  /**
   * Fraction of `numGpuBlocks` kept free at admission: a waiting request is admitted only if the free
   * blocks (plain free + evictable cached) minus the blocks its whole remaining prefill needs stay at or
   * above `watermark · numGpuBlocks`. Growth of running requests may use the reserve.
   */
  watermark: number;
  /** Reuse cached full prompt blocks by chained hash (vLLM `enable_prefix_caching`). */
  enablePrefixCaching: boolean;
  /** Prices each step; defaults to `dynamoMockerStepTime()`. */
  stepTime: StepTimeModel;
  /** Collect `KvEvent`s in `StepResult.kvEvents`. Off by default so the simulator does not pay for them. */
  collectKvEvents: boolean;
  /**
   * Report every sequence that emitted a token in `StepResult.tokens`. The simulator may switch it off
   * (first tokens and finishes are always reported) to save one array write per running sequence per step.
   */
  reportTokens: boolean;
}

/** A request as the engine sees it: sizes and prompt block hashes, never token ids. */
export interface EngineRequest {
  /** Unique among the requests the engine currently holds. */
  id: string;
  /** Prompt length in tokens, ≥ 1. */
  promptTokens: number;
  /**
   * Chained sequence hashes of the FULL prompt blocks, length `floor(promptTokens / blockSize)`.
   * May be shorter (the rest is treated as uncacheable) but never longer.
   */
  blockHashes: readonly BlockHash[];
  /**
   * Optional Dynamo local (tokens) hashes of the same blocks, same length as `blockHashes`. Only used to
   * fill `tokenHashes` of `stored` KV events, which Dynamo's radix-tree indexer keys on.
   */
  localBlockHashes?: readonly BlockHash[];
  /** Output tokens to generate, ≥ 1; the request finishes after the `maxTokens`-th token. */
  maxTokens: number;
  /** When the request reached the engine (caller's time base); reported back in load snapshots. */
  arrivalMs: number;
}

/** KV cache events in the shape of Dynamo's `KvCacheEventData` (Stored / Removed / Cleared). */
export type KvEvent =
  | {
      type: "stored";
      /** Sequence hash of the block before the first stored one, null when it is the first prompt block. */
      parentHash: BlockHash | null;
      /** Sequence hashes of the newly cached blocks, parent to child. */
      blockHashes: BlockHash[];
      /** Local (tokens) hashes of the same blocks when the request supplied `localBlockHashes`. */
      tokenHashes: BlockHash[] | null;
    }
  | { type: "removed"; blockHashes: BlockHash[] }
  | { type: "cleared" };

/** What one iteration did. Outputs happen at `nowMs + durationMs` of the `step` call. */
export interface StepResult {
  /** Duration priced by the step-time model; 0 when nothing was scheduled. */
  durationMs: number;
  /** New prefill tokens computed (cache hits excluded). */
  prefillTokens: number;
  /** Sequences that computed one decode token. */
  decodeSeqs: number;
  /** Requests that emitted their first output token in this step (TTFT). */
  firstTokens: string[];
  /** Requests that emitted one output token in this step, first tokens included (empty if `reportTokens` is off). */
  tokens: string[];
  /** Requests that emitted their last token in this step; their blocks are already released. */
  finished: string[];
  /** Requests preempted by recompute in this step; they are back at the head of the waiting queue. */
  preempted: string[];
  /** KV cache events of this step, in order (empty unless `collectKvEvents`). */
  kvEvents: KvEvent[];
}

/** Observable load, vLLM-metric-like. Counters are cumulative since creation. */
export interface EngineLoadSnapshot {
  /** Requests waiting (new or preempted), vLLM `num_requests_waiting`. */
  waiting: number;
  /** Requests in the running batch, vLLM `num_requests_running`. */
  running: number;
  /** Blocks referenced by at least one running request. */
  kvUsedBlocks: number;
  kvTotalBlocks: number;
  /** Unreferenced blocks that still hold a cached prefix (evictable, LRU). */
  kvCachedFreeBlocks: number;
  /** Prompt (and recompute) tokens not yet computed, over waiting and prefilling requests; cache hits not yet known for waiting ones. */
  pendingPrefillTokens: number;
  /** `arrivalMs` of the request at the head of the waiting queue (FCFS, so normally the oldest; a preempted request goes back to the head), null when none waits. */
  oldestWaitingArrivalMs: number | null;
  /** Prompt tokens looked up in the prefix cache (first admission of each request), vLLM `prefix_cache_queries`. */
  prefixCacheQueryTokens: number;
  /** Of those, tokens found cached, vLLM `prefix_cache_hits`. */
  prefixCacheHitTokens: number;
  /** Preemptions by recompute, vLLM `num_preemptions`. */
  preemptions: number;
  /** Requests that emitted all their tokens. */
  finishedRequests: number;
}

/** The engine model. Not re-entrant; one instance per simulated engine. */
export interface EngineModel {
  /** The options in force (defaults applied). */
  readonly options: Readonly<EngineModelOptions>;
  /**
   * Puts a request at the tail of the waiting queue (FCFS).
   * @throws InvalidEngineRequestError on malformed fields or a duplicate id,
   *         RequestTooLongError when the request could never fit the KV cache.
   */
  add(req: EngineRequest): void;
  /** The client went away: drop the request wherever it is and release its blocks (cached ones stay cached). Returns false if unknown. */
  abort(id: string): boolean;
  /** True while any request is waiting or running. */
  hasWork(): boolean;
  /**
   * Schedules and executes one iteration starting at `nowMs`.
   * @throws EngineBusyError if `nowMs` is before the end of the previous step.
   */
  step(nowMs: number): StepResult;
  /**
   * Tokens of a prompt with these full-block hashes that the prefix cache holds right now (consecutive
   * hits from the first block × blockSize; 0 when prefix caching is off). A peek: touches nothing.
   */
  cachedPrefixTokens(blockHashes: readonly BlockHash[]): number;
  /** Current load; O(1). */
  load(): EngineLoadSnapshot;
  /**
   * Drops every cached-free block (vLLM `reset_prefix_cache`). Refused (false) while any block is in use,
   * as vLLM does; on success a `cleared` event is delivered with the next step's events.
   */
  resetPrefixCache(): boolean;
}
