// Simulator speed: one hour of the Mooncake conversation trace (12 031 requests) on 8 default engines,
// policy `none`, rate scale 1. Prints wall time and speed-up over real time (target ≥ 200×).
// Run: node --conditions=sluice-src --import tsx bench/sim-speed.ts [--trace FILE] [--repeat N] [--engines N]
// Profile: node --conditions=sluice-src --cpu-prof --cpu-prof-dir=bench/out --import tsx bench/sim-speed.ts
import { parseArgs } from "node:util";
import { TRACES_DIR } from "./sim-common.js";
import { measureSimSpeed } from "./sim-speed-lib.js";

const { values } = parseArgs({
  options: {
    trace: { type: "string", default: `${TRACES_DIR}/mooncake_conversation.jsonl` },
    repeat: { type: "string", default: "3" },
    engines: { type: "string", default: "8" },
  },
});
const repeat = Number(values.repeat);
const engines = Number(values.engines);
if (!Number.isInteger(repeat) || repeat < 1 || !Number.isInteger(engines) || engines < 1) {
  console.error("--repeat and --engines must be integers ≥ 1");
  process.exit(2);
}
const speed = await measureSimSpeed({ tracePath: values.trace, repeat, engines });
console.log(JSON.stringify(speed));
