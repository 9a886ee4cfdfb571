// Public API of @sluice/core: pure decision code and models shared by the processes and the simulator.

export type { Clock, ManualClock } from "./clock.js";
// Time
export { manualClock } from "./clock.js";
// Engine model (mock-engine and simulator)
export { createEngineModel } from "./engine/engine-model.js";
export {
  EngineBusyError,
  EngineConfigError,
  InvalidEngineRequestError,
  RequestTooLongError,
} from "./engine/errors.js";
export {
  DEFAULT_ENGINE_MODEL_OPTIONS,
  withDefaults as engineModelOptionsWithDefaults,
} from "./engine/options.js";
export type { SplitwiseCurves, SplitwiseProfileSelector } from "./engine/step-time.js";
export {
  DYNAMO_MOCKER_STEP_COEFFICIENTS,
  dynamoMockerStepTime,
  interpolateCurve,
  parseSplitwiseCurves,
  splitwiseStepTime,
} from "./engine/step-time.js";
export type {
  BlockHash,
  EngineLoadSnapshot,
  EngineModel,
  EngineModelOptions,
  EngineRequest,
  KvEvent,
  StepResult,
  StepTimeInput,
  StepTimeModel,
} from "./engine/types.js";
export type { BlockHashes } from "./kv/block-hash.js";
// KV block hashing (Dynamo-compatible)
export {
  chainSequenceHashes,
  computeBlockHashes,
  computeLocalBlockHashes,
  nextSequenceHash,
  XXH3_SEED,
} from "./kv/block-hash.js";
