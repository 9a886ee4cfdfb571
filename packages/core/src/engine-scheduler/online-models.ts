// Online models of one engine, learned from the token timings the L3 sidecar proxies.
//
// Prefill: ms from engine admission to first token ≈ a + b·W, where W = prefill work the request
// waits for = uncached prompt tokens of the requests already in the engine without a first token
// (which the sidecar tracks exactly) + its own uncached tokens. Fitting against W rather than the
// request's own size keeps the fit unbiased under load (the engine prefills what is ahead first) and
// is exactly the quantity the L3 decision predicts with. a absorbs the per-pass overhead and the
// first token's decode term; 1/b is the prefill throughput. Windowed ridge regression on [1, W/1000].
//
// Decode: inter-token gap ≈ c₀ + c₁·(batch/64) + c₂·u + c₃·u² (u = KV usage in [0, 1]), covering both
// reference profiles: Dynamo's mocker is quadratic in u, Splitwise's grows with batch.
//
// Slot release: EWMA of the interval between finishes while the engine was full, i.e. how fast a
// full engine frees a slot for the queue. Unknown (0) until observed.
//
// Seeds default to the Dynamo mocker profile that `createEngineModel` uses by default, priced at the
// engine's prefill chunk (`dynamoPrefillSeed`; the L3 decision passes its `engineMaxNumBatchedTokens`);
// the shell seeds from its own configuration where the engine is known to differ.
import { DYNAMO_MOCKER_STEP_COEFFICIENTS } from "../engine/step-time.js";
import { EngineSchedulerConfigError } from "./errors.js";
import { createWindowedRegression } from "./windowed-regression.js";

export interface OnlineModelOptions {
  /** Seed of the fixed time to a first token (per-pass overhead + first decode). */
  prefillSeedFixedMs: number;
  /** Seed prefill throughput. */
  prefillSeedTokensPerS: number;
  /** Prefill observations kept (one per request). */
  prefillWindowSize: number;
  /** Seed decode step: ms at batch 0 and KV usage 0. */
  decodeSeedBaseMs: number;
  /** Seed decode growth per 64 running sequences. */
  decodeSeedMsPer64Seqs: number;
  /** Seed decode growth linear in KV usage (ms at u = 1). */
  decodeSeedKvLinearMs: number;
  /** Seed decode growth quadratic in KV usage. */
  decodeSeedKvQuadraticMs: number;
  /** Decode observations kept (one per output-token gap, or one per step if the shell samples). */
  decodeWindowSize: number;
  /** Prior strength in sample-equivalents: how many observations it takes to outweigh the seed. */
  priorSamples: number;
  /** Winsorisation factor: after warm-up an observation is clamped to [pred/k, pred·k]. */
  outlierFactor: number;
  /** EWMA weight of the newest slot-release interval. */
  slotReleaseEwmaWeight: number;
}

const c = DYNAMO_MOCKER_STEP_COEFFICIENTS;

/** vLLM's `max_num_batched_tokens` default for online serving (and the engine model's): the seed's chunk. */
export const DEFAULT_PREFILL_SEED_CHUNK_TOKENS = 8192;

/**
 * Prefill seed from the Dynamo mocker profile at the chunk size the engine actually prefills with
 * (`max_num_batched_tokens`). The profile is quadratic in the pass's tokens, so the linear model's slope is
 * the secant through a full chunk: b = linear + quadratic·chunk ms per token, and a = the pass constant + the
 * first token's decode. A prompt of exactly one chunk is then predicted exactly (at low KV usage); smaller
 * prompts come out a few % pessimistic, multi-chunk prompts a few % optimistic (each chunk pays the pass
 * constant again). At 1000-token chunks this is ~65.8k tokens/s, at 8192 ~53.7k: seeding at 1000 made the
 * first predictions ~30 % optimistic on an engine that fills its 8192-token budget.
 */
export function dynamoPrefillSeed(
  chunkTokens: number = DEFAULT_PREFILL_SEED_CHUNK_TOKENS,
): Pick<OnlineModelOptions, "prefillSeedFixedMs" | "prefillSeedTokensPerS"> {
  if (!(Number.isInteger(chunkTokens) && chunkTokens >= 1))
    throw new EngineSchedulerConfigError(
      `prefill seed chunk must be an integer ≥ 1 token, got ${chunkTokens}`,
    );
  return {
    prefillSeedFixedMs: c.prefillConstantMs + c.decodeConstantMs,
    prefillSeedTokensPerS: 1000 / (c.prefillLinearMsPerToken + c.prefillQuadraticMsPerToken2 * chunkTokens),
  };
}

