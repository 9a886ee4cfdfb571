// When the leader publishes `cluster.load`: at the end of a debounce window opened by the first
// change (a throttle, not a trailing debounce — with 128 engines at 100 updates/s a trailing debounce
// would never fire), only if the view really changed, and at least every heartbeat.

export interface PublishLoopOptions {
  readonly debounceMs: number;
  readonly heartbeatMs: number;
  /** Publishes if `force` or the view changed; returns whether it published. */
  readonly publish: (force: boolean, dirtySinceMs: number | undefined) => boolean;
  readonly nowMs: () => number;
}

export interface PublishLoop {
  /** An input changed at `nowMs()`. Cheap: called per received snapshot. */
  markDirty(): void;
  start(): void;
  stop(): void;
}

export function createPublishLoop(options: PublishLoopOptions): PublishLoop {
  let running = false;
  let dirtySinceMs: number | undefined;
  let debounceTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;
  let lastPublishMs = Number.NEGATIVE_INFINITY;

  const fire = (force: boolean): void => {
    debounceTimer = undefined;
    if (!running) return;
    const since = dirtySinceMs;
    dirtySinceMs = undefined;
    if (options.publish(force, since)) lastPublishMs = options.nowMs();
  };

  const scheduleHeartbeat = (): void => {
    heartbeatTimer = setTimeout(() => {
      if (!running) return;
      if (options.nowMs() - lastPublishMs >= options.heartbeatMs - 1) fire(true);
      scheduleHeartbeat();
    }, options.heartbeatMs);
    heartbeatTimer.unref();
  };

  return {
    markDirty() {
      if (dirtySinceMs !== undefined) return;
      dirtySinceMs = options.nowMs();
      if (!running || debounceTimer !== undefined) return;
      debounceTimer = setTimeout(() => fire(false), options.debounceMs);
    },
    start() {
      if (running) return;
      running = true;
      fire(true); // a new leader announces itself at once
      scheduleHeartbeat();
    },
    stop() {
      running = false;
      clearTimeout(debounceTimer);
      clearTimeout(heartbeatTimer);
      debounceTimer = undefined;
      heartbeatTimer = undefined;
    },
  };
}
