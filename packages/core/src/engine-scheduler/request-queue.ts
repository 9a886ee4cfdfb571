// The L3 sidecar's exact queue: requests waiting to enter the engine, highest class priority first,
// then earliest deadline (arrival + class TTFT objective), then arrival order. One binary heap with
// each entry's heap index stored on the entry, so insert, pop and removal by id (the client went
// away, or the decision rejected it) are all O(log n); an id map finds the entry in O(1).
import { DuplicateRequestIdError, InvalidSchedulerInputError, QueueCapacityError } from "./errors.js";

/** What the queue needs to know about a waiting request. */
export interface QueueEntryInput {
  readonly id: string;
  /** Class name (for rejections and metrics). */
  readonly className: string;
  /** Class priority: higher leaves the queue first. */
  readonly priority: number;
  /** When the request reached the sidecar; queue time is measured from here. */
  readonly arrivalMs: number;
  /** Arrival + class TTFT objective; earlier leaves first within a priority. */
  readonly deadlineMs: number;
  /** Whole prompt in tokens (cached blocks occupy KV too). */
  readonly promptTokens: number;
  /** Prompt tokens the engine still has to prefill (prompt minus the prefix-cache overlap), ≤ promptTokens. */
  readonly uncachedTokens: number;
  /** The request's max_tokens when known (0 or absent: unknown); carried for the ITL guard. */
  readonly maxTokens?: number;
}

/** A queued request: the input plus a tie-breaking sequence number. */
export interface QueueEntry extends QueueEntryInput {
  /** Insertion order; breaks ties so equal keys stay FIFO. */
  readonly seq: number;
}

interface HeapEntry extends QueueEntry {
  heapIndex: number;
}

export interface RequestQueue {
  readonly size: number;
  /** Hard bound on `size` (the N+Q of the policy); `push` beyond it throws. */
  readonly capacity: number;
  /** Σ uncachedTokens over queued requests. */
  readonly totalUncachedTokens: number;
  /**
   * Enqueues a request.
   * @throws InvalidSchedulerInputError on non-finite / negative fields,
   *         DuplicateRequestIdError if the id is queued, QueueCapacityError when full.
   */
  push(input: QueueEntryInput): QueueEntry;
  /** The request that leaves next, without removing it. */
  peek(): QueueEntry | undefined;
  /** Removes and returns the request that leaves next. */
  pop(): QueueEntry | undefined;
  /** Removes a request by id; false when it is not queued. */
  remove(id: string): boolean;
  get(id: string): QueueEntry | undefined;
  has(id: string): boolean;
  /** Σ uncachedTokens of the queued requests that would leave before `key` (a request not yet queued). */
  uncachedTokensAhead(key: Pick<QueueEntry, "priority" | "deadlineMs">): { tokens: number; count: number };
  /** Every queued request in leaving order; O(n log n), a fresh array the caller may keep. */
  ordered(): QueueEntry[];
}

/** True when `a` leaves before `b`. */
function before(a: QueueEntry, b: QueueEntry): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority;
  if (a.deadlineMs !== b.deadlineMs) return a.deadlineMs < b.deadlineMs;
  return a.seq < b.seq;
}

function compare(a: QueueEntry, b: QueueEntry): number {
  return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

function validate(input: QueueEntryInput): void {
  if (typeof input.id !== "string" || input.id === "")
    throw new InvalidSchedulerInputError("queued request: id must be a non-empty string");
  for (const field of ["priority", "arrivalMs", "deadlineMs"] as const) {
    if (!Number.isFinite(input[field]))
      throw new InvalidSchedulerInputError(
        `queued request ${input.id}: ${field} must be finite, got ${input[field]}`,
      );
  }
  if (!(Number.isFinite(input.promptTokens) && input.promptTokens >= 0))
    throw new InvalidSchedulerInputError(
      `queued request ${input.id}: promptTokens must be finite and ≥ 0, got ${input.promptTokens}`,
    );
  if (
    !(
      Number.isFinite(input.uncachedTokens) &&
      input.uncachedTokens >= 0 &&
      input.uncachedTokens <= input.promptTokens
    )
  )
    throw new InvalidSchedulerInputError(
      `queued request ${input.id}: uncachedTokens must be in [0, promptTokens], got ${input.uncachedTokens}`,
    );
}

export function createRequestQueue(capacity: number): RequestQueue {
  if (!(Number.isInteger(capacity) && capacity >= 0))
    throw new InvalidSchedulerInputError(`request queue capacity must be an integer ≥ 0, got ${capacity}`);
  const heap: HeapEntry[] = [];
  const byId = new Map<string, HeapEntry>();
  let nextSeq = 0;
  let totalUncachedTokens = 0;

  const place = (e: HeapEntry, i: number) => {
    heap[i] = e;
    e.heapIndex = i;
  };
  const siftUp = (i: number) => {
    const e = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!before(e, p)) break;
      place(p, i);
      i = parent;
    }
    place(e, i);
  };
  const siftDown = (i: number) => {
    const e = heap[i]!;
    const n = heap.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right]!, heap[left]!) ? right : left;
      const c = heap[child]!;
      if (!before(c, e)) break;
      place(c, i);
      i = child;
    }
    place(e, i);
  };
  const removeAt = (i: number): HeapEntry => {
    const e = heap[i]!;
    const last = heap.pop()!;
    if (last !== e) {
      place(last, i);
      // The moved entry may belong above or below its new slot.
      siftUp(i);
      siftDown(last.heapIndex);
    }
    byId.delete(e.id);
    totalUncachedTokens -= e.uncachedTokens;
    if (byId.size === 0) totalUncachedTokens = 0; // no float drift survives an empty queue
    return e;
  };

  return {
    get size() {
      return heap.length;
    },
    capacity,
    get totalUncachedTokens() {
      return totalUncachedTokens;
    },
    push(input) {
      validate(input);
      if (byId.has(input.id)) throw new DuplicateRequestIdError(input.id);
      if (heap.length >= capacity)
        throw new QueueCapacityError(`request queue is full (${capacity}); ${input.id} not queued`);
      const e: HeapEntry = {
        id: input.id,
        className: input.className,
        priority: input.priority,
        arrivalMs: input.arrivalMs,
        deadlineMs: input.deadlineMs,
        promptTokens: input.promptTokens,
        uncachedTokens: input.uncachedTokens,
        maxTokens: input.maxTokens ?? 0,
        seq: nextSeq++,
        heapIndex: heap.length,
      };
      heap.push(e);
      siftUp(e.heapIndex);
      byId.set(e.id, e);
      totalUncachedTokens += e.uncachedTokens;
      return e;
    },
    peek: () => heap[0],
    pop: () => (heap.length === 0 ? undefined : removeAt(0)),
    remove(id) {
      const e = byId.get(id);
      if (e === undefined) return false;
      removeAt(e.heapIndex);
      return true;
    },
    get: (id) => byId.get(id),
    has: (id) => byId.has(id),
    uncachedTokensAhead(key) {
      // A newcomer gets the next seq, so equal priority and deadline count as ahead (FIFO).
      let tokens = 0;
      let count = 0;
      for (const e of heap) {
        if (e.priority > key.priority || (e.priority === key.priority && e.deadlineMs <= key.deadlineMs)) {
          tokens += e.uncachedTokens;
          count++;
        }
      }
      return { tokens, count };
    },
    ordered: () => heap.slice().sort(compare),
  };
}
