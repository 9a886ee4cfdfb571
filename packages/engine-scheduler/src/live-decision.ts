// The L3 decision with live policies. The core decision (`createEngineDecision`) fixes its classes and
// limits when it is built, so a new policy builds a new one — a generation — and this wrapper moves
// the state over without losing a request:
//   • queued requests are re-offered to the new generation in its leaving order (class priority, then
//     TTFT deadline) with their TTFT clock kept: the time they already waited counts as upstream time,
//     so their deadline does not move. The new limits apply to them at once: one the new policy would
//     not queue (its class share of the queue is now full, or its predicted TTFT misses the new
//     objective) is returned as a rejection for the shell to answer. Their `max_queue_ms` clock
//     restarts (the core takes no queue-entry time), the one leniency of a switch.
//   • requests inside the engine stay with the generation that admitted them until they end, and count
//     against the new in-engine limit and class capacities: no release happens while old + new
//     in-engine requests fill it, and an arrival finding its class capacity full is `queue_full`.
//     (The new generation's own TTFT predictions do not see the old in-engine requests' pending prefill
//     until they end — a short, bounded optimism after a switch.)
//   • the learned prefill and decode-step estimates seed the new generation, so a switch does not throw
//     away what was measured (the regression windows restart from those seeds).
//
// LOCAL ADAPTER: a `reconfigure(options)` on the core EngineDecision would keep one queue and the full
// model windows; this wrapper exists because packages/core/src/engine-scheduler is not ours to change.
import {
  createEngineDecision,
  type EngineArrival,
  type EngineDecision,
  type EngineDecisionOptions,
  type EngineDecisionSnapshot,
  type EngineRejection,
  InvalidSchedulerInputError,
  type OnlineModelOptions,
} from "@sluice/core";

export interface LiveEngineDecision extends EngineDecision {
  /**
   * Builds the next generation from `options` and moves the queue to it. Returns the queued requests
   * the new options reject and, should a re-offer throw, those that failed (both removed from the
   * queue; the shell answers them). Throws `EngineSchedulerConfigError` for invalid options, and then
   * nothing changed.
   * @param fallbackClass judges queued requests whose class the new options no longer have.
   */
  reconfigure(options: EngineDecisionOptions, nowMs: number, fallbackClass: string): Reconfigured;
  /** 0 for the first decision, +1 per reconfigure. */
  readonly generation: number;
}

export interface Reconfigured {
  readonly rejected: Array<{ id: string; rejection: EngineRejection }>;
  readonly failed: Array<{ id: string; error: Error }>;
}

interface QueuedArrival {
  arrival: EngineArrival;
  offeredAtMs: number;
}

/** Seeds of a new generation's online models: what the old one learned, where it learned anything. */
function learnedSeeds(decision: EngineDecision): Partial<OnlineModelOptions> {
  const e = decision.models.estimates();
  return {
    ...(e.prefillSamples > 0 && e.prefillTokensPerS > 0 && Number.isFinite(e.prefillTokensPerS)
      ? { prefillSeedFixedMs: Math.max(0, e.prefillFixedMs), prefillSeedTokensPerS: e.prefillTokensPerS }
      : {}),
    ...(e.decodeSamples > 0 && e.decodeStepMsAtBatch1 > 0
      ? { decodeSeedBaseMs: e.decodeStepMsAtBatch1 }
      : {}),
  };
}

