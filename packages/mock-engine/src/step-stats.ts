import type { StepResult } from "@sluice/core";

/**
 * Online measurements of the engine's speed, as an engine-scheduler would take them from a real
 * engine: prefill throughput from steps that prefilled, decode step time from pure decode steps,
 * both as EWMAs (engine time).
 */
export interface StepStats {
  observe(result: StepResult): void;
  /** 0 until a prefill step was seen. */
  prefillTokensPerS(): number;
  /** 0 until a pure decode step was seen. */
  decodeStepMs(): number;
}

export const DEFAULT_STEP_STATS_ALPHA = 0.2;

export function createStepStats(alpha = DEFAULT_STEP_STATS_ALPHA): StepStats {
  let prefillRate = 0;
  let decodeMs = 0;
  const ewma = (previous: number, sample: number) =>
    previous === 0 ? sample : previous + alpha * (sample - previous);
  return {
    observe(result) {
      if (result.durationMs <= 0) return;
      if (result.prefillTokens > 0) {
        prefillRate = ewma(prefillRate, result.prefillTokens / (result.durationMs / 1000));
      } else if (result.decodeSeqs > 0) {
        decodeMs = ewma(decodeMs, result.durationMs);
      }
    },
    prefillTokensPerS: () => prefillRate,
    decodeStepMs: () => decodeMs,
  };
}
