// What `sluice status` shows, as plain data (printed as tables or, with --json, as JSON).

export interface InstanceInfo {
  readonly role: string;
  readonly id: string;
  readonly addresses: Readonly<Record<string, string>>;
  readonly version: string;
  readonly startedAt: string;
}

export interface ObservedInfo {
  readonly waiting: number;
  readonly running: number;
  readonly kvUsedBlocks: number;
  readonly pendingPrefillTokens: number;
  readonly prefillTokensPerS: number;
  /** Time since this command received the snapshot. */
  readonly ageMs: number;
}

export interface EngineInfo {
  readonly workerId: string;
  readonly model: string;
  readonly schedulerUrl: string;
  readonly blockSize: number;
  readonly kvTotalBlocks: number;
  readonly maxNumSeqs: number;
  /** Latest `engine.{worker}.load` seen while sampling; undefined if none arrived. */
  readonly observed: ObservedInfo | undefined;
}

export interface HeadroomInfo {
  readonly requestClass: string;
  readonly inflightRequests: number;
  readonly kvBlocks: number;
  readonly predictedTtftMs: number;
}

export interface ModelInfo {
  readonly model: string;
  readonly liveEngines: number;
  readonly capacityKvBlocks: number;
  readonly capacitySeqs: number;
  readonly observedKvUsedBlocks: number;
  readonly observedRunning: number;
  readonly observedWaiting: number;
  readonly observedPendingPrefillTokens: number;
  /** Ingresses' in-flight sums and routers' pending prefill; undefined when none is known. */
  readonly predicted:
    | { readonly requests: number; readonly kvBlocks: number; readonly pendingPrefillTokens: number }
    | undefined;
  readonly headroom: readonly HeadroomInfo[];
  readonly freshnessMs: number;
}

export interface ClusterInfo {
  /** `aggregator`: from `cluster.load`; `local`: computed here from registrations and engine load. */
  readonly source: "aggregator" | "local";
  readonly leaderId: string | undefined;
  readonly models: readonly ModelInfo[];
}

export interface RejectionCount {
  readonly level: string;
  readonly reason: string;
  readonly count: number;
}

export interface RecentRejections {
  readonly windowMs: number;
  /** Undefined when history is available; else why not (no stream, no JetStream). */
  readonly unavailable: string | undefined;
  readonly counts: readonly RejectionCount[];
}

export interface PredictionErrorInfo {
  readonly instanceId: string;
  /** Mean |predicted − measured| / measured TTFT over the instance's lifetime. */
  readonly meanRelativeError: number;
  readonly samples: number;
}

export interface StatusReport {
  readonly takenAt: string;
  readonly namespace: string;
  readonly instances: readonly InstanceInfo[];
  readonly engines: readonly EngineInfo[];
  readonly cluster: ClusterInfo;
  readonly recentRejections: RecentRejections;
  readonly predictionError: readonly PredictionErrorInfo[];
}
