// The event loop around the pure L3 decision (`createEngineDecision` in @sluice/core): it keeps one
// waiter per queued request, re-checks the queue on a timer while anything waits, and after every
// event (arrival, first token, finish, cancel, tick) releases queue heads into the engine until the
// decision stops answering `admit`. It also owns the per-request life cycle, so each request ends in
// exactly one terminal outcome however many of completion / error / disconnect / timeout race
// (DESIGN §9: admitted = completed + failed + cancelled).
//
// Shadow: when a candidate policy exists, each arrival is also judged by the candidate's arrival
// checks on the same view (`engineShadowVerdict`), before the enforcing offer changes the queue.
import {
  ADMIT_VERDICT,
  compareShadow,
  type EngineArrival,
  type EngineDecision,
  type EngineRejection,
  type EngineShadowPolicy,
  engineShadowVerdict,
  type PredictionAuditResult,
  type ShadowComparison,
  type ShadowVerdict,
} from "@sluice/core";

export type TerminalOutcome = "completed" | "failed" | "cancelled";
/** Also the ends of requests that never entered the engine. */
export type EndOutcome = TerminalOutcome | "cancelled_queued" | "failed_queued";

/** How the proxy learns what happened to a request it submitted. Exactly one of admit/reject/fail fires. */
export interface Waiter {
  /** The request left the queue: send it to the engine now. */
  admit(): void;
  /** The decision rejected it while it was queued. */
  reject(rejection: EngineRejection): void;
  /** The sidecar cannot serve it (engine down, shutting down). */
  fail(error: Error): void;
}

/** Life-cycle notifications (metrics, decision events); listeners must not throw. */
export interface SchedulerListener {
  /** `probe`: queued by the idle probe although its prediction misses (engine-decision.ts). */
  queued?(id: string, className: string, predictedTtftMs: number, probe: boolean): void;
  admitted?(id: string, className: string, queuedMs: number): void;
  rejected?(id: string, rejection: EngineRejection, whileQueued: boolean): void;
  firstToken?(id: string, className: string, audit: PredictionAuditResult | null): void;
  /** `wasQueued`: it ended before entering the engine (cancelled_queued / failed_queued). */
  ended?(id: string, className: string, outcome: EndOutcome, wasQueued: boolean): void;
  changed?(): void;
  /** An arrival was judged by the shadow candidate too. */
  shadow?(id: string, className: string, comparison: ShadowComparison): void;
}

export interface SidecarSchedulerOptions {
  decision: EngineDecision;
  /** Monotonic ms clock (performance.now in the process, a fake in tests). */
  nowMs: () => number;
  /** Re-check period while requests wait. */
  reevaluateIntervalMs: number;
  /** Latest observed KV usage in [0, 1] (the ITL guard's fact). */
  kvUsage: () => number;
  listener?: SchedulerListener;
  /** The shadow candidate, read once per arrival; undefined (the common case) = no shadow evaluation. */
  shadowPolicy?: () => EngineShadowPolicy | undefined;
  /** The engine's max_num_seqs, for the candidate's in-engine limit when its `maxInflight` is 0. */
  engineMaxNumSeqs?: number;
}

type State = "queued" | "in_engine" | "ended";

interface Tracked {
  state: State;
  className: string;
  queuedAtMs: number;
  waiter: Waiter;
}

export interface SidecarCounts {
  queued: number;
  inEngine: number;
  admitted: number;
  completed: number;
  failed: number;
  cancelled: number;
  rejected: number;
  /** Client went away while queued. */
  cancelledQueued: number;
  /** Failed while queued (engine down, shutting down). */
  failedQueued: number;
}

