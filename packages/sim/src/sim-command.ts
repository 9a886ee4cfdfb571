// `sluice sim`: read a trace, optionally find capacity, run every policy at each rate scale, print a table
// or JSON, optionally plot the sweep. Exit codes: 0 ok, 1 failed run (bad trace, stalled model), 2 bad flags.

import { writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { EngineConfigError } from "@sluice/core";
import { type CapacityResult, findCapacity } from "./capacity.js";
import { createEngineSetup } from "./engine-setup.js";
import { CapacityNotFoundError, SimUsageError, TraceFormatError } from "./errors.js";
import { type ExperimentOptions, runPolicy } from "./experiment.js";
import { renderSweepSvg } from "./plot.js";
import { createProgressBar, type ProgressBar, SILENT_PROGRESS } from "./progress.js";
import { readTraceFile } from "./read-trace.js";
import { formatReportTable, type PolicyReport, summarize } from "./report.js";
import { parseSimFlags, SIM_HELP, type SimFlags } from "./sim-flags.js";

export interface CommandIo {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown; isTTY?: boolean };
  env: Record<string, string | undefined>;
}

export interface Command {
  name: string;
  summary: string;
  run(argv: string[], io?: CommandIo): Promise<number>;
}

/** A report row as `--json` prints it: the policy report plus the run's context. */
export interface SimJsonRow extends PolicyReport {
  trace: string;
  engines: number;
  static_limit: number | null;
  seed: number;
  capacity_rate_scale: number | null;
  capacity_goodput_rps: number | null;
}

export interface SimOutput {
  capacity: CapacityResult | undefined;
  /** Malformed trace lines skipped under --skip-malformed. */
  skippedLines: number;
  rows: SimJsonRow[];
}

/** Runs the simulation the flags describe; no printing except progress. */
export async function runSim(flags: SimFlags, progress: ProgressBar = SILENT_PROGRESS): Promise<SimOutput> {
  const trace = await readTraceFile(flags.tracePath, flags.format, { skipMalformed: flags.skipMalformed });
  const engine = createEngineSetup(flags.engine);
  let runLabel = "";
  let runFraction = (f: number): number => f;
  const experiment: ExperimentOptions = {
    trace,
    engine,
    engineCount: flags.engines,
    loadDelayMs: flags.loadDelayMs,
    dispatchDelayMs: flags.dispatchDelayMs,
    staticLimit: typeof flags.staticLimit === "number" ? flags.staticLimit : 1,
    baselines: flags.baselines,
    seed: flags.seed,
    workload: {
      seed: flags.seed,
      spreadBucketMs: flags.spreadBucketMs,
      classMix: flags.classMix,
      ...(flags.durationMs !== undefined ? { durationMs: flags.durationMs } : {}),
    },
    onProgress: (settled, total) => progress.update(runFraction(settled / total), runLabel),
  };

  let capacity: CapacityResult | undefined;
  if (flags.findCapacity) {
    let probe = 0;
    runFraction = (f) => f;
    const probing = { ...experiment };
    probing.onProgress = (settled, total) => {
      if (settled === total) probe++;
      progress.update(settled / total, `capacity probe ${probe + 1}`);
    };
    capacity = findCapacity(probing, {
      targetAttainment: flags.capacityTarget,
      startScale: flags.rateScale,
      reference: flags.capacityReference,
    });
  }
  if (flags.staticLimit === "auto") {
    if (!capacity?.found) {
      throw new CapacityNotFoundError(
        "--static-limit auto: capacity was not found, so there is nothing to size the limit from",
      );
    }
    // The smallest limit that rejects at most ~1 % of arrivals at capacity: one above the p99 in-flight count
    // arrivals saw when 'none' ran at capacity.
    experiment.staticLimit = capacity.inflightP99 + 1;
  }
  const base = capacity?.found ? capacity.rateScale : flags.rateScale;
  const scales = (flags.sweep ?? [1]).map((m) => base * m);
  const capacityGoodput = capacity?.found ? capacity.goodputRps : undefined;
  const rows: SimJsonRow[] = [];
  const totalRuns = scales.length * flags.policies.length;
  let runIndex = 0;
  for (const scale of scales) {
    for (const policy of flags.policies) {
      runLabel = `${policy} × ${Number(scale.toPrecision(4))} (run ${runIndex + 1}/${totalRuns})`;
      const i = runIndex;
      runFraction = (f) => (i + f) / totalRuns;
      const report = summarize(runPolicy(experiment, policy, scale), scale, capacityGoodput);
      rows.push({
        ...report,
        trace: basename(trace.source),
        engines: flags.engines,
        static_limit: policy === "static" ? experiment.staticLimit : null,
        seed: flags.seed,
        capacity_rate_scale: capacity?.found ? capacity.rateScale : null,
        capacity_goodput_rps: capacityGoodput ?? null,
      });
      runIndex++;
    }
  }
  progress.done();
  return { capacity, rows, skippedLines: trace.skippedLines };
}

