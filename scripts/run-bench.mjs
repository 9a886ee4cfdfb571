#!/usr/bin/env node
// `npm run bench`: every benchmark in bench/ in sequence, with progress. `npm run bench:report` (= `report`):
// the evaluation report only. Helper modules (shared code, notes) are not benchmarks and are skipped.
// Usage: node scripts/run-bench.mjs [report [FLAGS…] | NAME… | --except NAME,…]   (NAME = a bench file without .ts)
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const benchDir = join(root, "bench");
const files = readdirSync(benchDir).filter((f) => f.endsWith(".ts"));
const sources = new Map(files.map((f) => [f, readFileSync(join(benchDir, f), "utf8")]));

/**
 * A helper is not a benchmark: shared modules and notes by name, plus every file another bench file imports
 * (`from "./x.js"`) or starts as a child process (`"x.ts"`, `…}bench/x.ts`).
 */
function isHelper(file) {
  if (/(-common|-lib|-notes)\.ts$/.test(file) || file === "results-section.ts" || file === "plot-lines.ts") {
    return true;
  }
  const name = file.slice(0, -3);
  const used = [`"./${name}.js"`, `"${name}.ts"`, `}bench/${name}.ts`];
  return [...sources].some(([other, text]) => other !== file && used.some((u) => text.includes(u)));
}

const all = files.filter((f) => !isHelper(f)).sort();
const args = process.argv.slice(2);
let selected;
let forwarded = [];
const exceptAt = args.indexOf("--except");
if (exceptAt >= 0) {
  const except = (args[exceptAt + 1] ?? "").split(",").map((a) => (a.endsWith(".ts") ? a : `${a}.ts`));
  selected = all.filter((f) => !except.includes(f));
} else if (args.length === 0) selected = all;
else if (args[0] === "report") {
  // `npm run bench:report -- --quick`: flags after `report` go to the report script.
  selected = ["eval-report.ts"];
  forwarded = args.slice(1);
} else {
  selected = args.map((a) => (a.endsWith(".ts") ? a : `${a}.ts`));
  const unknown = selected.filter((f) => !all.includes(f));
  if (unknown.length > 0) {
    process.stderr.write(`run-bench: unknown benchmark(s) ${unknown.join(", ")}; known: ${all.join(", ")}\n`);
    process.exit(2);
  }
}
process.stderr.write(`[bench] ${selected.length} benchmark(s): ${selected.join(", ")}\n`);

const failed = [];
const t0 = Date.now();
selected.forEach((file, i) => {
  process.stderr.write(
    `\n[bench ${i + 1}/${selected.length}] ${file} (${((Date.now() - t0) / 1000).toFixed(0)} s elapsed)\n`,
  );
  const started = Date.now();
  const r = spawnSync(
    process.execPath,
    ["--conditions=sluice-src", "--import", "tsx", join(benchDir, file), ...forwarded],
    {
      cwd: root,
      stdio: "inherit",
    },
  );
  const took = ((Date.now() - started) / 1000).toFixed(0);
  if (r.status !== 0) {
    failed.push(file);
    process.stderr.write(`[bench] ${file} FAILED (exit ${r.status ?? r.signal}) after ${took} s\n`);
  } else process.stderr.write(`[bench] ${file} done in ${took} s\n`);
});
process.stderr.write(
  `\n[bench] ${selected.length - failed.length}/${selected.length} benchmarks succeeded in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
);
if (failed.length > 0) {
  process.stderr.write(`[bench] failed: ${failed.join(", ")}\n`);
  process.exit(1);
}
