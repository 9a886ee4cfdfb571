// Engine choice behind one interface: the router's `Route` RPC when a router is registered
// (`router-selector.ts`), else — and as its fallback — the live engine of the model with the fewest
// requests this ingress has in flight on it. The proxy only sees `EngineSelector`.

import type { EngineDirectory, EngineEntry } from "./engine-registry.js";
import { enginesOf } from "./engine-registry.js";

export interface EngineLease {
  readonly engine: EngineEntry;
  /** Extra request headers for the engine (e.g. the router's cached-token count). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The engine's first response bytes arrived (prefill done); idempotent. */
  firstToken?(): void;
  /** Returns the engine's slot; idempotent. */
  done(): void;
}

/** The prompt as the router tokenizes it: token ids as given, or the (templated) text. */
export type RoutePrompt = { tokenIds: number[] } | { text: string };

export interface SelectQuery {
  requestId: string;
  model: string;
  requestClass: string;
  /** Output budget (max_tokens) charged to the request. */
  maxTokens: number;
  /** Undefined when the prompt has no single routable form (e.g. a batch of prompts). */
  prompt: RoutePrompt | undefined;
  /** Engines already tried for this request. */
  exclude: ReadonlySet<string>;
  /** Aborted when the client goes away. */
  signal?: AbortSignal;
}

/** A placement refused by the router (level `router`), surfaced to the client as 429. */
export interface RouterRejection {
  reason: string;
  requestClass: string;
  observed: number;
  limit: number;
  retryAfterMs: number;
  message: string;
}

export type Selection =
  | { kind: "engine"; lease: EngineLease }
  | { kind: "none" }
  | { kind: "rejected"; rejection: RouterRejection };

export interface EngineSelector {
  select(query: SelectQuery): Promise<Selection>;
}

/** The synchronous least-in-flight choice, also the router selector's fallback. */
export interface LocalEngineSelector extends EngineSelector {
  pick(model: string, exclude?: ReadonlySet<string>): EngineLease | undefined;
}

export function leastInflightSelector(directory: EngineDirectory): LocalEngineSelector {
  const inflightByWorker = new Map<string, number>();
  // Rotates ties so equal engines share load instead of the first always winning.
  let tieBreak = 0;
  const pick = (model: string, exclude?: ReadonlySet<string>): EngineLease | undefined => {
    const candidates = enginesOf(directory, model).filter((e) => !exclude?.has(e.workerId));
    if (candidates.length === 0) return undefined;
    tieBreak = (tieBreak + 1) % candidates.length;
    let best: EngineEntry | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (let i = 0; i < candidates.length; i++) {
      const engine = candidates[(i + tieBreak) % candidates.length] as EngineEntry;
      const load = inflightByWorker.get(engine.workerId) ?? 0;
      if (load < bestLoad) {
        best = engine;
        bestLoad = load;
      }
    }
    const chosen = best as EngineEntry;
    inflightByWorker.set(chosen.workerId, bestLoad + 1);
    let returned = false;
    return {
      engine: chosen,
      done() {
        if (returned) return;
        returned = true;
        const left = (inflightByWorker.get(chosen.workerId) ?? 1) - 1;
        if (left <= 0) inflightByWorker.delete(chosen.workerId);
        else inflightByWorker.set(chosen.workerId, left);
      },
    };
  };
  return {
    pick,
    async select(query) {
      const lease = pick(query.model, query.exclude);
      return lease ? { kind: "engine", lease } : { kind: "none" };
    },
  };
}
