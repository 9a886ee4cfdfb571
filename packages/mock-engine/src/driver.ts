import type { EngineLoadSnapshot, EngineModel, EngineRequest, StepResult } from "@sluice/core";

/** Receives one sequence's outputs as the real-time driver delivers them. Times are engine ms. */
export interface SequenceListener {
  /** One output token, at the end of the step that produced it; `first` marks the first token. */
  onToken(atMs: number, first: boolean): void;
  /** The last token has been delivered (the engine already released the sequence's blocks). */
  onFinish(atMs: number): void;
  /** Preempted by recompute: back in the waiting queue; tokens resume after re-prefill. */
  onPreempted?(atMs: number): void;
}

/** Observes every step when its outputs are delivered (metrics, KV events, load publishing). */
export interface StepObserver {
  onStep(result: StepResult, startMs: number, endMs: number): void;
  /** Queue or batch changed outside a step (a request was added or aborted). */
  onLoadChange?(): void;
}

export interface RealtimeDriverOptions {
  /** Engine time runs this many times faster than wall-clock time. */
  speedup?: number;
  /**
   * When timers fall behind the engine clock by more than this (wall-clock ms: a blocked event loop, a
   * suspended process), the engine clock jumps to now instead of replaying the backlog back-to-back.
   */
  maxLagMs?: number;
  /** Monotonic wall clock in ms; injectable for tests. */
  wallClockMs?: () => number;
  observer?: StepObserver;
  /** A listener or observer threw (the loop carries on), or the engine's step threw (in-flight work is dropped). */
  onListenerError?: (error: unknown) => void;
}

export const DEFAULT_SPEEDUP = 1;
export const DEFAULT_MAX_LAG_MS = 250;

/**
 * Drives an `EngineModel` in real time: steps when there is work, waits `durationMs / speedup`,
 * then delivers the step's outputs. Idle (no timer) when there is no work.
 */
export interface RealtimeDriver {
  /** Engine-clock time now, in ms. */
  nowMs(): number;
  /**
   * Queues a request (its `arrivalMs` is set to now) and wakes the loop.
   * @throws the engine's validation errors (e.g. `RequestTooLongError`) synchronously.
   */
  submit(request: Omit<EngineRequest, "arrivalMs">, listener: SequenceListener): void;
  /** Drops a request wherever it is and releases its blocks; its listener hears nothing more. */
  abort(id: string): boolean;
  /** Requests submitted and not yet finished or aborted. */
  inFlight(): number;
  load(): EngineLoadSnapshot;
  /** Resolves when no request is in flight (immediately if none is). */
  idle(): Promise<void>;
  /** Aborts every in-flight request and stops the loop; later `submit`s throw. */
  close(): void;
}

export function createRealtimeDriver(
  engine: EngineModel,
  options: RealtimeDriverOptions = {},
): RealtimeDriver {
  const speedup = options.speedup ?? DEFAULT_SPEEDUP;
  if (!(speedup > 0) || !Number.isFinite(speedup))
    throw new RangeError(`speedup must be > 0, got ${speedup}`);
  const maxLagMs = options.maxLagMs ?? DEFAULT_MAX_LAG_MS;
  const wallClockMs = options.wallClockMs ?? (() => performance.now());
  const observer = options.observer;

  // The engine clock is anchored to the wall clock; timers are scheduled against this mapping
  // (absolute due times), so timer lateness never accumulates into drift.
  const wallAnchorMs = wallClockMs();
  const nowMs = (): number => (wallClockMs() - wallAnchorMs) * speedup;

  const listeners = new Map<string, SequenceListener>();
  let timer: NodeJS.Timeout | undefined;
  /** Engine time at which the step in flight ends, or the previous step ended when idle. */
  let stepEndMs = 0;
  let pending: { result: StepResult; startMs: number } | undefined;
  let closed = false;
  let idleWaiters: Array<() => void> = [];

  // One failing consumer (a response writer, a publisher) must not stop the loop for everyone.
  function guarded(deliverOne: () => void): void {
    try {
      deliverOne();
    } catch (error) {
      options.onListenerError?.(error);
    }
  }

  function settleIdle(): void {
    if (listeners.size > 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  function wake(): void {
    if (closed || timer !== undefined || pending !== undefined) return;
    // A step in flight re-arms the loop when it is delivered; otherwise start now (never before the
    // previous step's end, which the engine would refuse).
    startStep(Math.max(nowMs(), stepEndMs));
  }

  function startStep(startMs: number): void {
    if (!engine.hasWork()) {
      stepEndMs = startMs;
      return;
    }
    let result: StepResult;
    try {
      result = engine.step(startMs);
    } catch (error) {
      // An engine-model bug: end every request (their clients see a cut stream) rather than leave
      // them hanging or take the process down; later requests start from a clean driver state.
      options.onListenerError?.(error);
      for (const id of [...listeners.keys()]) {
        listeners.delete(id);
        engine.abort(id);
      }
      settleIdle();
      stepEndMs = startMs;
      return;
    }
    stepEndMs = startMs + result.durationMs;
    pending = { result, startMs };
    // A step that scheduled nothing (work the engine cannot place yet) must not spin the loop.
    const minDelayMs = result.durationMs > 0 ? 0 : 1;
    const delayMs = Math.max(minDelayMs, (stepEndMs - nowMs()) / speedup);
    timer = setTimeout(deliver, delayMs);
  }

  function deliver(): void {
    timer = undefined;
    const step = pending;
    pending = undefined;
    if (step === undefined || closed) return;
    const { result, startMs } = step;
    const atMs = stepEndMs;
    const first = new Set(result.firstTokens);
    for (const id of result.tokens) {
      const listener = listeners.get(id);
      if (listener !== undefined) guarded(() => listener.onToken(atMs, first.has(id)));
    }
    for (const id of result.preempted) {
      const listener = listeners.get(id);
      if (listener?.onPreempted !== undefined) guarded(() => listener.onPreempted?.(atMs));
    }
    for (const id of result.finished) {
      const listener = listeners.get(id);
      if (listener === undefined) continue;
      listeners.delete(id);
      guarded(() => listener.onFinish(atMs));
    }
    if (observer !== undefined) guarded(() => observer.onStep(result, startMs, atMs));
    settleIdle();
    if (closed) return;
    // Next step starts where this one ended on the engine clock (drift compensation), unless the
    // wall clock is so far ahead that replaying the backlog would only produce a burst.
    const lagWallMs = (nowMs() - atMs) / speedup;
    startStep(lagWallMs > maxLagMs ? nowMs() : atMs);
  }

  return {
    nowMs,
    submit(request, listener) {
      if (closed) throw new Error("the engine driver is closed");
      if (listeners.has(request.id)) throw new Error(`request id ${request.id} is already in flight`);
      engine.add({ ...request, arrivalMs: nowMs() });
      listeners.set(request.id, listener);
      observer?.onLoadChange?.();
      wake();
    },
    abort(id) {
      if (!listeners.delete(id)) return false;
      engine.abort(id);
      observer?.onLoadChange?.();
      settleIdle();
      return true;
    },
    inFlight: () => listeners.size,
    load: () => engine.load(),
    idle() {
      if (listeners.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    close() {
      if (closed) return;
      for (const id of [...listeners.keys()]) {
        listeners.delete(id);
        engine.abort(id);
      }
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      pending = undefined;
      settleIdle();
    },
  };
}
