// The evaluation of one shared trace (issue 8 §2, docs/evaluation.md): capacity, the swept baselines, every
// policy at 1×, 1.5×, 2× and 4× capacity, Retry-After accuracy (a second run with every rejection retried
// once), false rejections by the windowed counterfactual at 2×, and a class-mix run at 2×. Pure
// computation: returns a JSON-able result; bench/eval-report.ts runs one of these per child process.
import { basename } from "node:path";
import {
  type ClassMix,
  type ClassReport,
  createEngineSetup,
  DEFAULT_BASELINE_OPTIONS,
  type ExperimentOptions,
  estimateFalseRejections,
  type FalseRejectionEstimate,
  findCapacity,
  type PolicyName,
  type PolicyReport,
  type Proportion,
  readTraceFile,
  runPolicy,
  type SimRunResult,
  simulatorOptionsOf,
  summarize,
  workloadOf,
} from "@sluice/sim";

export const EVAL_POLICIES: readonly PolicyName[] = [
  "none",
  "static",
  "dynamo-busy",
  "dynamo-ema",
  "sluice-l1",
  "sluice-l1l2",
  "sluice-l1l2l3",
];
export const EVAL_MULTIPLIERS = [1, 1.5, 2, 4] as const;
/** Load at which baselines are tuned, false rejections sampled and the class mix run. */
export const FOCUS_MULTIPLIER = 2;
export const EVAL_CLASS_MIX: ClassMix = Object.freeze({ critical: 0.2, standard: 0.6, sheddable: 0.2 });
/** `static` limits tried, as multiples of 1 + p99 of the in-flight count `none` saw at capacity. */
export const STATIC_SWEEP_FACTORS = [0.25, 0.5, 1, 2];
/** `dynamo-busy` prefill thresholds tried (× max_num_batched_tokens); decode threshold stays 0.85. */
export const BUSY_SWEEP_PREFILL_FRACTIONS = [0.5, 1, 1.5, 3];

export interface EvalSettings {
  tracesDir: string;
  /** Rejections evaluated per (trace, policy) at 2×. */
  falseRejectionSample: number;
  falseRejectionWarmupMs: number;
  falseRejectionHorizonMs: number;
  /** Only the first part of the trace (trace time), for a quick look; undefined = whole trace. */
  durationMs: number | undefined;
}

export const DEFAULT_EVAL_SETTINGS: Readonly<EvalSettings> = Object.freeze({
  tracesDir: process.env.SLUICE_TRACES_DIR ?? "/work/shared/traces",
  falseRejectionSample: 30,
  falseRejectionWarmupMs: 30_000,
  falseRejectionHorizonMs: 30_000,
  durationMs: undefined,
});

/** False-rejection estimate without the per-sample list (kept short for RESULTS.md). */
export interface FalseRejectionSummary {
  rejected: number;
  sampled: number;
  notReproduced: number;
  strict: Proportion;
  net: Proportion;
  forcedMet: Proportion;
  /** `level:reason` → [samples, strict false rejections]. */
  byKey: Record<string, [number, number]>;
}

export interface EvalRow extends PolicyReport {
  multiplier: number;
  /** From the second run with every rejection retried once at its Retry-After; null = no Retry-After given. */
  retry: { retries: number; accuracy: number; metFraction: number } | null;
  /** At 2× only, for policies that rejected anything. */
  falseRejections: FalseRejectionSummary | null;
}

export interface ClassRow {
  policy: string;
  goodput_rps: number;
  slo_attainment_admitted: number;
  rejected_fraction: number;
  by_class: Record<string, ClassReport>;
}

export interface SweepPoint {
  value: number;
  goodput_rps: number;
  slo_attainment_admitted: number;
  rejected_fraction: number;
}

export interface TraceEval {
  trace: string;
  machine: string;
  startedAt: string;
  wallS: number;
  /** CPU seconds the worker used (user + system): its wall time on an otherwise idle core. */
  cpuS?: number;
  settings: EvalSettings;
  capacity: { rateScale: number; goodputRps: number; offeredRps: number; probes: string } | null;
  staticSweep: SweepPoint[];
  staticLimit: number;
  busySweep: SweepPoint[];
  busyPrefillFraction: number;
  rows: EvalRow[];
  classRows: ClassRow[];
}

export type Log = (line: string) => void;

