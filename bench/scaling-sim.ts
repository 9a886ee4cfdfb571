// Scaling of the simulator (issue 8 item 4): wall time vs trace length, on the first 1/16, 1/8, …, all
// records of a shared trace (same engines and workload options as bench/sim-speed.ts), for policy
// `none` and the full system `sluice-l1l2l3`. Median of `--repeat` runs per point.
// Writes the `scaling-sim` section of bench/RESULTS.md and bench/scaling-sim.svg.
//
// Run: node --conditions=sluice-src --import tsx bench/scaling-sim.ts [--trace FILE] [--fractions 16,8,4,2,1]
//      [--policies none,sluice-l1l2l3] [--repeat 1] [--engines 8] [--quick]
// Each policy first runs the smallest slice once untimed (JIT warm-up), so the small slices are not
// charged with compilation.

import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  createEngineSetup,
  DEFAULT_CLASS_MIX,
  POLICY_NAMES,
  type PolicyName,
  readTraceFile,
  runPolicy,
  type Trace,
} from "@sluice/sim";
import { cpuMicros, median } from "./ingress-bench-common.js";
import { describeGrowth, renderLinePlotSvg } from "./plot-lines.js";
import { machineDescription, measuredAt, writeResultsSection } from "./results-section.js";
import { TRACES_DIR } from "./sim-common.js";

const { values } = parseArgs({
  options: {
    trace: { type: "string", default: `${TRACES_DIR}/mooncake_conversation.jsonl` },
    fractions: { type: "string", default: "16,8,4,2,1" },
    policies: { type: "string", default: "none,sluice-l1l2l3" },
    repeat: { type: "string", default: "1" },
    engines: { type: "string", default: "8" },
    quick: { type: "boolean", default: false },
  },
});
const quick = values.quick === true;
const divisors = (quick ? "16,8,4" : (values.fractions as string)).split(",").map(Number);
const policies = (values.policies as string).split(",") as PolicyName[];
const repeat = quick ? 1 : Number(values.repeat);
const engines = Number(values.engines);
if (!divisors.every((d) => Number.isInteger(d) && d >= 1)) {
  console.error("--fractions: integers ≥ 1 (the trace is cut to its first 1/d of records)");
  process.exit(2);
}
const unknown = policies.filter((p) => !(POLICY_NAMES as readonly string[]).includes(p));
if (unknown.length > 0) {
  console.error(`unknown policies ${unknown.join(", ")}; one of ${POLICY_NAMES.join(", ")}`);
  process.exit(2);
}
if (!Number.isInteger(repeat) || repeat < 1 || !Number.isInteger(engines) || engines < 1) {
  console.error("--repeat and --engines must be integers ≥ 1");
  process.exit(2);
}

const full = await readTraceFile(values.trace as string);
const experimentOf = (trace: Trace) => ({
  trace,
  engine: createEngineSetup(),
  engineCount: engines,
  loadDelayMs: 10,
  dispatchDelayMs: 0,
  staticLimit: 256,
  workload: { seed: 1, spreadBucketMs: 3000, classMix: DEFAULT_CLASS_MIX },
});

interface Point {
  policy: PolicyName;
  requests: number;
  virtualS: number;
  wallMs: number;
  /** CPU time of the run (GC included), ms: what the wall time would be on an idle machine. */
  cpuMs: number;
}
const points: Point[] = [];
console.log(`machine: ${machineDescription()}`);
console.log(`trace ${values.trace}: ${full.records.length} records`);
const smallest = Math.ceil(full.records.length / Math.max(...divisors));
for (const policy of policies) {
  runPolicy(experimentOf({ ...full, records: full.records.slice(0, smallest) }), policy, 1);
  for (const d of [...divisors].sort((a, b) => b - a)) {
    const records = full.records.slice(0, Math.ceil(full.records.length / d));
    const experiment = experimentOf({ ...full, records });
    const walls: number[] = [];
    const cpus: number[] = [];
    let virtualMs = 0;
    for (let r = 0; r < repeat; r++) {
      const t0 = performance.now();
      const c0 = cpuMicros();
      const result = runPolicy(experiment, policy, 1);
      cpus.push((cpuMicros() - c0) / 1000);
      walls.push(performance.now() - t0);
      virtualMs = result.windowMs;
    }
    const point = {
      policy,
      requests: records.length,
      virtualS: virtualMs / 1000,
      wallMs: median(walls),
      cpuMs: median(cpus),
    };
    points.push(point);
    console.log(
      `${policy}: ${records.length} requests (${point.virtualS.toFixed(0)} s of trace) → ${point.wallMs.toFixed(0)} ms wall, ${point.cpuMs.toFixed(0)} ms CPU (${((point.cpuMs * 1000) / records.length).toFixed(1)} µs CPU/request)`,
    );
  }
}

const rows = points.map(
  (p) =>
    `| ${p.policy} | ${p.requests} | ${p.virtualS.toFixed(0)} | ${p.wallMs.toFixed(0)} | ${p.cpuMs.toFixed(0)} | ${((p.cpuMs * 1000) / p.requests).toFixed(1)} | ${(p.virtualS / (p.wallMs / 1000)).toFixed(0)}× |`,
);
const growthLines = policies.map(
  (policy) =>
    `- \`${policy}\`: CPU time ${describeGrowth(points.filter((p) => p.policy === policy).map((p) => [p.requests, p.cpuMs]))} in trace length (requests).`,
);
writeFileSync(
  new URL("./scaling-sim.svg", import.meta.url),
  renderLinePlotSvg({
    title: "simulator CPU time vs trace length",
    xLabel: "requests in the trace slice",
    yLabel: "CPU time, ms",
    logX: true,
    logY: true,
    series: policies.map((policy) => ({
      name: policy,
      points: points.filter((p) => p.policy === policy).map((p) => [p.requests, p.cpuMs] as const),
    })),
  }),
);

const markdown = `## Scaling: simulator time vs trace length (issue 8)

The first 1/${[...divisors].sort((a, b) => b - a).join(", 1/")} of the records of \`${values.trace}\`, ${engines} default
engines, rate scale 1, workload as bench/sim-speed.ts; median wall and CPU time of ${repeat} run(s) per point
(one process, including workload building, after one untimed warm-up run of the smallest slice). Growth is judged on CPU time, which other processes on a shared
machine do not inflate.

| policy | requests | trace s | wall ms | CPU ms | CPU µs per request | speed-up over real time (wall) |
|---|---|---|---|---|---|---|
${rows.join("\n")}

Growth:
${growthLines.join("\n")}

![simulator scaling](scaling-sim.svg)

Machine: ${machineDescription()}. Command: \`node --conditions=sluice-src --import tsx bench/scaling-sim.ts${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(" ")}` : ""}\` — measured ${measuredAt()}.`;
console.log(`\n${markdown}`);
writeResultsSection("scaling-sim", markdown);