export function createLiveEngineDecision(options: Partial<EngineDecisionOptions>): LiveEngineDecision {
  let current = createEngineDecision(options);
  let generation = 0;
  /** Queued in `current`, with what is needed to re-offer them. */
  const queued = new Map<string, QueuedArrival>();
  /** In the engine, admitted by `current`. */
  const inEngine = new Set<string>();
  /** In the engine, admitted by an older generation (which still tracks them). */
  const legacy = new Map<string, EngineDecision>();

  const ownerOf = (id: string): EngineDecision => legacy.get(id) ?? current;

  /**
   * The core's `queue_full` check with the old generations' in-engine requests counted (the current
   * generation does not know them); undefined when they are not the reason to refuse.
   */
  const fullWithLegacy = (req: EngineArrival): EngineRejection | undefined => {
    if (legacy.size === 0) return undefined;
    const o = current.options;
    const c = o.classes.find((k) => k.name === req.className);
    if (c === undefined) return undefined; // the core's offer reports the unknown class
    const s = current.snapshot();
    const occupied = s.inEngine + s.queued + legacy.size;
    const capacity = s.inEngineLimit + Math.floor(c.limitShare * o.engine.maxQueue);
    if (occupied < capacity) return undefined;
    // Drain estimate: the wait a request of this class would predict now, within the policy's bounds.
    const waitMs = current.predictTtftMs(c.name, req.promptTokens, req.cachedTokens ?? 0);
    return {
      level: "engine",
      reason: "queue_full",
      class: c.name,
      observed: occupied,
      limit: capacity,
      retryAfterMs: Math.ceil(Math.min(o.retryAfterMaxMs, Math.max(o.retryAfterMinMs, waitMs))),
    };
  };
  const offerToCurrent = (req: EngineArrival, nowMs: number): ReturnType<EngineDecision["offer"]> => {
    const full = fullWithLegacy(req);
    if (full !== undefined) return { admit: false, rejection: full };
    const result = current.offer(req, nowMs);
    if (result.admit) queued.set(req.id, { arrival: req, offeredAtMs: nowMs });
    return result;
  };
  const endLegacy = (id: string): EngineDecision | undefined => {
    const owner = legacy.get(id);
    if (owner !== undefined) legacy.delete(id);
    return owner;
  };

  const live: LiveEngineDecision = {
    get options() {
      return current.options;
    },
    get models() {
      return current.models;
    },
    get audit() {
      return current.audit;
    },
    get generation() {
      return generation;
    },

    offer: offerToCurrent,

    reevaluate(nowMs) {
      const out = current.reevaluate(nowMs);
      for (const r of out) queued.delete(r.id);
      return out;
    },

    nextAdmission(nowMs, facts) {
      if (legacy.size > 0) {
        const s = current.snapshot();
        if (s.inEngine + legacy.size >= s.inEngineLimit) return { kind: "idle" };
      }
      const release = current.nextAdmission(nowMs, facts);
      if (release.kind === "admit") {
        queued.delete(release.id);
        inEngine.add(release.id);
      }
      return release;
    },

    onFirstToken: (id, nowMs) => ownerOf(id).onFirstToken(id, nowMs),

    onFinished(id) {
      const owner = endLegacy(id);
      if (owner !== undefined) return owner.onFinished(id);
      inEngine.delete(id);
      return current.onFinished(id);
    },

    cancel(id) {
      const owner = endLegacy(id);
      if (owner !== undefined) return owner.cancel(id);
      queued.delete(id);
      inEngine.delete(id);
      return current.cancel(id);
    },

    predictTtftMs: (className, promptTokens, cachedTokens) =>
      current.predictTtftMs(className, promptTokens, cachedTokens),

    snapshot(): EngineDecisionSnapshot {
      const s = current.snapshot();
      if (legacy.size === 0) return s;
      let pendingPrefillTokens = s.pendingPrefillTokens;
      for (const old of new Set(legacy.values())) pendingPrefillTokens += old.snapshot().pendingPrefillTokens;
      return { ...s, inEngine: s.inEngine + legacy.size, pendingPrefillTokens };
    },

    reconfigure(nextOptions, nowMs, fallbackClass) {
      const next = createEngineDecision({
        ...nextOptions,
        models: { ...nextOptions.models, ...learnedSeeds(current) },
      });
      const classes = new Map(next.options.classes.map((c) => [c.name, c]));
      const fallback = classes.get(fallbackClass) ?? next.options.classes[0]!;
      const classOf = (name: string) => classes.get(name) ?? fallback;
      const deadlineOf = (q: QueuedArrival) =>
        q.offeredAtMs - (q.arrival.upstreamElapsedMs ?? 0) + classOf(q.arrival.className).ttftObjectiveMs;
      const moving = [...queued.values()].sort(
        (a, b) =>
          classOf(b.arrival.className).priority - classOf(a.arrival.className).priority ||
          deadlineOf(a) - deadlineOf(b) ||
          a.offeredAtMs - b.offeredAtMs,
      );

      const previous = current;
      for (const id of inEngine) legacy.set(id, previous);
      inEngine.clear();
      queued.clear();
      current = next;
      generation++;

      const out: Reconfigured = { rejected: [], failed: [] };
      for (const q of moving) {
        previous.cancel(q.arrival.id);
        const arrival: EngineArrival = {
          ...q.arrival,
          className: classOf(q.arrival.className).name,
          // The TTFT clock keeps running: time already queued is time spent before this offer.
          upstreamElapsedMs: (q.arrival.upstreamElapsedMs ?? 0) + Math.max(0, nowMs - q.offeredAtMs),
        };
        let result: ReturnType<EngineDecision["offer"]>;
        try {
          result = offerToCurrent(arrival, nowMs);
        } catch (error) {
          // Its fields passed the first offer, so this is not the client's fault: it fails (503), and
          // the switch goes on for the others.
          out.failed.push({
            id: arrival.id,
            error: new InvalidSchedulerInputError(`re-queueing ${arrival.id} under the new policy failed`, {
              cause: error,
            }),
          });
          continue;
        }
        if (!result.admit) out.rejected.push({ id: arrival.id, rejection: result.rejection });
      }
      return out;
    },
  };
  return live;
}
