// Public API of @sluice/replay: the `sluice replay` command and the pieces benchmarks use (run a replay,
// summarise it into the `sluice sim` report, rebuild trace prompts as token ids).

export { ReplayUsageError } from "./errors.js";
export type { ReplayOptions, ReplayProgress, ResolvedReplayOptions } from "./options.js";
export { completionsUrl, DEFAULT_REPLAY_OPTIONS } from "./options.js";
export type {
  CompletedOutcome,
  FailedOutcome,
  RefusedOutcome,
  RejectedOutcome,
  RequestOutcome,
} from "./outcome.js";
export { simLevelOf } from "./outcome.js";
export type { PromptTokenOptions } from "./prompt-tokens.js";
export { DEFAULT_PROMPT_TOKEN_OPTIONS, DEFAULT_PROMPT_VOCAB_SIZE, promptTokenIds } from "./prompt-tokens.js";
export { replayCommand } from "./replay-command.js";
export type { ReplayFlags } from "./replay-flags.js";
export { parseReplayFlags, REPLAY_HELP } from "./replay-flags.js";
export type { ClientStats, ReplayReport } from "./replay-report.js";
export { describeClientStats, summarizeReplay } from "./replay-report.js";
export type { ReplayMeasurements } from "./replay-runner.js";
export { runReplay } from "./replay-runner.js";
export type { StreamClient, StreamClientOptions } from "./stream-client.js";
export { createStreamClient } from "./stream-client.js";
