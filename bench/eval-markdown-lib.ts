// Renders the `eval` section of bench/RESULTS.md from the per-trace evaluations (bench/eval-trace-lib.ts).
import { type PolicyReport, REQUEST_CLASSES } from "@sluice/sim";
import {
  BUSY_SWEEP_PREFILL_FRACTIONS,
  EVAL_CLASS_MIX,
  EVAL_MULTIPLIERS,
  type EvalRow,
  type FalseRejectionSummary,
  FOCUS_MULTIPLIER,
  STATIC_SWEEP_FACTORS,
  type TraceEval,
} from "./eval-trace-lib.js";

const BASELINES = ["none", "static", "dynamo-busy", "dynamo-ema"];
const FULL = "sluice-l1l2l3";

const pct = (v: number | null | undefined, digits = 1): string =>
  v === null || v === undefined || !Number.isFinite(v) ? "–" : `${(v * 100).toFixed(digits)}%`;

function levelCell(r: PolicyReport, level: string): string {
  const f = r.rejected_by_level[level] ?? 0;
  return f === 0 ? "–" : pct(f, 2);
}

function falseRejectionCell(f: FalseRejectionSummary | null, multiplier: number, r: EvalRow): string {
  if (multiplier !== FOCUS_MULTIPLIER) return "";
  if (f === null) return r.rejected_fraction === 0 ? "no rejections" : "–";
  if (f.sampled === 0) return `0 of ${f.rejected} reproduced`;
  const [lo, hi] = f.strict.ci95;
  return (
    `${f.strict.count}/${f.sampled} = ${pct(f.strict.rate, 0)} [${pct(lo, 0)}–${pct(hi, 0)}]; ` +
    `net ${f.net.count}/${f.sampled}; met ${f.forcedMet.count}/${f.sampled}`
  );
}

function retryCell(r: EvalRow): string {
  if (r.retry === null) return "–";
  const p50 = r.retry_after_p50_ms === null ? "" : `, median Retry-After ${r.retry_after_p50_ms} ms`;
  return `${pct(r.retry.accuracy)} of ${r.retry.retries} (met ${pct(r.retry.metFraction)}${p50})`;
}

function mainTable(t: TraceEval): string[] {
  const lines = [
    "| × capacity | policy | offered rps | goodput rps | goodput / max | goodput / offered | SLO attainment (admitted) | rejected | L1 | L2 | L3 | reasons | false rejections at 2× (strict [95 % CI]; net; forced met) | wasted prefill tokens (% of computed) | Retry-After accuracy of N retries (retries that met SLO; median Retry-After) |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of t.rows) {
    const reasons = Object.entries(r.rejected_by)
      .map(([k, f]) => `${k} ${pct(f, 2)}`)
      .join(", ");
    lines.push(
      `| ${r.multiplier}× | ${r.policy} | ${r.offered_rps.toFixed(2)} | ${r.goodput_rps.toFixed(2)} | ` +
        `${pct(r.goodput_vs_capacity)} | ${pct(r.goodput_rps / r.offered_rps)} | ${pct(r.slo_attainment_admitted, 2)} | ` +
        `${pct(r.rejected_fraction)} | ${levelCell(r, "L1")} | ${levelCell(r, "L2")} | ${levelCell(r, "L3")} | ` +
        `${reasons || "–"} | ${falseRejectionCell(r.falseRejections, r.multiplier, r)} | ` +
        `${r.wasted_prefill_tokens} (${pct(r.computed_prefill_tokens > 0 ? r.wasted_prefill_tokens / r.computed_prefill_tokens : 0)})${r.preemptions > 0 ? `, ${r.preemptions} preemptions` : ""} | ${retryCell(r)} |`,
    );
  }
  return lines;
}

