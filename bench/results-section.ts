// Shared by every benchmark: the machine description and the writer of one marked section of
// bench/RESULTS.md. Each benchmark owns the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->`,
// so benchmarks run separately (or by `npm run bench:report`) never overwrite each other's figures.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";

export const RESULTS_FILE = new URL("./RESULTS.md", import.meta.url).pathname;

/** "2 × AMD EPYC …, Node v20…, linux, load average 1.2 when measured" — printed with every figure. */
export function machineDescription(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model ?? "unknown CPU"}, Node ${process.version}, ${process.platform}, load average ${loadavg()[0]?.toFixed(1)} when measured`;
}

/** UTC timestamp to the minute, e.g. "2026-11-25 14:31 UTC". */
export function measuredAt(date: Date = new Date()): string {
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/**
 * Replaces the section `name` of bench/RESULTS.md (between its markers), appending it when absent.
 * Written to a temporary file and renamed so a reader never sees half a file.
 */
export function writeResultsSection(name: string, markdown: string): void {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`section name must be kebab-case, got "${name}"`);
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const section = `${begin}\n${markdown.trim()}\n${end}`;
  const current = existsSync(RESULTS_FILE) ? readFileSync(RESULTS_FILE, "utf8") : "# Benchmark results\n";
  const start = current.indexOf(begin);
  const stop = current.indexOf(end);
  const next =
    start >= 0 && stop > start
      ? `${current.slice(0, start)}${section}${current.slice(stop + end.length)}`
      : `${current.trimEnd()}\n\n${section}\n`;
  const tmp = `${RESULTS_FILE}.${process.pid}.tmp`;
  writeFileSync(tmp, next);
  renameSync(tmp, RESULTS_FILE);
}
