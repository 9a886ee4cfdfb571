// Shared by the simulator benchmarks: trace directory, machine description and the writer of the `sim`
// section of bench/RESULTS.md (both delegate to bench/results-section.ts, the one writer of RESULTS.md).
import { machineDescription, RESULTS_FILE, writeResultsSection } from "./results-section.js";

export const TRACES_DIR = process.env.SLUICE_TRACES_DIR ?? "/work/shared/traces";
export { RESULTS_FILE };

export function machine(): string {
  return machineDescription();
}

/** Replaces the simulator section (`sim`) of bench/RESULTS.md, creating the file if absent. */
export function writeSimSection(markdown: string): void {
  writeResultsSection("sim", markdown);
}