function classTable(t: TraceEval): string[] {
  const header = REQUEST_CLASSES.map((c) => `${c}: rejected / attainment`).join(" | ");
  const lines = [
    `| policy | goodput rps | attainment (admitted) | ${header} | sheddable rejected most |`,
    `|---|---|---|${REQUEST_CLASSES.map(() => "---").join("|")}|---|`,
  ];
  for (const c of t.classRows) {
    const cells = REQUEST_CLASSES.map((name) => {
      const k = c.by_class[name];
      return k === undefined ? "–" : `${pct(k.rejected_fraction)} / ${pct(k.slo_attainment_admitted, 2)}`;
    });
    const rej = (name: string) => c.by_class[name]?.rejected_fraction ?? 0;
    const anyRejected = REQUEST_CLASSES.some((n) => rej(n) > 0);
    // Shed first = sheddable loses the largest share. Critical may still lose more than standard: its
    // tighter objectives (1 s TTFT) make more of its requests unservable in time, which is not shedding.
    const ordered = rej("sheddable") >= Math.max(rej("standard"), rej("critical"));
    lines.push(
      `| ${c.policy} | ${c.goodput_rps.toFixed(2)} | ${pct(c.slo_attainment_admitted, 2)} | ${cells.join(" | ")} | ${anyRejected ? (ordered ? "yes" : "**no**") : "nothing rejected"} |`,
    );
  }
  return lines;
}

function sweepLine(name: string, unit: string, points: TraceEval["staticSweep"], chosen: number): string {
  const parts = points.map(
    (p) =>
      `${p.value}${unit} → ${p.goodput_rps.toFixed(2)} rps, ${pct(p.slo_attainment_admitted, 2)}, rejected ${pct(p.rejected_fraction)}`,
  );
  return `${name} swept at ${FOCUS_MULTIPLIER}× (goodput, attainment, rejected): ${parts.join("; ")}. **Chosen: ${chosen}${unit}.**`;
}