/** Seeds from the Dynamo mocker profile at 8192-token chunks (~22 ms fixed, ~53 700 tokens/s). */
export const DEFAULT_ONLINE_MODEL_OPTIONS: Readonly<OnlineModelOptions> = Object.freeze({
  ...dynamoPrefillSeed(DEFAULT_PREFILL_SEED_CHUNK_TOKENS),
  prefillWindowSize: 128,
  decodeSeedBaseMs: c.decodeConstantMs,
  decodeSeedMsPer64Seqs: 0,
  decodeSeedKvLinearMs: c.decodeLinearMs,
  decodeSeedKvQuadraticMs: c.decodeQuadraticMs,
  decodeWindowSize: 1024,
  priorSamples: 2,
  outlierFactor: 4,
  slotReleaseEwmaWeight: 0.1,
});

export function onlineModelOptionsWithDefaults(
  options: Partial<OnlineModelOptions> = {},
): OnlineModelOptions {
  const o = { ...DEFAULT_ONLINE_MODEL_OPTIONS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (o as Record<string, number>)[k] = v;
  for (const [k, v] of Object.entries(o))
    if (!Number.isFinite(v))
      throw new EngineSchedulerConfigError(`online model option ${k} must be finite, got ${v}`);
  if (!(o.prefillSeedTokensPerS > 0))
    throw new EngineSchedulerConfigError(`prefillSeedTokensPerS must be > 0, got ${o.prefillSeedTokensPerS}`);
  if (!(o.prefillSeedFixedMs >= 0))
    throw new EngineSchedulerConfigError(`prefillSeedFixedMs must be ≥ 0, got ${o.prefillSeedFixedMs}`);
  if (!(o.priorSamples > 0))
    throw new EngineSchedulerConfigError(`priorSamples must be > 0, got ${o.priorSamples}`);
  if (!(o.slotReleaseEwmaWeight > 0 && o.slotReleaseEwmaWeight <= 1))
    throw new EngineSchedulerConfigError(
      `slotReleaseEwmaWeight must be in (0, 1], got ${o.slotReleaseEwmaWeight}`,
    );
  return o;
}

/** One request's prefill as the sidecar saw it. */
export interface PrefillObservation {
  /** Uncached prompt tokens of requests in the engine without a first token when this one was admitted. */
  aheadTokens: number;
  /** This request's uncached prompt tokens. */
  uncachedTokens: number;
  /** Engine admission → first token. */
  elapsedMs: number;
}

/** One output-token gap. */
export interface DecodeObservation {
  gapMs: number;
  /** Sequences in the running batch when the token was produced. */
  batchSize: number;
  /** KV usage (active / total blocks) in [0, 1] at that time. */
  kvUsage: number;
}

/** Current estimates, for metrics and the load snapshot. */
export interface OnlineModelEstimates {
  prefillFixedMs: number;
  /** Marginal prefill throughput (1 / slope). */
  prefillTokensPerS: number;
  prefillSamples: number;
  decodeStepMsAtBatch1: number;
  decodeSamples: number;
  /** 0 until a full engine has released two slots. */
  slotReleaseIntervalMs: number;
}

export interface OnlineModels {
  /** Ignores (returns false) observations with non-finite or negative fields or no work at all. */
  observePrefill(o: PrefillObservation): boolean;
  observeDecode(o: DecodeObservation): boolean;
  observeSlotReleaseInterval(intervalMs: number): boolean;
  /** Predicted ms from engine admission to first token with `workTokens` of prefill work to get through. */
  prefillMs(workTokens: number): number;
  /** Fixed part of a prefill (per-pass overhead + first decode), ms: what each prefill chunk pays again. */
  prefillFixedMs(): number;
  /** Marginal ms per prefill token (the drain rate of queued work). */
  prefillMsPerToken(): number;
  /** Predicted inter-token gap of a batch of `batchSize` at KV usage `kvUsage`. */
  decodeStepMs(batchSize: number, kvUsage: number): number;
  slotReleaseIntervalMs(): number;
  estimates(): OnlineModelEstimates;
}

const KILO = 1000;
/** The fit is never allowed below this throughput or negative fixed cost (a collapsed fit must not admit everything). */
const MIN_MS_PER_KILOTOKEN = 1e-3;
const MIN_DECODE_STEP_MS = 0.1;

export function createOnlineModels(options: Partial<OnlineModelOptions> = {}): OnlineModels {
  const o = onlineModelOptionsWithDefaults(options);
  const prefill = createWindowedRegression({
    prior: [o.prefillSeedFixedMs, (KILO * KILO) / o.prefillSeedTokensPerS],
    // A sample's features are ~[1, 0.1..10]; weight the prior as `priorSamples` samples at x ≈ 1.
    priorWeight: [o.priorSamples, o.priorSamples],
    windowSize: o.prefillWindowSize,
    outlierFactor: o.outlierFactor,
    warmupSamples: Math.min(16, o.prefillWindowSize),
  });
  const decode = createWindowedRegression({
    prior: [o.decodeSeedBaseMs, o.decodeSeedMsPer64Seqs, o.decodeSeedKvLinearMs, o.decodeSeedKvQuadraticMs],
    priorWeight: [o.priorSamples, o.priorSamples, o.priorSamples, o.priorSamples],
    windowSize: o.decodeWindowSize,
    outlierFactor: o.outlierFactor,
    warmupSamples: Math.min(64, o.decodeWindowSize),
  });
  let slotReleaseMs = 0;
  const px = [1, 0];
  const dx = [1, 0, 0, 0];

  const prefillFixedMs = () => Math.max(0, prefill.coefficient(0));
  const prefillMsPerKilo = () => Math.max(MIN_MS_PER_KILOTOKEN, prefill.coefficient(1));
  const nonNegFinite = (v: number) => Number.isFinite(v) && v >= 0;

  const models: OnlineModels = {
    observePrefill({ aheadTokens, uncachedTokens, elapsedMs }) {
      if (![aheadTokens, uncachedTokens, elapsedMs].every(nonNegFinite) || elapsedMs === 0) return false;
      const work = aheadTokens + uncachedTokens;
      if (work === 0) return false; // a full prefix hit says nothing about prefill speed
      px[1] = work / KILO;
      prefill.add(px, elapsedMs);
      return true;
    },
    observeDecode({ gapMs, batchSize, kvUsage }) {
      if (![gapMs, batchSize, kvUsage].every(nonNegFinite) || gapMs === 0 || batchSize < 1) return false;
      const u = Math.min(1, kvUsage);
      dx[1] = batchSize / 64;
      dx[2] = u;
      dx[3] = u * u;
      decode.add(dx, gapMs);
      return true;
    },
    observeSlotReleaseInterval(intervalMs) {
      if (!nonNegFinite(intervalMs)) return false;
      slotReleaseMs =
        slotReleaseMs === 0
          ? intervalMs
          : slotReleaseMs + o.slotReleaseEwmaWeight * (intervalMs - slotReleaseMs);
      return true;
    },
    prefillMs(workTokens) {
      if (!(workTokens > 0)) return 0;
      return prefillFixedMs() + (prefillMsPerKilo() * workTokens) / KILO;
    },
    prefillFixedMs,
    prefillMsPerToken: () => prefillMsPerKilo() / KILO,
    decodeStepMs(batchSize, kvUsage) {
      const u = Math.min(1, Math.max(0, kvUsage));
      const ms =
        decode.coefficient(0) +
        (decode.coefficient(1) * batchSize) / 64 +
        decode.coefficient(2) * u +
        decode.coefficient(3) * u * u;
      return Math.max(MIN_DECODE_STEP_MS, ms);
    },
    slotReleaseIntervalMs: () => slotReleaseMs,
    estimates() {
      return {
        prefillFixedMs: prefillFixedMs(),
        prefillTokensPerS: (KILO * KILO) / prefillMsPerKilo(),
        prefillSamples: prefill.samples,
        decodeStepMsAtBatch1: models.decodeStepMs(1, 0),
        decodeSamples: decode.samples,
        slotReleaseIntervalMs: slotReleaseMs,
      };
    },
  };
  return models;
}
