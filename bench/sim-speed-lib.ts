// The speed measurement shared by bench/sim-speed.ts and bench/sim-report.ts.
import { createEngineSetup, DEFAULT_CLASS_MIX, readTraceFile, runPolicy } from "@sluice/sim";

export interface SimSpeed {
  trace: string;
  requests: number;
  engines: number;
  virtual_s: number;
  wall_ms_runs: number[];
  wall_ms_median: number;
  speedup_median: number;
}

export async function measureSimSpeed(o: {
  tracePath: string;
  repeat: number;
  engines: number;
}): Promise<SimSpeed> {
  const trace = await readTraceFile(o.tracePath);
  const experiment = {
    trace,
    engine: createEngineSetup(),
    engineCount: o.engines,
    loadDelayMs: 10,
    dispatchDelayMs: 0,
    staticLimit: 256,
    workload: { seed: 1, spreadBucketMs: 3000, classMix: DEFAULT_CLASS_MIX },
  };
  const walls: number[] = [];
  let virtualMs = 0;
  for (let i = 0; i < o.repeat; i++) {
    const t0 = performance.now();
    const result = runPolicy(experiment, "none", 1);
    walls.push(performance.now() - t0);
    virtualMs = result.windowMs;
  }
  const sorted = [...walls].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] as number;
  return {
    trace: o.tracePath,
    requests: trace.records.length,
    engines: o.engines,
    virtual_s: Math.round(virtualMs) / 1000,
    wall_ms_runs: walls.map((w) => Math.round(w)),
    wall_ms_median: Math.round(median),
    speedup_median: Math.round(virtualMs / median),
  };
}
