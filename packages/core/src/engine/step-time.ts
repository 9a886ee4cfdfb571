// Step-time models: how long one engine iteration takes given what it computes. Two profiles so that
// decisions are checked against more than one cost curve (see ../shared/perf/README.md).
import { EngineConfigError } from "./errors.js";
import type { StepTimeInput, StepTimeModel } from "./types.js";

/**
 * Coefficients of NVIDIA Dynamo's mocker polynomial timing (ai-dynamo/dynamo `lib/mocker`,
 * `PerfModel::Polynomial`; its authors call them rough):
 *   prefill_ms(T) = 4.209989e-7·T² + 1.518344e-2·T + 16.50142   (T = new prefill tokens of the pass)
 *   decode_ms(u)  = max(1, −25.74·u² + 54.01·u + 5.74)           (u = active KV blocks / total blocks)
 */
export const DYNAMO_MOCKER_STEP_COEFFICIENTS = {
  prefillQuadraticMsPerToken2: 4.209989e-7,
  prefillLinearMsPerToken: 1.518344e-2,
  prefillConstantMs: 16.50142,
  decodeQuadraticMs: -25.74,
  decodeLinearMs: 54.01,
  decodeConstantMs: 5.74,
  decodeFloorMs: 1,
} as const;

/**
 * Dynamo mocker step time. How one pass combines the two terms follows the mocker's vLLM scheduler
 * (`lib/mocker/src/scheduler/vllm/core.rs`, `execute_pass_internal` / `emit_ready_tokens`): the prefill of
 * the pass runs first (`decode_start_ms = now_ms + prefill_time`), then one decode over every request that
 * is ready to emit a token (`end_ms = decode_start_ms + decode_time`) — so the pass lasts the SUM, and the
 * decode term is paid whenever any sequence emits a token, including the first token of a prompt whose
 * prefill completed in this pass. Hence `outputSeqs`, not `decodeSeqs`, gates the decode term.
 */
export function dynamoMockerStepTime(): StepTimeModel {
  const c = DYNAMO_MOCKER_STEP_COEFFICIENTS;
  return {
    stepMs({ prefillTokens, outputSeqs, kvUsage }: StepTimeInput): number {
      let ms = 0;
      if (prefillTokens > 0) {
        ms +=
          c.prefillQuadraticMsPerToken2 * prefillTokens * prefillTokens +
          c.prefillLinearMsPerToken * prefillTokens +
          c.prefillConstantMs;
      }
      if (outputSeqs > 0) {
        // Dynamo clamps utilisation to full before evaluating the curve.
        const u = Math.min(1, Math.max(0, kvUsage));
        const decodeMs = c.decodeQuadraticMs * u * u + c.decodeLinearMs * u + c.decodeConstantMs;
        ms += Math.max(decodeMs, c.decodeFloorMs);
      }
      return ms;
    },
  };
}

export interface SplitwiseProfileSelector {
  /** `model` column, e.g. `llama2-70b`, `bloom-176b`. */
  model: string;
  /** `hardware` column, e.g. `h100-80gb`, `a100-80gb`, `h100-80gb-pcap`. */
  hardware: string;
  /** `tensor_parallel` column: 2, 4 or 8. */
  tensorParallel: number;
}

/** A piecewise-linear curve over sorted, distinct x. */
interface Curve {
  xs: Float64Array;
  ys: Float64Array;
}

function buildCurve(points: Map<number, { sum: number; n: number }>): Curve {
  const keys = [...points.keys()].sort((a, b) => a - b);
  const xs = new Float64Array(keys.length);
  const ys = new Float64Array(keys.length);
  keys.forEach((k, i) => {
    const p = points.get(k)!;
    xs[i] = k;
    ys[i] = p.sum / p.n;
  });
  return { xs, ys };
}

/** Linear interpolation; below the first point the first value (fixed per-pass overhead dominates small
 * batches), above the last point linear extrapolation along the last segment (cost keeps growing). */
export function interpolateCurve(curve: { xs: ArrayLike<number>; ys: ArrayLike<number> }, x: number): number {
  const { xs, ys } = curve;
  const n = xs.length;
  if (x <= xs[0]!) return ys[0]!;
  if (n === 1) return ys[0]!;
  let hi = 1;
  if (x >= xs[n - 1]!) hi = n - 1;
  else {
    // Binary search for the first x_i ≥ x; the curves have ~10 points, this is cheap either way.
    let lo = 0;
    hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (xs[mid]! < x) lo = mid;
      else hi = mid;
    }
  }
  const x0 = xs[hi - 1]!;
  const x1 = xs[hi]!;
  const y0 = ys[hi - 1]!;
  const y1 = ys[hi]!;
  return y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
}

