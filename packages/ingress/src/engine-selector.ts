// Interim engine choice until the router's `Route` RPC replaces it (issue 4): the live engine of the
// model with the fewest requests this ingress has in flight on it. Kept behind `EngineSelector` so the
// router client drops in without touching the proxy.

import type { EngineDirectory, EngineEntry } from "./engine-registry.js";
import { enginesOf } from "./engine-registry.js";

export interface EngineLease {
  readonly engine: EngineEntry;
  /** Returns the engine's slot; idempotent. */
  done(): void;
}

export interface EngineSelector {
  /** An engine for `model` with the slot taken, or undefined when none is live. `exclude` skips engines already tried. */
  select(model: string, exclude?: ReadonlySet<string>): EngineLease | undefined;
}

export function leastInflightSelector(directory: EngineDirectory): EngineSelector {
  const inflightByWorker = new Map<string, number>();
  // Rotates ties so equal engines share load instead of the first always winning.
  let tieBreak = 0;
  return {
    select(model, exclude) {
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
    },
  };
}
