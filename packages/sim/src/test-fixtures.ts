// Helpers shared by this package's specs: tiny traces and engines with hand-computable step times.

import { createEngineModel } from "@sluice/core";
import { uniqueBlockHashes } from "./block-hash.js";
import type { EngineSetup } from "./engine-setup.js";
import type { Trace, TraceRecord } from "./trace.js";

/** An engine setup whose every step lasts `stepMs` (independent of batch), for hand-checked schedules. */
export function constantStepEngine(stepMs: number, maxNumSeqs = 256, numGpuBlocks = 1024): EngineSetup {
  const options = {
    numGpuBlocks,
    blockSize: 16,
    maxNumSeqs,
    maxNumBatchedTokens: 8192,
    stepModel: "dynamo" as const,
    splitwiseProfile: { model: "-", hardware: "-", tensorParallel: 1 },
  };
  return {
    options,
    createEngine: (_index, collectKvEvents = false) =>
      createEngineModel({
        numGpuBlocks: options.numGpuBlocks,
        blockSize: options.blockSize,
        maxNumSeqs,
        maxNumBatchedTokens: options.maxNumBatchedTokens,
        stepTime: { stepMs: () => stepMs },
        collectKvEvents,
      }),
    blockHashesOf: (r) =>
      uniqueBlockHashes(r.index + 1, r.promptTokens, options.blockSize).map((h) => BigInt(h)),
  };
}

export function traceOf(records: TraceRecord[]): Trace {
  return { format: "azure", source: "fixture", records, skippedLines: 0 };
}

/** `count` requests every `gapMs`, each `promptTokens` in and `outputTokens` out, no shared prefixes. */
export function regularTrace(
  count: number,
  gapMs: number,
  promptTokens: number,
  outputTokens: number,
): Trace {
  return traceOf(
    Array.from({ length: count }, (_, i) => ({ timestampMs: i * gapMs, promptTokens, outputTokens })),
  );
}
