// Publishes this instance's exact in-flight counts on `….ingress.state` (binary `IngressState`, seq +1
// per snapshot, with the seqs it has received from each peer) on change — debounced, so a burst of
// admissions costs one message — and on a heartbeat, and feeds peers' snapshots into the model views
// (DESIGN §4).

import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { IngressStateSchema } from "@sluice/proto";
import type { NatsConnection, Subscription } from "nats";
import type { ModelSync } from "./model-sync.js";

export interface StateSyncOptions {
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
  /** Subscribes on a (new) connection and publishes at once. */
  attach(nc: NatsConnection): void;
  close(): void;
}

export function createStateSync(options: StateSyncOptions): StateSync {
  let nc: NatsConnection | undefined;
  let subscription: Subscription | undefined;
  let pending: NodeJS.Timeout | undefined;
  let lastSentMs = Number.NEGATIVE_INFINITY;
  let closed = false;

  const publish = () => {
    pending = undefined;
    if (closed || !nc || nc.isClosed()) return;
    const now = options.nowMs();
    const state = options.sync.snapshot(now, options.heartbeatMs);
    lastSentMs = now;
    try {
      nc.publish(options.subject, toBinary(IngressStateSchema, state));
    } catch {
      // Closed or draining connection: the next heartbeat on a live connection carries the state.
    }
  };

  const heartbeat = setInterval(() => {
    if (options.nowMs() - lastSentMs >= options.heartbeatMs / 2) publish();
  }, options.heartbeatMs);
  heartbeat.unref();

  const receive = async (sub: Subscription) => {
    for await (const message of sub) {
      try {
        const state = fromBinary(IngressStateSchema, message.data);
        // Answer a peer's changed load soon: our snapshot acknowledges it and retires its mirror.
        if (options.sync.receive(state, options.nowMs()).changed) markChanged();
      } catch (error) {
        options.onDropped(error);
      }
    }
  };

  function markChanged(): void {
    if (pending !== undefined || closed) return;
    const wait = Math.max(0, options.debounceMs - (options.nowMs() - lastSentMs));
    pending = setTimeout(publish, wait);
  }

  return {
    markChanged,
    attach(connection) {
      nc = connection;
      subscription?.unsubscribe();
      subscription = connection.subscribe(options.subject);
      void receive(subscription);
      publish();
    },
    close() {
      closed = true;
      clearInterval(heartbeat);
      if (pending !== undefined) clearTimeout(pending);
      subscription?.unsubscribe();
    },
  };
}