function describeCapacity(capacity: CapacityResult): string {
  const probes = capacity.probes
    .map((p) => `${Number(p.rateScale.toPrecision(4))}→${(p.attainment * 100).toFixed(2)}%`)
    .join(", ");
  const required = `${(capacity.requiredAttainment * 100).toFixed(2)}%`;
  const light = capacity.lightLoad
    ? ` (light-load reference: 'none' attains ${(capacity.lightLoad.attainment * 100).toFixed(2)}% at rate scale ` +
      `${Number(capacity.lightLoad.rateScale.toPrecision(4))})`
    : "";
  if (capacity.found) {
    return (
      `capacity: rate scale ${Number(capacity.rateScale.toPrecision(4))} (${capacity.offeredRps} req/s offered, ` +
      `${capacity.goodputRps} req/s goodput) is the largest at which 'none' attains ≥ ${required}${light} ` +
      `[probes: ${probes}]\n`
    );
  }
  return `capacity: not found (${capacity.reason}, required ${required}${light}) [probes: ${probes}]\n`;
}

async function run(argv: string[], io: CommandIo = processIo()): Promise<number> {
  let flags: SimFlags;
  try {
    flags = parseSimFlags(argv);
  } catch (error) {
    if (error instanceof SimUsageError) {
      io.stderr.write(`sluice sim: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (flags.help) {
    io.stdout.write(SIM_HELP);
    return 0;
  }
  const progress =
    io.stderr.isTTY === true || flags.progress ? createProgressBar(io.stderr) : SILENT_PROGRESS;
  let output: SimOutput;
  try {
    output = await runSim(flags, progress);
  } catch (error) {
    progress.done();
    if (error instanceof SimUsageError || error instanceof EngineConfigError) {
      io.stderr.write(`sluice sim: ${error.message}\n`);
      return 2;
    }
    if (error instanceof TraceFormatError || error instanceof CapacityNotFoundError) {
      io.stderr.write(`sluice sim: ${error.message}\n`);
      return 1;
    }
    io.stderr.write(
      `sluice sim: simulation failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return 1;
  }
  if (output.skippedLines > 0) {
    io.stderr.write(`sluice sim: skipped ${output.skippedLines} malformed line(s) of ${flags.tracePath}\n`);
  }
  if (flags.json) {
    io.stdout.write(`${JSON.stringify(output.rows, null, 2)}\n`);
  } else {
    if (output.capacity) io.stdout.write(describeCapacity(output.capacity));
    io.stdout.write(formatReportTable(output.rows));
  }
  if (output.capacity && flags.json) io.stderr.write(describeCapacity(output.capacity));
  if (flags.plotPath !== undefined) {
    const svg = renderSweepSvg(output.rows, {
      title: basename(flags.tracePath),
      ...(output.capacity?.found ? { capacityGoodputRps: output.capacity.goodputRps } : {}),
    });
    try {
      await writeFile(flags.plotPath, svg);
    } catch (error) {
      io.stderr.write(`sluice sim: cannot write --plot ${flags.plotPath}: ${(error as Error).message}\n`);
      return 1;
    }
  }
  return 0;
}

function processIo(): CommandIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

export const simCommand: Command = {
  name: "sim",
  summary: "replay a request trace through simulated engines in virtual time and report goodput per policy",
  run,
};