/** The two curves extracted from the Splitwise CSV, exposed for reports and tests. */
export interface SplitwiseCurves {
  /** Prefill ms by total prompt tokens in the pass (prompt_size × batch_size). */
  prefill: Curve;
  /** Decode ms per output token by batch size. */
  decode: Curve;
}

const REQUIRED_COLUMNS = [
  "model",
  "hardware",
  "prompt_size",
  "batch_size",
  "prompt_time",
  "token_time",
  "tensor_parallel",
] as const;

/**
 * Parses the Splitwise simulator's measured performance table (Mutinifni/splitwise-sim
 * `data/perf_model.csv`, MIT; copy in `shared/perf/`) for one model / hardware / TP and returns the
 * interpolation curves. Repeated rows of a point are averaged. `prompt_time` of a row is the prefill
 * of `batch_size` prompts of `prompt_size` tokens, so the prefill curve is keyed by their product (the
 * 512×8 and 4096×1 points agree within 1 %, which supports that reading).
 */
export function parseSplitwiseCurves(csvText: string, selector: SplitwiseProfileSelector): SplitwiseCurves {
  const lines = csvText.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines.length < 2) throw new EngineConfigError("splitwise CSV: no data rows");
  const header = lines[0]!.split(",").map((h) => h.trim());
  const col: Record<(typeof REQUIRED_COLUMNS)[number], number> = Object.create(null);
  for (const name of REQUIRED_COLUMNS) {
    const idx = header.indexOf(name);
    if (idx < 0) throw new EngineConfigError(`splitwise CSV: missing column ${JSON.stringify(name)}`);
    col[name] = idx;
  }
  const prefill = new Map<number, { sum: number; n: number }>();
  const decode = new Map<number, { sum: number; n: number }>();
  const add = (m: Map<number, { sum: number; n: number }>, x: number, y: number) => {
    const p = m.get(x);
    if (p) {
      p.sum += y;
      p.n += 1;
    } else m.set(x, { sum: y, n: 1 });
  };
  const seen = new Set<string>();
  for (let i = 1; i < lines.length; i++) {
    const cells = lines[i]!.split(",");
    const model = cells[col.model]?.trim();
    const hardware = cells[col.hardware]?.trim();
    const tp = Number(cells[col.tensor_parallel]);
    seen.add(`${model}/${hardware}/tp${tp}`);
    if (model !== selector.model || hardware !== selector.hardware || tp !== selector.tensorParallel)
      continue;
    const promptSize = Number(cells[col.prompt_size]);
    const batchSize = Number(cells[col.batch_size]);
    const promptMs = Number(cells[col.prompt_time]);
    const tokenMs = Number(cells[col.token_time]);
    if (![promptSize, batchSize, promptMs, tokenMs].every((v) => Number.isFinite(v) && v > 0)) {
      throw new EngineConfigError(`splitwise CSV line ${i + 1}: non-numeric or non-positive value`);
    }
    add(prefill, promptSize * batchSize, promptMs);
    add(decode, batchSize, tokenMs);
  }
  if (prefill.size === 0) {
    throw new EngineConfigError(
      `splitwise CSV: no rows for ${selector.model}/${selector.hardware}/tp${selector.tensorParallel}; available: ${[...seen].sort().join(", ")}`,
    );
  }
  return { prefill: buildCurve(prefill), decode: buildCurve(decode) };
}

/**
 * Measured second profile: prefill_ms interpolated in the pass's new prefill tokens, plus (when any
 * sequence decodes) per-token decode ms interpolated in the number of decoding sequences. Summed like the
 * Dynamo profile. A completing prefill adds no decode term here because Splitwise's `prompt_time` already
 * covers producing the first token.
 */
export function splitwiseStepTime(csvText: string, selector: SplitwiseProfileSelector): StepTimeModel {
  const curves = parseSplitwiseCurves(csvText, selector);
  return {
    stepMs({ prefillTokens, decodeSeqs }: StepTimeInput): number {
      let ms = 0;
      if (prefillTokens > 0) ms += interpolateCurve(curves.prefill, prefillTokens);
      if (decodeSeqs > 0) ms += interpolateCurve(curves.decode, decodeSeqs);
      return ms;
    },
  };
}
