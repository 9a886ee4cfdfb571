import { EngineConfigError } from "./errors.js";
import { dynamoMockerStepTime } from "./step-time.js";
import type { EngineModelOptions } from "./types.js";

/**
 * Defaults: an H100-class vLLM engine as in the Dynamo mocker examples — 16 384 blocks × 64 tokens
 * (1 Mi tokens of KV), vLLM's `max_num_seqs` 256, `max_num_batched_tokens` 8192, the mocker's 1 %
 * watermark, prefix caching on, Dynamo mocker step times, no KV event collection.
 */
export const DEFAULT_ENGINE_MODEL_OPTIONS: Readonly<Omit<EngineModelOptions, "stepTime">> = Object.freeze({
  numGpuBlocks: 16384,
  blockSize: 64,
  maxNumSeqs: 256,
  maxNumBatchedTokens: 8192,
  watermark: 0.01,
  enablePrefixCaching: true,
  collectKvEvents: false,
  reportTokens: true,
});

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1)
    throw new EngineConfigError(`engine option ${name} must be an integer ≥ 1, got ${v}`);
}

/** Applies defaults and validates; throws `EngineConfigError` on any invalid value. */
export function withDefaults(options: Partial<EngineModelOptions> = {}): EngineModelOptions {
  const o: EngineModelOptions = {
    ...DEFAULT_ENGINE_MODEL_OPTIONS,
    stepTime: options.stepTime ?? dynamoMockerStepTime(),
    ...stripUndefined(options),
  };
  positiveInt("numGpuBlocks", o.numGpuBlocks);
  positiveInt("blockSize", o.blockSize);
  positiveInt("maxNumSeqs", o.maxNumSeqs);
  positiveInt("maxNumBatchedTokens", o.maxNumBatchedTokens);
  if (!(o.watermark >= 0 && o.watermark < 1)) {
    throw new EngineConfigError(`engine option watermark must be in [0, 1), got ${o.watermark}`);
  }
  if (typeof o.stepTime?.stepMs !== "function") {
    throw new EngineConfigError("engine option stepTime must have a stepMs(step) function");
  }
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
