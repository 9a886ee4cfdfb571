// The admission-policy interface the simulator drives. Later levels (L1 ingress, L2 router, L3
// engine-scheduler decisions from packages/core) plug in behind it: a policy sees the request and what
// the admitting component can know at that moment (exact local in-flight counts, STALE engine load), and
// answers admit or reject-with-reason. Callbacks tell it about first tokens and completions at the
// virtual time they reach the ingress.

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

export interface AdmissionPolicy {
  readonly name: string;
  admit(request: PolicyRequest, view: ClusterView, nowMs: number): AdmissionDecision;
  onFirstToken?(request: PolicyRequest, nowMs: number): void;
  onComplete?(request: PolicyRequest, facts: CompletionFacts, nowMs: number): void;
}

/** Builds a fresh (stateful) policy for one simulation run. */
export type PolicyFactory = () => AdmissionPolicy;

const ADMIT: AdmissionDecision = Object.freeze({ admit: true });

/** No admission control: the baseline every policy is compared with. */
export function noAdmissionPolicy(): AdmissionPolicy {
  return { name: "none", admit: () => ADMIT };
}
