// Time is injected so the same decision code runs in real time (processes) and virtual time (sim).
// `@sluice/core` never reads the system clock itself; the process shells pass one in.

/** A source of "now" in milliseconds (any epoch; only differences matter to core). */
export interface Clock {
  nowMs(): number;
}

/** A clock tests and the simulator move by hand. */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms` (≥ 0). */
  advance(ms: number): void;
  /** Jumps to `ms`, which must not be in the past: decisions assume time never runs backwards. */
  set(ms: number): void;
}

export function manualClock(startMs = 0): ManualClock {
  if (!Number.isFinite(startMs)) throw new RangeError(`manualClock: startMs must be finite, got ${startMs}`);
  let now = startMs;
  return {
    nowMs: () => now,
    advance(ms) {
      if (!(ms >= 0) || !Number.isFinite(ms))
        throw new RangeError(`ManualClock.advance: ms must be finite and ≥ 0, got ${ms}`);
      now += ms;
    },
    set(ms) {
      if (!Number.isFinite(ms) || ms < now)
        throw new RangeError(`ManualClock.set: ${ms} is before now (${now}) or not finite`);
      now = ms;
    },
  };
}