export interface SidecarScheduler {
  /** Arrival: rejects at once (returned) or queues; `waiter` then hears admit / reject / fail. */
  submit(
    arrival: EngineArrival,
    waiter: Waiter,
  ): { admit: true; predictedTtftMs: number } | { admit: false; rejection: EngineRejection };
  /** First output chunk of an in-engine request, seen at `atMs` (default now). */
  firstToken(id: string, atMs?: number): void;
  /** One output gap of a streaming request (feeds the decode model). */
  decodeGap(gapMs: number): void;
  /** The request finished inside the engine (or failed there). False when it had already ended. */
  finish(id: string, outcome: TerminalOutcome): boolean;
  /** The client went away: drops it from the queue or frees its engine slot. False when already ended. */
  cancel(id: string): boolean;
  /** Fails every queued request (engine down, shutting down); they never hang. */
  failQueued(error: Error): number;
  /**
   * Answers queued requests the decision already removed (a policy switch re-judged them): rejects
   * and fails them, then releases what the new limits allow. Unknown or no longer queued ids are skipped.
   */
  settleQueued(settled: {
    rejected: ReadonlyArray<{ id: string; rejection: EngineRejection }>;
    failed: ReadonlyArray<{ id: string; error: Error }>;
  }): void;
  counts(): SidecarCounts;
  /** Requests queued or in the engine now (cheaper than `counts()`: no allocation). */
  active(): number;
  /** Ms the oldest queued request has waited; 0 when none waits. */
  oldestQueuedMs(): number;
  close(): void;
}

