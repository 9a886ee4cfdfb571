// False rejections: the counterfactual the simulator can compute (docs/evaluation.md §"False rejections").
//
// A sampled rejected request r is re-simulated twice on the same window of the workload — the arrivals in
// [t_r − warm-up, t_r + horizon], everything seeded identically — once as is (B) and once with r
// force-admitted (C, `forceAdmitRequest`). Only r's admission differs between B and C, so any difference
// is caused by admitting r. r was a false rejection when, in C:
//   strict: r met its objectives AND no other request's outcome got worse (met in B ⇒ met in C);
//   net:    r met its objectives AND the other requests' met count did not fall (Σ met_C ≥ Σ met_B).
// Windowing keeps the cost at two short runs per sample instead of two full traces; the warm-up rebuilds
// a loaded state before t_r. A sample counts only if B rejects r again (the window reproduced the
// rejection); candidates that do not are counted and skipped.

import { SimUsageError } from "./errors.js";
import { createRng } from "./rng.js";
import { type SimRunResult, type SimulatorOptions, simulate } from "./simulator.js";
import type { SimRequest, Workload } from "./workload.js";

export interface FalseRejectionOptions {
  /** Rejections to evaluate (sampled uniformly without replacement, seeded). */
  sampleSize: number;
  /** Arrivals simulated before the rejected request's arrival, virtual ms. */
  warmupMs: number;
  /** Arrivals simulated after it, virtual ms (the runs then drain). */
  horizonMs: number;
  seed: number;
  /** At most this many candidates are tried per sample wanted (windows that do not reproduce are skipped). */
  maxCandidatesPerSample: number;
}

export const DEFAULT_FALSE_REJECTION_OPTIONS: Readonly<FalseRejectionOptions> = Object.freeze({
  sampleSize: 30,
  warmupMs: 30_000,
  horizonMs: 30_000,
  seed: 1,
  maxCandidatesPerSample: 3,
});

export interface FalseRejectionSample {
  /** Index of the rejected request in the full workload. */
  request: number;
  /** Its `level:reason` in the full run. */
  rejectionKey: string;
  /** r completed meeting its objectives when force-admitted. */
  forcedMet: boolean;
  /** Other requests met in B but not in C. */
  othersWorse: number;
  /** Other requests met in C but not in B. */
  othersBetter: number;
  strict: boolean;
  net: boolean;
}

/** A proportion with its 95 % Wilson score interval. */
export interface Proportion {
  count: number;
  of: number;
  rate: number;
  ci95: [low: number, high: number];
}

export interface FalseRejectionEstimate {
  /** Policy rejections in the full run (the population sampled from). */
  rejected: number;
  /** Candidates whose window did not reproduce the rejection (skipped). */
  notReproduced: number;
  samples: FalseRejectionSample[];
  strict: Proportion;
  net: Proportion;
  /** Force-admitted requests that met their objectives, whatever happened to the others. */
  forcedMet: Proportion;
}

/** 95 % Wilson score interval of `count` successes in `of` trials ([0, 1] when of = 0). */
export function wilsonInterval(count: number, of: number, z = 1.96): [number, number] {
  if (of === 0) return [0, 1];
  const p = count / of;
  const z2 = z * z;
  const denominator = 1 + z2 / of;
  const center = (p + z2 / (2 * of)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / of + z2 / (4 * of * of))) / denominator;
  return [Math.max(0, center - half), Math.min(1, center + half)];
}

function proportion(count: number, of: number): Proportion {
  return { count, of, rate: of > 0 ? count / of : 0, ci95: wilsonInterval(count, of) };
}

/** The arrivals of `workload` in [fromMs, toMs], re-indexed from 0; `position` maps the full index. */
export function windowOf(
  workload: Workload,
  fromMs: number,
  toMs: number,
): { workload: Workload; firstIndex: number } {
  const requests: SimRequest[] = [];
  let firstIndex = -1;
  for (const r of workload.requests) {
    if (r.arrivalMs < fromMs || r.arrivalMs > toMs) continue;
    if (firstIndex < 0) firstIndex = r.index;
    requests.push({ ...r, index: requests.length });
  }
  return {
    workload: { requests, windowMs: Math.max(1, toMs - fromMs), rateScale: workload.rateScale },
    firstIndex,
  };
}

