// Publishes this instance's exact in-flight counts on `….ingress.state` (binary `IngressState`, seq +1
// per snapshot, with the seqs it has received from each peer) on change — debounced, so a burst of
// admissions costs one message — and on a heartbeat, and feeds peers' snapshots into the model views
// (DESIGN §4).

import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { IngressStateSchema } from "@sluice/proto";
import type { ModelSync } from "./model-sync.js";

/** The part of the runtime's `NatsClient` used here: publishes drop while NATS is down. */
export interface StateBus {
  publish(subject: string, data: Uint8Array): boolean;
  /** Survives reconnects (and subscribes at the first connect); returns the unsubscribe function. */
  subscribe(subject: string, onMessage: (msg: { readonly data: Uint8Array }) => void): () => void;
}

export interface StateSyncOptions {
  bus: StateBus;
  subject: string;
  sync: ModelSync;
  /** Minimum gap between change-driven snapshots. */
  debounceMs: number;
  heartbeatMs: number;
  nowMs(): number;
  /** A malformed message was dropped. */
  onDropped(error: unknown): void;
}

export interface StateSync {
  /** Marks the state changed; a snapshot follows within the debounce. */
  markChanged(): void;
  /** NATS is (back) up: publishes at once, so peers see this instance without waiting a heartbeat. */
  connected(): void;
  close(): void;
}

export function createStateSync(options: StateSyncOptions): StateSync {
  let pending: NodeJS.Timeout | undefined;
  let lastSentMs = Number.NEGATIVE_INFINITY;
  let closed = false;

  const publish = () => {
    pending = undefined;
    if (closed) return;
    const now = options.nowMs();
    const state = options.sync.snapshot(now, options.heartbeatMs);
    lastSentMs = now;
    try {
      // Dropped (and counted by the client) while NATS is down: the next heartbeat carries the state.
      options.bus.publish(options.subject, toBinary(IngressStateSchema, state));
    } catch {
      // Closed or draining connection: same as a drop.
    }
  };

  const heartbeat = setInterval(() => {
    if (options.nowMs() - lastSentMs >= options.heartbeatMs / 2) publish();
  }, options.heartbeatMs);
  heartbeat.unref();

  const unsubscribe = options.bus.subscribe(options.subject, (message) => {
    try {
      const state = fromBinary(IngressStateSchema, message.data);
      // Answer a peer's changed load soon: our snapshot acknowledges it and retires its mirror.
      if (options.sync.receive(state, options.nowMs()).changed) markChanged();
    } catch (error) {
      options.onDropped(error);
    }
  });

  function markChanged(): void {
    if (pending !== undefined || closed) return;
    const wait = Math.max(0, options.debounceMs - (options.nowMs() - lastSentMs));
    pending = setTimeout(publish, wait);
  }

  return {
    markChanged,
    connected() {
      publish();
    },
    close() {
      closed = true;
      clearInterval(heartbeat);
      if (pending !== undefined) clearTimeout(pending);
      unsubscribe();
    },
  };
}
