// The admission-policy interface the simulator drives. Later levels (L1 ingress, L2 router, L3
// engine-scheduler decisions from packages/core) plug in behind it: a policy sees the request and what
// the admitting component can know at that moment (exact local in-flight counts, STALE engine load), and
// answers admit or reject-with-reason. Callbacks tell it about first tokens and completions at the
// virtual time they reach the ingress.

import type { BlockHash, EngineLoadSnapshot, KvEvent } from "@sluice/core";
import type { RequestClass } from "./classes.js";

/** Which level rejected: the DESIGN §1 levels, plus `engine` for the engine model refusing a request. */
export type RejectionLevel = "L1" | "L2" | "L3" | "engine";

export type AdmissionDecision =
  | { admit: true }
  | {
      admit: false;
      level: RejectionLevel;
      /** Stable reason code (`static_inflight_limit`), used as a report key. */
      reason: string;
      /** When the client should retry, from predicted drain — never a constant. */
      retryAfterMs: number;
    };

/** What a policy knows about one engine: the last load snapshot to arrive, corrected by routing. */
export interface EngineView {
  readonly index: number;
  /** In-flight requests the router believes the engine has: last snapshot + routed since it was taken. */
  readonly believedInFlight: number;
  /** KV usage (active blocks / total) from the last snapshot, in [0, 1]. */
  readonly observedKvUsage: number;
  /** Pending prefill tokens from the last snapshot. */
  readonly observedPendingPrefillTokens: number;
  /** Virtual time the last snapshot was taken at the engine; -Infinity before the first arrives. */
  readonly observedAtMs: number;
}

export interface ClusterView {
  /** Admitted requests not yet completed, exact (the ingress's own accounting). */
  readonly inFlight: number;
  readonly inFlightByClass: Readonly<Record<RequestClass, number>>;
  readonly engines: readonly EngineView[];
}

export interface PolicyRequest {
  readonly index: number;
  readonly requestClass: RequestClass;
  readonly promptTokens: number;
  readonly outputTokens: number;
  readonly arrivalMs: number;
}

export interface CompletionFacts {
  ttftMs: number;
  /** Mean inter-token latency; 0 for single-token outputs. */
  meanItlMs: number;
  /** Both class objectives met. */
  metObjectives: boolean;
}

/** One engine's load snapshot as it reaches the policy/router, `loadDelayMs` after it was taken. */
export interface EngineObservation {
  load: EngineLoadSnapshot;
  /** When the engine took the snapshot (virtual ms). */
  takenAtMs: number;
  /** Prefill throughput the engine's side measured (what `engine.{worker}.load` carries); 0 = unknown. */
  prefillTokensPerS: number;
}

/** What the L2 router answered for one request. */
export type SimRouteOutcome =
  | { kind: "routed"; engine: number; cachedTokens: number }
  | { kind: "held" }
  | { kind: "rejected"; reason: string; retryAfterMs: number };

export interface SimRouteDrain {
  routed: { request: number; engine: number; cachedTokens: number }[];
  rejected: { request: number; reason: string; retryAfterMs: number }[];
}

/**
 * A router that replaces the simulator's least-loaded choice (L2). The simulator feeds it KV events and
 * load snapshots after the propagation delay, calls `drain` whenever capacity may have freed and at
 * `nextExpiryMs`, and tells it when a request's first token arrives and when the request leaves.
 */
export interface SimRouter {
  /** Whether the engines must collect KV events for it (prefix index). */
  readonly wantsKvEvents: boolean;
  route(request: PolicyRequest, blockHashes: readonly BlockHash[], nowMs: number): SimRouteOutcome;
  drain(nowMs: number): SimRouteDrain;
  heldCount(): number;
  nextExpiryMs(): number | undefined;
  onKvEvents(engine: number, events: readonly KvEvent[], nowMs: number): void;
  onObservation(engine: number, observation: EngineObservation, nowMs: number): void;
  onFirstToken(request: number, nowMs: number): void;
  /** The request left (completed, or rejected after routing): free its predicted load. */
  onRelease(request: number, nowMs: number): void;
  /**
   * Prompt tokens of `request` each engine holds in its prefix cache, as the router's index believes
   * (engines absent = 0). Read-only: no routing, no accounting. Used to place a force-admitted request.
   */
  cachedTokensByEngine?(
    request: PolicyRequest,
    blockHashes: readonly BlockHash[],
  ): ReadonlyMap<number, number>;
}

export type SimGateOffer = { admit: true } | { admit: false; reason: string; retryAfterMs: number };

export interface SimGatePump {
  /** Requests to put into the engine model now, in order. */
  admit: number[];
  reject: { request: number; reason: string; retryAfterMs: number }[];
}

/** The L3 engine-scheduler in front of one engine: its own queue, only admitted requests enter the model. */
export interface SimEngineGate {
  /** While requests are queued, `pump` is called at least this often (the sidecar's re-evaluation timer). */
  readonly reevaluateIntervalMs: number;
  offer(request: PolicyRequest, cachedTokens: number, nowMs: number): SimGateOffer;
  /** Re-evaluates the queue and releases what may enter the engine; `kvUsage` is the engine's, exact. */
  pump(nowMs: number, kvUsage: number): SimGatePump;
  queued(): number;
  onFirstToken(request: number, nowMs: number): void;
  onFinished(request: number): void;
  /** One engine step's output-token gap, for the online decode model. */
  observeDecode(gapMs: number, batchSize: number, kvUsage: number): void;
  /** The gate's measured prefill throughput (0 until measured): published with the engine's load. */
  prefillTokensPerS(): number;
}

export interface AdmissionPolicy {
  readonly name: string;
  admit(request: PolicyRequest, view: ClusterView, nowMs: number): AdmissionDecision;
  onFirstToken?(request: PolicyRequest, nowMs: number): void;
  onComplete?(request: PolicyRequest, facts: CompletionFacts, nowMs: number): void;
  /** Exactly once for every admitted request when it leaves: completed, or rejected by a later level. */
  onRelease?(request: PolicyRequest, nowMs: number): void;
  /** An engine's load snapshot reached the ingress side (after the propagation delay). */
  onObservation?(engine: number, observation: EngineObservation, nowMs: number): void;
  /** L2: routing, holding and rejection after admission; absent = least-loaded routing. */
  readonly router?: SimRouter;
  /** L3: builds the engine-scheduler of engine `index`; absent = requests go straight into the model. */
  createEngineGate?(index: number): SimEngineGate;
}

/** What a policy needs to know about the simulated cluster to configure itself. */
export interface PolicyContext {
  engineCount: number;
  numGpuBlocks: number;
  blockSize: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
}

/** Builds a fresh (stateful) policy for one simulation run. */
export type PolicyFactory = (context: PolicyContext) => AdmissionPolicy;

const ADMIT: AdmissionDecision = Object.freeze({ admit: true });

/** No admission control: the baseline every policy is compared with. */
export function noAdmissionPolicy(): AdmissionPolicy {
  return { name: "none", admit: () => ADMIT };
}