export function createSidecarScheduler(options: SidecarSchedulerOptions): SidecarScheduler {
  const { decision, nowMs, listener = {} } = options;
  const tracked = new Map<string, Tracked>();
  const counts = {
    admitted: 0,
    completed: 0,
    failed: 0,
    cancelled: 0,
    rejected: 0,
    cancelledQueued: 0,
    failedQueued: 0,
  };
  let queued = 0;
  let inEngine = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const notify = <K extends keyof SchedulerListener>(
    k: K,
    ...args: Parameters<NonNullable<SchedulerListener[K]>>
  ) => {
    const fn = listener[k] as ((...a: unknown[]) => void) | undefined;
    fn?.(...args);
  };

  const pump = () => {
    const now = nowMs();
    for (const { id, rejection } of decision.reevaluate(now)) {
      const t = tracked.get(id);
      if (t === undefined || t.state !== "queued") continue;
      t.state = "ended";
      tracked.delete(id);
      queued--;
      counts.rejected++;
      notify("rejected", id, rejection, true);
      t.waiter.reject(rejection);
    }
    for (;;) {
      const release = decision.nextAdmission(now, { kvUsage: options.kvUsage() });
      if (release.kind !== "admit") break;
      const t = tracked.get(release.id);
      if (t === undefined || t.state !== "queued") {
        // Cannot happen while every removal goes through here; free the slot rather than leak it.
        decision.onFinished(release.id);
        continue;
      }
      t.state = "in_engine";
      queued--;
      inEngine++;
      counts.admitted++;
      notify("admitted", release.id, t.className, now - t.queuedAtMs);
      t.waiter.admit();
    }
    notify("changed");
    schedule();
  };

  // The timer runs only while something waits, so an idle sidecar costs nothing.
  const schedule = () => {
    if (closed || queued === 0) {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      return;
    }
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      pump();
    }, options.reevaluateIntervalMs);
  };

  const end = (id: string, t: Tracked, outcome: TerminalOutcome) => {
    t.state = "ended";
    tracked.delete(id);
    counts[outcome]++;
    notify("ended", id, t.className, outcome, false);
  };

  const takeQueued = (id: string): Tracked | undefined => {
    const t = tracked.get(id);
    if (t === undefined || t.state !== "queued") return undefined;
    t.state = "ended";
    tracked.delete(id);
    queued--;
    return t;
  };

  const judgeShadow = (
    policy: EngineShadowPolicy,
    arrival: EngineArrival,
    occupied: number,
    result: ReturnType<EngineDecision["offer"]>,
  ) => {
    const predictedTtftMs = result.admit
      ? result.predictedTtftMs
      : result.rejection.reason === "predicted_ttft"
        ? result.rejection.observed
        : (arrival.upstreamElapsedMs ?? 0) +
          decision.predictTtftMs(arrival.className, arrival.promptTokens, arrival.cachedTokens ?? 0);
    const shadow = engineShadowVerdict(policy, {
      className: arrival.className,
      occupied,
      engineMaxNumSeqs: options.engineMaxNumSeqs ?? decision.snapshot().inEngineLimit,
      predictedTtftMs,
    });
    const enforced: ShadowVerdict = result.admit
      ? ADMIT_VERDICT
      : {
          outcome: "reject",
          reason: result.rejection.reason,
          observed: result.rejection.observed,
          limit: result.rejection.limit,
        };
    notify("shadow", arrival.id, arrival.className, compareShadow(enforced, shadow));
  };

  return {
    submit(arrival, waiter) {
      const shadowPolicy = options.shadowPolicy?.();
      let occupied = 0;
      if (shadowPolicy !== undefined) {
        const s = decision.snapshot();
        occupied = s.inEngine + s.queued;
      }
      const result = decision.offer(arrival, nowMs());
      if (shadowPolicy !== undefined) judgeShadow(shadowPolicy, arrival, occupied, result);
      if (!result.admit) {
        counts.rejected++;
        notify("rejected", arrival.id, result.rejection, false);
        return result;
      }
      tracked.set(arrival.id, { state: "queued", className: arrival.className, queuedAtMs: nowMs(), waiter });
      queued++;
      notify("queued", arrival.id, arrival.className, result.predictedTtftMs, result.probe === true);
      // Admission happens synchronously inside pump when a slot is free: the caller's waiter fires
      // before submit returns, which the proxy is written for.
      pump();
      return result;
    },
    firstToken(id, atMs) {
      const t = tracked.get(id);
      if (t === undefined || t.state !== "in_engine") return;
      const audit = decision.onFirstToken(id, atMs ?? nowMs());
      notify("firstToken", id, t.className, audit);
      pump();
    },
    decodeGap(gapMs) {
      decision.models.observeDecode({ gapMs, batchSize: Math.max(1, inEngine), kvUsage: options.kvUsage() });
    },
    finish(id, outcome) {
      const t = tracked.get(id);
      if (t === undefined || t.state !== "in_engine") return false;
      decision.onFinished(id);
      inEngine--;
      end(id, t, outcome);
      pump();
      return true;
    },
    cancel(id) {
      const t = tracked.get(id);
      if (t === undefined) return false;
      decision.cancel(id);
      if (t.state === "queued") {
        queued--;
        t.state = "ended";
        tracked.delete(id);
        counts.cancelledQueued++;
        notify("ended", id, t.className, "cancelled_queued", true);
      } else {
        inEngine--;
        end(id, t, "cancelled");
      }
      pump();
      return true;
    },
    failQueued(error) {
      const victims = [...tracked].filter(([, t]) => t.state === "queued");
      for (const [id, t] of victims) {
        decision.cancel(id);
        t.state = "ended";
        tracked.delete(id);
        queued--;
        counts.failedQueued++;
        notify("ended", id, t.className, "failed_queued", true);
        t.waiter.fail(error);
      }
      if (victims.length > 0) pump();
      return victims.length;
    },
    settleQueued(settled) {
      for (const { id, rejection } of settled.rejected) {
        const t = takeQueued(id);
        if (t === undefined) continue;
        counts.rejected++;
        notify("rejected", id, rejection, true);
        t.waiter.reject(rejection);
      }
      for (const { id, error } of settled.failed) {
        const t = takeQueued(id);
        if (t === undefined) continue;
        counts.failedQueued++;
        notify("ended", id, t.className, "failed_queued", true);
        t.waiter.fail(error);
      }
      pump();
    },
    counts: () => ({ queued, inEngine, ...counts }),
    active: () => queued + inEngine,
    oldestQueuedMs() {
      // Map order is arrival order, so the first queued entry is the oldest.
      for (const t of tracked.values()) if (t.state === "queued") return Math.max(0, nowMs() - t.queuedAtMs);
      return 0;
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
