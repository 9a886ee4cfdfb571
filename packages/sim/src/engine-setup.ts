// Engine-model construction for the simulator: the core engine model with the chosen step-time profile,
// and the expansion of each request's prompt into block hashes at the engine's block size.

import { readFileSync } from "node:fs";
import {
  type BlockHash,
  createEngineModel,
  DEFAULT_ENGINE_MODEL_OPTIONS,
  dynamoMockerStepTime,
  type EngineModel,
  type SplitwiseProfileSelector,
  type StepTimeModel,
  splitwiseStepTime,
} from "@sluice/core";
import { expandBlockHashes, MOONCAKE_TRACE_BLOCK_TOKENS, uniqueBlockHashes } from "./block-hash.js";
import { SimUsageError } from "./errors.js";
import type { SimRequest } from "./workload.js";

export type StepModelName = "dynamo" | "splitwise";

export interface EngineSetupOptions {
  numGpuBlocks: number;
  blockSize: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  stepModel: StepModelName;
  /** Splitwise perf-model CSV (shared/perf/splitwise-sim_perf_model.csv); required for `splitwise`. */
  splitwiseCsvPath?: string;
  splitwiseProfile: SplitwiseProfileSelector;
}

export const DEFAULT_SPLITWISE_PROFILE: Readonly<SplitwiseProfileSelector> = Object.freeze({
  model: "llama2-70b",
  hardware: "h100-80gb",
  tensorParallel: 4,
});

export const DEFAULT_ENGINE_SETUP: Readonly<EngineSetupOptions> = Object.freeze({
  numGpuBlocks: DEFAULT_ENGINE_MODEL_OPTIONS.numGpuBlocks,
  blockSize: DEFAULT_ENGINE_MODEL_OPTIONS.blockSize,
  maxNumSeqs: DEFAULT_ENGINE_MODEL_OPTIONS.maxNumSeqs,
  maxNumBatchedTokens: DEFAULT_ENGINE_MODEL_OPTIONS.maxNumBatchedTokens,
  stepModel: "dynamo",
  splitwiseProfile: DEFAULT_SPLITWISE_PROFILE,
});

export interface EngineSetup {
  options: EngineSetupOptions;
  /** Engine `index`'s model; `collectKvEvents` when a router indexes the engines' KV events (L2). */
  createEngine: (index: number, collectKvEvents?: boolean) => EngineModel;
  blockHashesOf: (request: SimRequest) => BlockHash[];
}

function loadStepTime(options: EngineSetupOptions): StepTimeModel {
  if (options.stepModel === "dynamo") return dynamoMockerStepTime();
  if (options.splitwiseCsvPath === undefined) {
    throw new SimUsageError(
      "--step-model splitwise needs --splitwise-csv FILE (shared/perf/splitwise-sim_perf_model.csv)",
    );
  }
  let csv: string;
  try {
    csv = readFileSync(options.splitwiseCsvPath, "utf8");
  } catch (error) {
    throw new SimUsageError(
      `cannot read --splitwise-csv ${options.splitwiseCsvPath}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return splitwiseStepTime(csv, options.splitwiseProfile);
}

export function createEngineSetup(partial: Partial<EngineSetupOptions> = {}): EngineSetup {
  const options: EngineSetupOptions = { ...DEFAULT_ENGINE_SETUP, ...partial };
  const stepTime = loadStepTime(options);
  const { blockSize } = options;
  const expansion = { traceBlockTokens: MOONCAKE_TRACE_BLOCK_TOKENS, engineBlockTokens: blockSize };
  // Validate once up front so a bad flag fails before any run, with the engine's own message.
  createEngineModel({ ...modelOptions(options), stepTime });
  return {
    options,
    createEngine: (_index, collectKvEvents = false) =>
      createEngineModel({ ...modelOptions(options), stepTime, collectKvEvents }),
    blockHashesOf(request: SimRequest): BlockHash[] {
      const hashes =
        request.hashIds !== undefined
          ? expandBlockHashes(request.hashIds, request.promptTokens, expansion, request.index + 1)
          : uniqueBlockHashes(request.index + 1, request.promptTokens, blockSize);
      return hashes.map((h) => BigInt(h));
    },
  };
}

function modelOptions(o: EngineSetupOptions) {
  return {
    numGpuBlocks: o.numGpuBlocks,
    blockSize: o.blockSize,
    maxNumSeqs: o.maxNumSeqs,
    maxNumBatchedTokens: o.maxNumBatchedTokens,
    reportTokens: true,
    collectKvEvents: false,
  };
}
