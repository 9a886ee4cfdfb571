// Baseline `dynamo-ema`: the adaptive limiter of NVIDIA Dynamo PR #1949 ("feat: add rate limiter logic to
// dynamo's openai api compatible http service", https://github.com/ai-dynamo/dynamo/pull/1949;
// lib/llm/src/http/service/rate_limiter.rs, `TimeWeightedAverageTracker`). The frontend keeps a
// time-weighted exponential moving average of TTFT and of ITL with time constant τ:
//   on a sample x at time t:  decay = e^(−Δt/τ),  W ← 1 + W·decay,  α = 1/W,  avg ← α·x + (1−α)·avg
//   when read at time t:       avg · e^(−idle/τ), idle = time since the last sample,
// and rejects new requests (HTTP 429) while either average exceeds its threshold. No Retry-After.
//
// Samples here: one TTFT per request at its first token, one ITL per request at completion (its mean
// inter-token gap) — the PR samples ITL per streamed chunk; per-request means weigh long answers less.

import { SimUsageError } from "./errors.js";
import type { AdmissionDecision, AdmissionPolicy } from "./policy.js";

export interface DynamoEmaOptions {
  /** Time constant τ of both averages. */
  timeConstantMs: number;
  ttftThresholdMs: number;
  itlThresholdMs: number;
}

/** A time-weighted EMA as PR #1949 defines it. */
export interface TimeWeightedEma {
  record(value: number, nowMs: number): void;
  /** The average decayed by the idle time since the last sample; 0 before any sample. */
  read(nowMs: number): number;
}

export function createTimeWeightedEma(timeConstantMs: number): TimeWeightedEma {
  if (!(timeConstantMs > 0) || !Number.isFinite(timeConstantMs)) {
    throw new SimUsageError(`EMA time constant must be a number > 0 ms, got ${timeConstantMs}`);
  }
  let average = 0;
  let weight = 0;
  let lastMs = Number.NaN;
  return {
    record(value, nowMs) {
      const decay = Number.isNaN(lastMs) ? 0 : Math.exp(-Math.max(0, nowMs - lastMs) / timeConstantMs);
      weight = 1 + weight * decay;
      const alpha = 1 / weight;
      average = alpha * value + (1 - alpha) * average;
      lastMs = nowMs;
    },
    read(nowMs) {
      if (Number.isNaN(lastMs)) return 0;
      return average * Math.exp(-Math.max(0, nowMs - lastMs) / timeConstantMs);
    },
  };
}

export function dynamoEmaPolicy(options: DynamoEmaOptions): AdmissionPolicy {
  if (!(options.ttftThresholdMs > 0) || !(options.itlThresholdMs > 0)) {
    throw new SimUsageError(
      `dynamo-ema thresholds must be > 0 ms, got TTFT ${options.ttftThresholdMs}, ITL ${options.itlThresholdMs}`,
    );
  }
  const ttft = createTimeWeightedEma(options.timeConstantMs);
  const itl = createTimeWeightedEma(options.timeConstantMs);
  return {
    name: "dynamo-ema",
    admit(_request, _view, nowMs): AdmissionDecision {
      if (ttft.read(nowMs) > options.ttftThresholdMs) {
        return { admit: false, level: "L1", reason: "dynamo_ema_ttft", retryAfterMs: Number.NaN };
      }
      if (itl.read(nowMs) > options.itlThresholdMs) {
        return { admit: false, level: "L1", reason: "dynamo_ema_itl", retryAfterMs: Number.NaN };
      }
      return { admit: true };
    },
    onFirstToken(request, nowMs) {
      ttft.record(nowMs - request.arrivalMs, nowMs);
    },
    onComplete(request, facts, nowMs) {
      if (request.outputTokens > 1) itl.record(facts.meanItlMs, nowMs);
    },
  };
}