function summarizeFalseRejections(e: FalseRejectionEstimate): FalseRejectionSummary {
  const byKey: Record<string, [number, number]> = {};
  for (const s of e.samples) {
    const entry = byKey[s.rejectionKey] ?? [0, 0];
    entry[0]++;
    if (s.strict) entry[1]++;
    byKey[s.rejectionKey] = entry;
  }
  return {
    rejected: e.rejected,
    sampled: e.samples.length,
    notReproduced: e.notReproduced,
    strict: e.strict,
    net: e.net,
    forcedMet: e.forcedMet,
    byKey,
  };
}

const better = (a: SweepPoint, b: SweepPoint): boolean =>
  a.goodput_rps > b.goodput_rps ||
  (a.goodput_rps === b.goodput_rps && a.slo_attainment_admitted > b.slo_attainment_admitted);

function hasRetryAfter(run: SimRunResult): boolean {
  for (let i = 0; i < run.retryAfterMs.length; i++) if (Number.isFinite(run.retryAfterMs[i])) return true;
  return false;
}

export async function evaluateTrace(
  traceName: string,
  settings: EvalSettings,
  machine: string,
  log: Log,
): Promise<TraceEval> {
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
  const trace = await readTraceFile(`${settings.tracesDir}/${traceName}`);
  const experiment: ExperimentOptions = {
    trace,
    engine: createEngineSetup({}),
    engineCount: 8,
    loadDelayMs: 10,
    dispatchDelayMs: 0,
    staticLimit: 1,
    baselines: {},
    seed: 1,
    workload: {
      seed: 1,
      spreadBucketMs: 3000,
      classMix: { critical: 0, standard: 1, sheddable: 0 },
      ...(settings.durationMs !== undefined ? { durationMs: settings.durationMs } : {}),
    },
  };

  log(`capacity search (light-load reference) … [${elapsed()}]`);
  // The simulator reports progress every ~0.5 % of requests, so a probe's end shows as the count restarting.
  let probes = 0;
  let lastSettled = 0;
  const capacity = findCapacity(
    {
      ...experiment,
      onProgress: (settled) => {
        if (settled < lastSettled) log(`  capacity probe ${++probes} done [${elapsed()}]`);
        lastSettled = settled;
      },
    },
    { reference: "light-load" },
  );
  if (!capacity.found) throw new Error(`${traceName}: capacity not found (${capacity.reason})`);
  const capScale = capacity.rateScale;
  log(`capacity: rate scale ${capScale.toPrecision(4)}, goodput ${capacity.goodputRps} req/s [${elapsed()}]`);
  const report = (run: SimRunResult, scale: number) => summarize(run, scale, capacity.goodputRps);
  const point = (value: number, r: PolicyReport): SweepPoint => ({
    value,
    goodput_rps: r.goodput_rps,
    slo_attainment_admitted: r.slo_attainment_admitted,
    rejected_fraction: r.rejected_fraction,
  });
  const focusScale = capScale * FOCUS_MULTIPLIER;
  const focusRuns = new Map<PolicyName, SimRunResult>();

  // static: swept at 2×, best goodput kept for every load.
  const autoLimit = capacity.inflightP99 + 1;
  const limits = [...new Set(STATIC_SWEEP_FACTORS.map((f) => Math.max(1, Math.round(autoLimit * f))))];
  const staticSweep: SweepPoint[] = [];
  let bestStatic: { point: SweepPoint; run: SimRunResult } | undefined;
  for (const limit of limits) {
    const run = runPolicy({ ...experiment, staticLimit: limit }, "static", focusScale);
    const p = point(limit, report(run, focusScale));
    staticSweep.push(p);
    log(`static sweep: limit ${limit} → goodput ${p.goodput_rps} req/s [${elapsed()}]`);
    if (bestStatic === undefined || better(p, bestStatic.point)) bestStatic = { point: p, run };
  }
  experiment.staticLimit = (bestStatic as { point: SweepPoint }).point.value;
  focusRuns.set("static", (bestStatic as { run: SimRunResult }).run);

  // dynamo-busy: prefill threshold swept at 2×.
  const busySweep: SweepPoint[] = [];
  let bestBusy: { point: SweepPoint; run: SimRunResult } | undefined;
  for (const fraction of BUSY_SWEEP_PREFILL_FRACTIONS) {
    const run = runPolicy(
      {
        ...experiment,
        baselines: {
          dynamoBusy: {
            decodeBlockThreshold: DEFAULT_BASELINE_OPTIONS.dynamoBusy.decodeBlockThreshold,
            prefillBatchFraction: fraction,
          },
        },
      },
      "dynamo-busy",
      focusScale,
    );
    const p = point(fraction, report(run, focusScale));
    busySweep.push(p);
    log(`dynamo-busy sweep: prefill ${fraction} × batch → goodput ${p.goodput_rps} req/s [${elapsed()}]`);
    if (bestBusy === undefined || better(p, bestBusy.point)) bestBusy = { point: p, run };
  }
  const busyPrefillFraction = (bestBusy as { point: SweepPoint }).point.value;
  experiment.baselines = {
    dynamoBusy: {
      decodeBlockThreshold: DEFAULT_BASELINE_OPTIONS.dynamoBusy.decodeBlockThreshold,
      prefillBatchFraction: busyPrefillFraction,
    },
  };
  focusRuns.set("dynamo-busy", (bestBusy as { run: SimRunResult }).run);

  const rows: EvalRow[] = [];
  const total = EVAL_MULTIPLIERS.length * EVAL_POLICIES.length;
  let k = 0;
  for (const multiplier of EVAL_MULTIPLIERS) {
    const scale = capScale * multiplier;
    for (const policy of EVAL_POLICIES) {
      k++;
      const label = `${multiplier}× ${policy} (${k}/${total})`;
      const reused = multiplier === FOCUS_MULTIPLIER ? focusRuns.get(policy) : undefined;
      const run = reused ?? runPolicy(experiment, policy, scale);
      const summary = report(run, scale);
      let retry: EvalRow["retry"] = null;
      if (hasRetryAfter(run)) {
        const retried = report(runPolicy(experiment, policy, scale, { retryRejected: true }), scale);
        retry = {
          retries: retried.retries,
          accuracy: retried.retry_after_accuracy ?? 0,
          metFraction: retried.retry_met_fraction ?? 0,
        };
      }
      let falseRejections: FalseRejectionSummary | null = null;
      if (multiplier === FOCUS_MULTIPLIER && summary.admitted < summary.requests) {
        const estimate = estimateFalseRejections(
          workloadOf(experiment, scale),
          run,
          simulatorOptionsOf(experiment, policy),
          {
            sampleSize: settings.falseRejectionSample,
            warmupMs: settings.falseRejectionWarmupMs,
            horizonMs: settings.falseRejectionHorizonMs,
          },
          (done, wanted) => {
            if (done % 10 === 0 || done === wanted)
              log(`  ${label}: false-rejection sample ${done}/${wanted}`);
          },
        );
        falseRejections = summarizeFalseRejections(estimate);
      }
      rows.push({ ...summary, multiplier, retry, falseRejections });
      log(
        `${label}: goodput ${summary.goodput_rps} req/s, attainment ${(summary.slo_attainment_admitted * 100).toFixed(2)} %, ` +
          `rejected ${(summary.rejected_fraction * 100).toFixed(1)} %` +
          (retry ? `, Retry-After accuracy ${(retry.accuracy * 100).toFixed(1)} %` : "") +
          (falseRejections
            ? `, false rejections ${falseRejections.strict.count}/${falseRejections.sampled} strict`
            : "") +
          ` [${elapsed()}]`,
      );
    }
  }

  const classRows: ClassRow[] = [];
  const mixed: ExperimentOptions = {
    ...experiment,
    workload: { ...experiment.workload, classMix: EVAL_CLASS_MIX },
  };
  for (const policy of EVAL_POLICIES) {
    const r = report(runPolicy(mixed, policy, focusScale), focusScale);
    classRows.push({
      policy,
      goodput_rps: r.goodput_rps,
      slo_attainment_admitted: r.slo_attainment_admitted,
      rejected_fraction: r.rejected_fraction,
      by_class: r.by_class,
    });
    log(`class mix 2× ${policy}: goodput ${r.goodput_rps} req/s [${elapsed()}]`);
  }

  return {
    trace: basename(traceName),
    machine,
    startedAt: new Date(started).toISOString(),
    wallS: Math.round((Date.now() - started) / 1000),
    cpuS: Math.round((process.cpuUsage().user + process.cpuUsage().system) / 1e6),
    settings,
    capacity: {
      rateScale: capScale,
      goodputRps: capacity.goodputRps,
      offeredRps: capacity.offeredRps,
      probes: capacity.probes
        .map((p) => `${Number(p.rateScale.toPrecision(4))}→${(p.attainment * 100).toFixed(2)}%`)
        .join(", "),
    },
    staticSweep,
    staticLimit: experiment.staticLimit,
    busySweep,
    busyPrefillFraction,
    rows,
    classRows,
  };
}
