// `sluice replay`: read a trace, replay it in real time against the target(s), print the `sluice sim`
// report (table or JSON) and the client-side facts. Exit codes: 0 ok, 1 failed run or client bottleneck
// (goodput withheld), 2 bad flags.

import {
  type Command,
  type CommandIo,
  formatReportTable,
  readTraceFile,
  SimUsageError,
  TraceFormatError,
} from "@sluice/sim";
import { ReplayUsageError } from "./errors.js";
import type { ReplayProgress } from "./options.js";
import { parseReplayFlags, REPLAY_HELP, type ReplayFlags } from "./replay-flags.js";
import { describeClientStats, summarizeReplay } from "./replay-report.js";
import { runReplay } from "./replay-runner.js";

function progressLine(p: ReplayProgress): string {
  return (
    `replay: trace ${(p.traceMs / 1000).toFixed(1)} s, sent ${p.sent}/${p.total}, in flight ${p.inFlight}, ` +
    `done ${p.completed}, rejected ${p.rejected}, failed ${p.failed}, last send lag ${p.lastLagMs.toFixed(1)} ms\n`
  );
}

async function run(argv: string[], io: CommandIo = processIo()): Promise<number> {
  let flags: ReplayFlags;
  try {
    flags = parseReplayFlags(argv);
  } catch (error) {
    if (error instanceof ReplayUsageError) {
      io.stderr.write(`sluice replay: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (flags.help) {
    io.stdout.write(REPLAY_HELP);
    return 0;
  }
  const showProgress = io.stderr.isTTY === true || flags.progress;
  let report: ReturnType<typeof summarizeReplay>;
  try {
    const trace = await readTraceFile(flags.tracePath, flags.format);
    const measurements = await runReplay({
      trace,
      targets: flags.targets,
      rateScale: flags.rateScale,
      ...(flags.durationMs !== undefined ? { durationMs: flags.durationMs } : {}),
      spreadBucketMs: flags.spreadBucketMs,
      seed: flags.seed,
      classMix: flags.classMix,
      speedupFactor: flags.speedupFactor,
      concurrencyLimit: flags.concurrencyLimit,
      model: flags.model,
      requestTimeoutWallMs: flags.requestTimeoutWallMs,
      maxClientLagMs: flags.maxClientLagMs,
      ...(showProgress ? { onProgress: (p: ReplayProgress) => io.stderr.write(progressLine(p)) } : {}),
    });
    report = summarizeReplay(measurements);
  } catch (error) {
    if (error instanceof ReplayUsageError || error instanceof SimUsageError) {
      io.stderr.write(`sluice replay: ${error.message}\n`);
      return 2;
    }
    if (error instanceof TraceFormatError) {
      io.stderr.write(`sluice replay: ${error.message}\n`);
      return 1;
    }
    io.stderr.write(
      `sluice replay: replay failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return 1;
  }
  if (flags.json) {
    io.stdout.write(`${JSON.stringify([report.row], null, 2)}\n`);
    io.stderr.write(describeClientStats(report.client));
  } else {
    // The shared table formats numbers; a withheld goodput (null) is shown as "-".
    const table = formatReportTable([
      { ...report.row, goodput_rps: report.row.goodput_rps ?? Number.NaN },
    ]).replace(/(\s)NaN(\s)/, "$1  -$2");
    io.stdout.write(table);
    io.stdout.write(describeClientStats(report.client));
  }
  return report.client.client_bottleneck ? 1 : 0;
}

function processIo(): CommandIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

export const replayCommand: Command = {
  name: "replay",
  summary: "replay a request trace in real time against a running stack and report as 'sluice sim' does",
  run,
};
