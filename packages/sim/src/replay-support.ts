// What `sluice replay` (@sluice/replay) needs to feed client-side measurements through this package's
// report unchanged: the per-token latency histogram `summarize` reads, and the `--duration` syntax, so
// both commands accept the same slices. Added beside the simulator rather than edited into it.

export { LatencyHistogram } from "./latency-histogram.js";
export { parseDurationMs } from "./sim-flags.js";