function traceSection(t: TraceEval, plotFile: string): string {
  const cap = t.capacity;
  return [
    `### ${t.trace}`,
    "",
    `${t.settings.durationMs !== undefined ? `**Slice: only the first ${t.settings.durationMs / 60_000} min of the trace, ${t.settings.falseRejectionSample} sampled rejections (\`--quick\`).** ` : ""}Measured ${t.startedAt.slice(0, 16).replace("T", " ")} UTC, wall ${t.wallS} s in its own process${t.cpuS !== undefined ? ` (${t.cpuS} CPU s)` : ""}; ${t.machine}.`,
    "",
    cap === null
      ? "Capacity: not found."
      : `**Capacity:** rate scale ${cap.rateScale.toPrecision(4)} (${cap.offeredRps} req/s offered); max-sustainable goodput (\`none\` at capacity) ${cap.goodputRps} req/s [probes: ${cap.probes}].`,
    "",
    sweepLine("`static` limit", "", t.staticSweep, t.staticLimit),
    "",
    sweepLine(
      "`dynamo-busy` prefill threshold",
      " × max_num_batched_tokens",
      t.busySweep,
      t.busyPrefillFraction,
    ),
    "",
    ...mainTable(t),
    "",
    `![${t.trace}: goodput and SLO attainment vs offered load](${plotFile})`,
    "",
    `Class mix at ${FOCUS_MULTIPLIER}× (${REQUEST_CLASSES.map((c) => `${c} ${EVAL_CLASS_MIX[c] * 100} %`).join(" / ")}, seeded; objectives per class from core's DEFAULT_POLICY):`,
    "",
    ...classTable(t),
  ].join("\n");
}

function targetRows(evals: readonly TraceEval[]): string[] {
  const lines = [
    `| trace | ${FULL} goodput at 2× | goodput / max-sustainable (≥ 90 %) | goodput / offered | SLO attainment of admitted (≥ 99 %) | best baseline at 2× (goodput) | ahead of every baseline | all three met |`,
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const t of evals) {
    const at2 = t.rows.filter((r) => r.multiplier === FOCUS_MULTIPLIER);
    const full = at2.find((r) => r.policy === FULL);
    if (full === undefined) continue;
    const baselines = at2.filter((r) => BASELINES.includes(r.policy));
    const best = baselines.reduce((a, b) => (b.goodput_rps > a.goodput_rps ? b : a));
    const goodputOk = (full.goodput_vs_capacity ?? 0) >= 0.9;
    const sloOk = full.slo_attainment_admitted >= 0.99;
    const ahead = baselines.every((b) => full.goodput_rps > b.goodput_rps);
    lines.push(
      `| ${t.trace} | ${full.goodput_rps.toFixed(2)} | ${pct(full.goodput_vs_capacity)} ${goodputOk ? "yes" : "**no**"} | ` +
        `${pct(full.goodput_rps / full.offered_rps)} | ${pct(full.slo_attainment_admitted, 2)} ${sloOk ? "yes" : "**no**"} | ` +
        `${best.policy} (${best.goodput_rps.toFixed(2)}) | ${ahead ? "yes" : "**no**"} | ${goodputOk && sloOk && ahead ? "yes" : "**no**"} |`,
    );
  }
  return lines;
}

export function renderEvalSection(
  evals: readonly TraceEval[],
  context: {
    command: string;
    /** Wall time of the whole command; undefined when the section was only rebuilt (`--report`). */
    wallS: number | undefined;
    machine: string;
    measuredAt: string;
    plotFile: (t: TraceEval) => string;
  },
  notes: string,
): string {
  // The header states the full-run settings when there is a full run; quick slices say so in their section.
  const s = (evals.find((t) => t.settings.durationMs === undefined) ?? evals[0])?.settings;
  return [
    "## Evaluation report (`npm run bench:report`)",
    "",
    `Command: \`${context.command}\` — ${context.wallS === undefined ? `section rebuilt ${context.measuredAt} from the stored per-trace results (each trace gives its own date, wall time and load)` : `measured ${context.measuredAt}, wall ${context.wallS} s for all traces`} (one child`,
    `process per trace, two at a time); ${context.machine}. Methodology and every metric's definition:`,
    "[docs/evaluation.md](../docs/evaluation.md). Simulator defaults as in the sections above: 8 engines, Dynamo",
    "mocker step model, 16384 × 64-token KV blocks, max_num_batched_tokens 8192, load-snapshot and KV-event delay",
    "10 ms, seed 1, requests `standard` (TTFT 2 s, mean ITL 100 ms) except in the class-mix tables. Capacity =",
    "largest rate scale at which `none` attains 99 % of its light-load attainment (`--capacity-reference",
    "light-load`); loads are multiples of it. Max-sustainable goodput = goodput of `none` at capacity.",
    `Baselines: \`static\` limit swept over ${STATIC_SWEEP_FACTORS.join(", ")} × (1 + p99 in-flight at capacity) and`,
    `\`dynamo-busy\` prefill threshold over ${BUSY_SWEEP_PREFILL_FRACTIONS.join(", ")} × max_num_batched_tokens (decode`,
    "threshold 0.85), each at 2× for the best goodput, then fixed for every load; `dynamo-ema` at τ = 10 s with",
    "the standard objectives as thresholds.",
    s === undefined
      ? ""
      : `False rejections: ${s.falseRejectionSample} sampled rejections per (trace, policy) at 2× (unless a trace says otherwise), each re-simulated on the arrivals ${s.falseRejectionWarmupMs / 1000} s before to ${s.falseRejectionHorizonMs / 1000} s after it, with and without force-admitting it; "strict" = it met its objectives and no other request's outcome got worse, "net" = it met them and the others' met count did not fall; 95 % Wilson intervals. Retry-After accuracy: a second run in which every rejection with a Retry-After arrives once more after it; fraction of those retries admitted by every level ("–": the policy gives no Retry-After or rejects nothing). Wasted prefill: prompt tokens of admitted requests that then missed an objective (an upper bound: cache hits included), and its share of all prefill computed.${evals.every((t) => t.settings.durationMs !== undefined) ? " **Quick run: only the first minutes of each trace (see each trace).**" : ""}`,
    "",
    `### Targets (full system \`${FULL}\` at ${FOCUS_MULTIPLIER}× capacity)`,
    "",
    ...targetRows(evals),
    "",
    ...evals.map((t) => traceSection(t, context.plotFile(t))),
    "",
    notes,
  ].join("\n");
}

export { EVAL_MULTIPLIERS };
