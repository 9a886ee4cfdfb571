import type { EtcdSession } from "./etcd.js";
import { type PrefixWatch, type WatchEntry, watchPrefix } from "./etcd-watch.js";

// Leader election on the session's own lease (etcd's concurrency recipe: candidates are keys
// under `{prefix}/elections/{name}/`, the lowest create revision leads). etcd3's `Election` is
// not used: it grants a second lease per campaign (two leases to keep alive, and leadership
// outliving a lost session lease) and has no signal for losing leadership once elected.

export type LeadershipLossReason = "resigned" | "lease-lost" | "key-deleted";

export interface Leadership {
  /** The candidate key that holds the leadership. */
  readonly key: string;
  readonly isLeader: boolean;
  /** Called once when leadership ends; immediately (next microtask) if it already has. */
  onLost(listener: (reason: LeadershipLossReason) => void): () => void;
  /** Gives up leadership (deletes the key so the next candidate takes over at once). */
  resign(): Promise<void>;
}

export interface CampaignOptions {
  /** Abort to stop campaigning; the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** The current leader's value, or undefined when nobody leads. */
export async function currentLeader(session: EtcdSession, name: string): Promise<string | undefined> {
  const res = await session.client
    .getAll()
    .prefix(`${session.keys.election(name)}/`)
    .sort("Create", "Ascend")
    .limit(1)
    .exec();
  return res.kvs[0]?.value.toString("utf8");
}

/** Campaigns for `name` and resolves once this process leads. */
export async function campaign(
  session: EtcdSession,
  name: string,
  value: string,
  options: CampaignOptions = {},
): Promise<Leadership> {
  const prefix = `${session.keys.election(name)}/`;
  const { client } = session;
  let myKey = "";
  let myCreateRevision = 0;
  let elected = false;
  let lost: LeadershipLossReason | undefined;
  const lostListeners = new Set<(reason: LeadershipLossReason) => void>();
  let watch: PrefixWatch | undefined;
  let resolveElected: (() => void) | undefined;
  let rejectElected: ((err: unknown) => void) | undefined;

  const enter = async (): Promise<void> => {
    const res = await session.withLease((leaseId) => {
      myKey = `${prefix}${BigInt(leaseId).toString(16)}`;
      return client
        .if(myKey, "Create", "==", 0)
        .then(client.put(myKey).value(value).lease(leaseId))
        .else(client.get(myKey))
        .commit();
    });
    myCreateRevision = res.succeeded
      ? Number(res.header.revision)
      : Number(res.responses[0]?.response_range.kvs[0]?.create_revision ?? res.header.revision);
  };

  const endLeadership = (reason: LeadershipLossReason): void => {
    if (lost !== undefined) return;
    lost = reason;
    unsubscribeSession();
    void watch?.close();
    for (const listener of lostListeners) {
      try {
        listener(reason);
      } catch {
        // A listener's failure must not keep the others from hearing about the loss.
      }
    }
    lostListeners.clear();
  };

  const evaluate = (entries: ReadonlyMap<string, WatchEntry>): void => {
    if (lost !== undefined) return;
    const mine = entries.get(myKey);
    if (mine === undefined || mine.createRevision !== myCreateRevision) {
      if (elected) endLeadership("key-deleted");
      else reenter();
      return;
    }
    let lowest = mine.createRevision;
    for (const entry of entries.values()) lowest = Math.min(lowest, entry.createRevision);
    if (!elected && lowest === mine.createRevision) {
      elected = true;
      resolveElected?.();
    }
  };

  let reentering = false;
  const reenter = (): void => {
    // Our key vanished before we were elected (lease replaced): queue again at the back.
    if (reentering) return;
    reentering = true;
    enter()
      .then(() => {
        reentering = false;
        if (watch !== undefined) evaluate(watch.entries());
      })
      .catch((err: unknown) => rejectElected?.(err));
  };

  const unsubscribeSession = session.onEvent((event) => {
    if (event.type !== "lease-lost") return;
    // Partitioned from etcd: someone else may lead already, so stop acting as leader now.
    if (elected) endLeadership("lease-lost");
    else reenter();
  });

  const electedPromise = new Promise<void>((resolve, reject) => {
    resolveElected = resolve;
    rejectElected = reject;
  });

  const onAbort = (): void => rejectElected?.(options.signal?.reason);
  try {
    options.signal?.throwIfAborted();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    await enter();
    const w: PrefixWatch = await watchPrefix(client, prefix, {
      onSnapshot: () => undefined,
      onPut: () => evaluate(w.entries()),
      onDelete: () => evaluate(w.entries()),
    });
    watch = w;
    evaluate(w.entries());
    await electedPromise;
  } catch (err) {
    endLeadership("resigned");
    await client
      .delete()
      .key(myKey)
      .exec()
      .catch(() => undefined);
    throw err;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }

  return {
    get key() {
      return myKey;
    },
    get isLeader() {
      return elected && lost === undefined;
    },
    onLost: (listener) => {
      if (lost !== undefined) {
        const reason = lost;
        queueMicrotask(() => listener(reason));
        return () => undefined;
      }
      lostListeners.add(listener);
      return () => lostListeners.delete(listener);
    },
    resign: async () => {
      if (lost !== undefined) return;
      endLeadership("resigned");
      // Only delete our own incarnation of the key, never a successor's.
      await client.if(myKey, "Create", "==", myCreateRevision).then(client.delete().key(myKey)).commit();
    },
  };
}