/** Evaluates one rejected request (full-workload index); undefined when the window does not reject it. */
export function evaluateRejection(
  workload: Workload,
  request: number,
  simulator: () => SimulatorOptions,
  options: Pick<FalseRejectionOptions, "warmupMs" | "horizonMs">,
  rejectionKey = "",
): FalseRejectionSample | undefined {
  const target = workload.requests[request];
  if (target === undefined) throw new SimUsageError(`no request ${request} in the workload`);
  const window = windowOf(
    workload,
    target.arrivalMs - options.warmupMs,
    target.arrivalMs + options.horizonMs,
  );
  const local = request - window.firstIndex;
  const base = simulate(window.workload, simulator());
  if (base.admitted[local] === 1) return undefined;
  const forced = simulate(window.workload, { ...simulator(), forceAdmitRequest: local });
  return compare(base, forced, local, request, rejectionKey);
}

function compare(
  base: SimRunResult,
  forced: SimRunResult,
  local: number,
  request: number,
  rejectionKey: string,
): FalseRejectionSample {
  let othersWorse = 0;
  let othersBetter = 0;
  for (let j = 0; j < base.metObjectives.length; j++) {
    if (j === local) continue;
    const b = base.metObjectives[j] as number;
    const c = forced.metObjectives[j] as number;
    if (b > c) othersWorse++;
    else if (c > b) othersBetter++;
  }
  const forcedMet = forced.metObjectives[local] === 1;
  return {
    request,
    rejectionKey,
    forcedMet,
    othersWorse,
    othersBetter,
    strict: forcedMet && othersWorse === 0,
    net: forcedMet && othersBetter >= othersWorse,
  };
}

/**
 * Samples the policy rejections of `full` (a run of `workload` under the same simulator options) and
 * evaluates each by the windowed counterfactual. `simulator` must return options with a FRESH policy on
 * every call (policies are stateful).
 */
export function estimateFalseRejections(
  workload: Workload,
  full: SimRunResult,
  simulator: () => SimulatorOptions,
  partial: Partial<FalseRejectionOptions> = {},
  onSample?: (done: number, wanted: number) => void,
): FalseRejectionEstimate {
  const o = { ...DEFAULT_FALSE_REJECTION_OPTIONS, ...partial };
  if (!(Number.isInteger(o.sampleSize) && o.sampleSize >= 1)) {
    throw new SimUsageError(`false-rejection sample size must be an integer ≥ 1, got ${o.sampleSize}`);
  }
  if (!(o.warmupMs >= 0) || !(o.horizonMs >= 0)) {
    throw new SimUsageError("false-rejection warm-up and horizon must be ≥ 0 ms");
  }
  const rejected: number[] = [];
  for (let i = 0; i < full.admitted.length; i++) if (full.admitted[i] === 0) rejected.push(i);
  // Seeded Fisher–Yates: the candidate order, so a larger sample extends a smaller one.
  const rng = createRng(o.seed);
  for (let i = rejected.length - 1; i > 0; i--) {
    const k = Math.floor(rng() * (i + 1));
    [rejected[i], rejected[k]] = [rejected[k] as number, rejected[i] as number];
  }
  const samples: FalseRejectionSample[] = [];
  let notReproduced = 0;
  const maxCandidates = o.sampleSize * o.maxCandidatesPerSample;
  for (let c = 0; c < rejected.length && c < maxCandidates && samples.length < o.sampleSize; c++) {
    const request = rejected[c] as number;
    const sample = evaluateRejection(workload, request, simulator, o, full.rejectionKey?.[request] ?? "");
    if (sample === undefined) notReproduced++;
    else {
      samples.push(sample);
      onSample?.(samples.length, o.sampleSize);
    }
  }
  const count = (f: (s: FalseRejectionSample) => boolean) => samples.filter(f).length;
  return {
    rejected: rejected.length,
    notReproduced,
    samples,
    strict: proportion(
      count((s) => s.strict),
      samples.length,
    ),
    net: proportion(
      count((s) => s.net),
      samples.length,
    ),
    forcedMet: proportion(
      count((s) => s.forcedMet),
      samples.length,
    ),
  };
}
