// L2 hold queue: requests that found every eligible worker busy wait here briefly instead of being
// rejected at once, bounded per class in size and in time.
//
// Order: higher class priority first; within a class, earliest deadline first (the deadline is
// min(enqueue + max hold, the request's own deadline)), ties in arrival order. `drain` releases in
// that order and stops at the first request that still cannot be placed, so a lower class never
// overtakes a held higher-priority request (strict priority; the bounds keep the wait short).
import { RouterConfigError, RouterInputError } from "./errors.js";

export interface HoldClass {
  name: string;
  /** Higher is released first. */
  priority: number;
  /** Requests of the class held at once; 0 = never held (rejected at once). */
  maxHeld: number;
}

export interface HoldQueueOptions {
  classes: readonly HoldClass[];
  /** Longest a request is held; its own deadline, if earlier, wins. */
  maxHoldMs: number;
}

export interface HeldEntry<T> {
  id: string;
  requestClass: string;
  item: T;
  enqueuedMs: number;
  /** When the request is rejected with `hold_timeout` if still held. */
  expiresAtMs: number;
}

export type OfferOutcome =
  | { accepted: true; expiresAtMs: number }
  /** The class's queue is full (or the class is never held); `held` / `maxHeld` are the numbers compared. */
  | { accepted: false; reason: "hold_queue_full"; held: number; maxHeld: number };

export interface DrainResult<T, R> {
  /** Placed in release order, with what `tryPlace` returned. */
  placed: { entry: HeldEntry<T>; result: R; heldMs: number }[];
  /** Held past their expiry: reject with `hold_timeout`. */
  expired: { entry: HeldEntry<T>; heldMs: number }[];
}

export interface HoldQueue<T> {
  /** Holds a request. @throws RouterInputError for an unknown class, a duplicate id or bad times. */
  offer(id: string, requestClass: string, item: T, nowMs: number, deadlineMs?: number): OfferOutcome;
  /** Withdraws a held request (the client went away). */
  remove(id: string): HeldEntry<T> | undefined;
  /**
   * Expires what is due, then offers held requests to `tryPlace` in release order until it returns
   * undefined (still no capacity). Call it when capacity frees (prefill done, release, new worker) and
   * at `nextExpiryMs()`.
   */
  drain<R>(nowMs: number, tryPlace: (entry: HeldEntry<T>) => R | undefined): DrainResult<T, R>;
  /** Earliest expiry among held requests, for the shell's timer; undefined when empty. */
  nextExpiryMs(): number | undefined;
  /** Held requests of one class, or of all classes. */
  size(requestClass?: string): number;
}

interface ClassQueue<T> {
  config: HoldClass;
  entries: (HeldEntry<T> & { order: number })[];
}

export function createHoldQueue<T>(options: HoldQueueOptions): HoldQueue<T> {
  if (!Number.isFinite(options.maxHoldMs) || options.maxHoldMs < 0) {
    throw new RouterConfigError(`maxHoldMs must be a finite number ≥ 0, got ${options.maxHoldMs}`);
  }
  const byName = new Map<string, ClassQueue<T>>();
  for (const c of options.classes) {
    if (byName.has(c.name)) throw new RouterConfigError(`hold queue: class ${c.name} listed twice`);
    if (!Number.isInteger(c.maxHeld) || c.maxHeld < 0) {
      throw new RouterConfigError(
        `hold queue: maxHeld of ${c.name} must be an integer ≥ 0, got ${c.maxHeld}`,
      );
    }
    if (!Number.isFinite(c.priority))
      throw new RouterConfigError(`hold queue: priority of ${c.name} must be finite`);
    byName.set(c.name, { config: { ...c }, entries: [] });
  }
  // Stable: equal priorities keep the configured order.
  const ordered = [...byName.values()].sort((a, b) => b.config.priority - a.config.priority);
  const classOf = new Map<string, ClassQueue<T>>();
  let order = 0;

  function take(q: ClassQueue<T>, index: number): HeldEntry<T> {
    const [e] = q.entries.splice(index, 1);
    classOf.delete(e!.id);
    const { order: _order, ...entry } = e!;
    return entry;
  }

  return {
    offer(id, requestClass, item, nowMs, deadlineMs) {
      const q = byName.get(requestClass);
      if (q === undefined)
        throw new RouterInputError(`hold queue: unknown class ${JSON.stringify(requestClass)}`);
      if (classOf.has(id)) throw new RouterInputError(`hold queue: request ${id} is already held`);
      if (!Number.isFinite(nowMs)) throw new RouterInputError("hold queue: nowMs must be finite");
      if (deadlineMs !== undefined && !Number.isFinite(deadlineMs)) {
        throw new RouterInputError("hold queue: deadlineMs must be finite when given");
      }
      if (q.entries.length >= q.config.maxHeld) {
        return {
          accepted: false,
          reason: "hold_queue_full",
          held: q.entries.length,
          maxHeld: q.config.maxHeld,
        };
      }
      const expiresAtMs = Math.min(nowMs + options.maxHoldMs, deadlineMs ?? Number.POSITIVE_INFINITY);
      const entry = { id, requestClass, item, enqueuedMs: nowMs, expiresAtMs, order: order++ };
      // Binary search for the first entry that expires later: EDF, ties stay in arrival order.
      let low = 0;
      let high = q.entries.length;
      while (low < high) {
        const mid = (low + high) >>> 1;
        if (q.entries[mid]!.expiresAtMs <= expiresAtMs) low = mid + 1;
        else high = mid;
      }
      q.entries.splice(low, 0, entry);
      classOf.set(id, q);
      return { accepted: true, expiresAtMs };
    },

    remove(id) {
      const q = classOf.get(id);
      if (q === undefined) return undefined;
      return take(
        q,
        q.entries.findIndex((e) => e.id === id),
      );
    },

    drain<R>(nowMs: number, tryPlace: (entry: HeldEntry<T>) => R | undefined): DrainResult<T, R> {
      const placed: DrainResult<T, R>["placed"] = [];
      const expired: DrainResult<T, R>["expired"] = [];
      for (const q of ordered) {
        // Sorted by expiry, so the expired ones are a prefix.
        while (q.entries.length > 0 && q.entries[0]!.expiresAtMs <= nowMs) {
          const entry = take(q, 0);
          expired.push({ entry, heldMs: nowMs - entry.enqueuedMs });
        }
      }
      outer: for (const q of ordered) {
        while (q.entries.length > 0) {
          const result = tryPlace(q.entries[0]!);
          if (result === undefined) break outer;
          const entry = take(q, 0);
          placed.push({ entry, result, heldMs: nowMs - entry.enqueuedMs });
        }
      }
      return { placed, expired };
    },

    nextExpiryMs() {
      let next: number | undefined;
      for (const q of ordered) {
        const head = q.entries[0];
        if (head !== undefined && (next === undefined || head.expiresAtMs < next)) next = head.expiresAtMs;
      }
      return next;
    },

    size(requestClass) {
      if (requestClass !== undefined) return byName.get(requestClass)?.entries.length ?? 0;
      return classOf.size;
    },
  };
}
