// Binary min-heap of timed events. Ties in time pop in insertion order (a sequence number), which makes
// the simulation deterministic without relying on the sort stability of anything.

interface Entry<T> {
  timeMs: number;
  seq: number;
  event: T;
}

export class EventQueue<T> {
  #heap: Entry<T>[] = [];
  #nextSeq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(timeMs: number, event: T): void {
    if (Number.isNaN(timeMs)) throw new RangeError("event time is NaN");
    const heap = this.#heap;
    const entry: Entry<T> = { timeMs, seq: this.#nextSeq++, event };
    let i = heap.length;
    heap.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Entry<T>;
      if (p.timeMs < timeMs || (p.timeMs === timeMs && p.seq < entry.seq)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
  }

  /** Time of the earliest event, or Infinity when empty. */
  peekTimeMs(): number {
    return this.#heap.length > 0 ? (this.#heap[0] as Entry<T>).timeMs : Number.POSITIVE_INFINITY;
  }

  /** Removes the earliest event; undefined when empty. */
  pop(): { timeMs: number; event: T } | undefined {
    const heap = this.#heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop() as Entry<T>;
    const n = heap.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        let child = heap[l] as Entry<T>;
        if (r < n) {
          const right = heap[r] as Entry<T>;
          if (right.timeMs < child.timeMs || (right.timeMs === child.timeMs && right.seq < child.seq)) {
            c = r;
            child = right;
          }
        }
        if (last.timeMs < child.timeMs || (last.timeMs === child.timeMs && last.seq < child.seq)) break;
        heap[i] = child;
        i = c;
      }
      heap[i] = last;
    }
    return { timeMs: top.timeMs, event: top.event };
  }
}
