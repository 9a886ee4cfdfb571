// Work that must happen soon but not on the request path: refreshing the learned-model gauges, the
// load snapshot check and publishing decision events. Tasks queued during one event-loop turn run
// together right after it (setImmediate), so the proxy's socket writes for that turn go first, and
// everything the tasks publish on NATS leaves in one write (nats.js flushes once per macrotask).
// A task queued twice in a turn runs once.

export interface AfterTurn {
  /** Runs `task` after the current turn (once, however often it is queued before then). */
  run(task: () => void): void;
  /** Runs the queued tasks now (shutdown, tests). */
  flush(): void;
  /** Flushes, then ignores further tasks. */
  close(): void;
}

export function createAfterTurn(onError: (error: unknown) => void): AfterTurn {
  let tasks = new Set<() => void>();
  let scheduled: NodeJS.Immediate | undefined;
  let closed = false;

  const flush = () => {
    if (scheduled !== undefined) clearImmediate(scheduled);
    scheduled = undefined;
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
      if (scheduled === undefined) scheduled = setImmediate(flush);
    },
    flush,
    close() {
      flush();
      closed = true;
    },
  };
}
