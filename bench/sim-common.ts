// Shared by the simulator benchmarks: machine description and the RESULTS.md section writer.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";

export const TRACES_DIR = process.env.SLUICE_TRACES_DIR ?? "/work/shared/traces";
export const RESULTS_FILE = new URL("./RESULTS.md", import.meta.url).pathname;
const BEGIN = "<!-- sim:begin -->";
const END = "<!-- sim:end -->";

export function machine(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model ?? "unknown CPU"}, Node ${process.version}, ${process.platform}, load average ${loadavg()[0]?.toFixed(1)} when measured`;
}

/** Replaces the simulator section of bench/RESULTS.md (between its markers), creating the file if absent. */
export function writeSimSection(markdown: string): void {
  const section = `${BEGIN}\n${markdown.trim()}\n${END}`;
  const current = existsSync(RESULTS_FILE) ? readFileSync(RESULTS_FILE, "utf8") : "# Benchmark results\n";
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  const next =
    start >= 0 && end > start
      ? `${current.slice(0, start)}${section}${current.slice(end + END.length)}`
      : `${current.trimEnd()}\n\n${section}\n`;
  writeFileSync(RESULTS_FILE, next);
}
