// Work that must happen soon but not on the request path: refreshing the learned-model gauges, the
// load snapshot check and publishing decision events. Tasks queued during one event-loop turn run
// together after it, so the proxy's socket writes for that turn go first, and everything the tasks
// publish on NATS leaves in one write (nats.js flushes once per macrotask). A task queued twice
// before it runs runs once.
//
// When: right after the turn (setImmediate) if the sidecar is idle by then; while it is busy (a request
// queued or inside the engine) up to `busyDelayMs` later, unless it goes idle sooner. At low traffic
// that makes a request's `queued`/`admitted` events and its `done` event leave in one NATS write after
// its response is sent, instead of one write while the engine works and another after (issue 6:
// each write wakes nats-server, on the same few cores as the engine and the client); at high traffic
// it bounds the sidecar to one write per `busyDelayMs` however many requests finish.

export interface AfterTurnOptions {
  /** True while requests are queued or in the engine. Default: never busy (always right after the turn). */
  busy?: () => boolean;
  /** Longest a task waits while the sidecar stays busy. */
  busyDelayMs?: number;
}

export const DEFAULT_AFTER_TURN_BUSY_DELAY_MS = 1;

export function afterTurnOptionsWithDefaults(options: AfterTurnOptions = {}): Required<AfterTurnOptions> {
  const o = {
    busy: options.busy ?? (() => false),
    busyDelayMs: options.busyDelayMs ?? DEFAULT_AFTER_TURN_BUSY_DELAY_MS,
  };
  if (!(Number.isFinite(o.busyDelayMs) && o.busyDelayMs >= 0))
    throw new RangeError(`busyDelayMs must be a finite number ≥ 0, got ${o.busyDelayMs}`);
  return o;
}

export interface AfterTurn {
  /** Runs `task` after the current turn (once, however often it is queued before then). */
  run(task: () => void): void;
  /** Runs the queued tasks now (shutdown, tests). */
  flush(): void;
  /** Flushes, then ignores further tasks. */
  close(): void;
}

export function createAfterTurn(onError: (error: unknown) => void, options?: AfterTurnOptions): AfterTurn {
  const { busy, busyDelayMs } = afterTurnOptionsWithDefaults(options);
  let tasks = new Set<() => void>();
  let immediate: NodeJS.Immediate | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const flush = () => {
    if (immediate !== undefined) clearImmediate(immediate);
    if (timer !== undefined) clearTimeout(timer);
    immediate = undefined;
    timer = undefined;
    const batch = tasks;
    tasks = new Set();
    for (const task of batch) {
      try {
        task();
      } catch (error) {
        // One failing task (a metrics bug) must not starve the others, nor escape into the event loop.
        onError(error);
      }
    }
  };

  return {
    run(task) {
      if (closed) return;
      tasks.add(task);
      if (immediate !== undefined) return;
      if (!busy()) {
        // Idle now: no need to wait any longer for a timer set while busy.
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        immediate = setImmediate(flush);
      } else if (timer === undefined) timer = setTimeout(flush, busyDelayMs);
    },
    flush,
    close() {
      flush();
      closed = true;
    },
  };
}
