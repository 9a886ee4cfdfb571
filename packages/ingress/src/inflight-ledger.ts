// This instance's exact in-flight accounting. Every admitted request gets a `Slot`; the slot's
// `release` is guarded by a flag so it counts exactly once whichever terminal path (completion,
// upstream error, client disconnect, timeout, shutdown) reaches it first (DESIGN §9:
// admitted = completed + failed + cancelled, and in-flight returns to 0 when idle).

export type TerminalOutcome = "completed" | "failed" | "cancelled";

export interface InflightLoad {
  requests: number;
  kvBlocks: number;
}

export interface Slot {
  readonly requestId: string;
  readonly model: string;
  readonly requestClass: string;
  readonly kvBlocks: number;
  /** Ends the request with `outcome`; true the first time, false (and no effect) afterwards. */
  release(outcome: TerminalOutcome): boolean;
  readonly released: boolean;
}

export interface LedgerCounters {
  admitted: number;
  completed: number;
  failed: number;
  cancelled: number;
}

export interface InflightLedger {
  /** Opens a slot; `onRelease` runs once, inside the slot's single release. */
  acquire(
    requestId: string,
    model: string,
    requestClass: string,
    kvBlocks: number,
    onRelease?: () => void,
  ): Slot;
  /** In-flight by model, then class. */
  byModel(): ReadonlyMap<string, ReadonlyMap<string, InflightLoad>>;
  /** Totals over all models and classes. */
  total(): InflightLoad;
  counters(): Readonly<LedgerCounters>;
  /** Completions per second, exponentially averaged (the drain rate Retry-After is predicted from). */
  completionRatePerS(nowMs: number): number;
  /** Slots not yet released (for shutdown: abort them). */
  open(): Iterable<Slot>;
}

export interface InflightLedgerOptions {
  onChange?: () => void;
  onRelease?: (slot: Slot, outcome: TerminalOutcome) => void;
  nowMs: () => number;
  /** Time constant of the completion-rate average. */
  rateWindowMs?: number;
}

export const DEFAULT_RATE_WINDOW_MS = 5_000;

export function createInflightLedger(options: InflightLedgerOptions): InflightLedger {
  const rateWindowMs = options.rateWindowMs ?? DEFAULT_RATE_WINDOW_MS;
  const models = new Map<string, Map<string, InflightLoad>>();
  const openSlots = new Map<Slot, true>();
  const counters: LedgerCounters = { admitted: 0, completed: 0, failed: 0, cancelled: 0 };
  const totals: InflightLoad = { requests: 0, kvBlocks: 0 };
  // EWMA of the completion rate, updated on each release and decayed on read.
  let rate = 0;
  let rateAtMs = options.nowMs();

  const decayTo = (now: number) => {
    const dt = Math.max(0, now - rateAtMs);
    rate *= Math.exp(-dt / rateWindowMs);
    rateAtMs = now;
  };

  const adjust = (model: string, requestClass: string, requests: number, kvBlocks: number) => {
    let classes = models.get(model);
    if (!classes) {
      classes = new Map();
      models.set(model, classes);
    }
    const load = classes.get(requestClass) ?? { requests: 0, kvBlocks: 0 };
    load.requests += requests;
    load.kvBlocks += kvBlocks;
    totals.requests += requests;
    totals.kvBlocks += kvBlocks;
    if (load.requests === 0) {
      classes.delete(requestClass);
      if (classes.size === 0) models.delete(model);
    } else {
      classes.set(requestClass, load);
    }
    options.onChange?.();
  };

  return {
    acquire(requestId, model, requestClass, kvBlocks, onRelease) {
      let released = false;
      const slot: Slot = {
        requestId,
        model,
        requestClass,
        kvBlocks,
        get released() {
          return released;
        },
        release(outcome) {
          if (released) return false;
          released = true;
          openSlots.delete(slot);
          counters[outcome]++;
          if (outcome === "completed") {
            const now = options.nowMs();
            decayTo(now);
            rate += 1000 / rateWindowMs;
          }
          onRelease?.();
          adjust(model, requestClass, -1, -kvBlocks);
          options.onRelease?.(slot, outcome);
          return true;
        },
      };
      counters.admitted++;
      openSlots.set(slot, true);
      adjust(model, requestClass, 1, kvBlocks);
      return slot;
    },
    byModel: () => models,
    total: () => ({ ...totals }),
    counters: () => ({ ...counters }),
    completionRatePerS(now) {
      decayTo(now);
      return rate;
    },
    open: () => openSlots.keys(),
  };
}
