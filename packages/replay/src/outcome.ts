// What one replayed request came to, as the client saw it. Times are wall ms on the replay's clock.

export interface CompletedOutcome {
  kind: "completed";
  firstTokenAtMs: number;
  lastTokenAtMs: number;
  /** Output tokens: the usage chunk's `completion_tokens`, else the token chunks counted. */
  outputTokens: number;
  /** Prompt tokens the server counted (usage), NaN when it sent no usage. */
  promptTokens: number;
  /** `usage.prompt_tokens_details.cached_tokens` when the server reports it, else NaN. */
  cachedTokens: number;
}

/** Admission control said no: 429/503/529. `level`/`reason` from the `sluice` body when there is one. */
export interface RejectedOutcome {
  kind: "rejected";
  status: number;
  /** Sim level names (`L1`, `L2`, `L3`), or `upstream` when the body is not Sluice's. */
  level: string;
  reason: string;
  /** `retry-after-ms`, else `Retry-After` seconds × 1000, else the body's `retry_after_ms`; NaN when none. */
  retryAfterMs: number;
}

/** The server answered with any other error status (e.g. 400 context_length_exceeded). */
export interface RefusedOutcome {
  kind: "refused";
  status: number;
  code: string;
}

/** No complete answer: connection error, timeout, stream cut before `[DONE]`, unparseable stream. */
export interface FailedOutcome {
  kind: "failed";
  reason: "connection" | "timeout" | "truncated" | "protocol";
  message: string;
}

export type RequestOutcome = CompletedOutcome | RejectedOutcome | RefusedOutcome | FailedOutcome;

/** The sluice body's `level` → the simulator's level names, so `rejected_by` keys compare across the two. */
export function simLevelOf(level: unknown): string {
  switch (level) {
    case "ingress":
    case "L1":
      return "L1";
    case "router":
    case "L2":
      return "L2";
    // The engine-scheduler sidecar (L3) reports itself as `engine`.
    case "engine":
    case "engine_scheduler":
    case "engine-scheduler":
    case "L3":
      return "L3";
    default:
      return typeof level === "string" && level !== "" ? level : "upstream";
  }
}
