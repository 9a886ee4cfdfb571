#!/usr/bin/env node
// Runs every *.spec.ts (unit, beside the code) and test/**/*.test.ts (cross-process) with
// node:test, straight from the TypeScript sources (the `sluice-src` export condition + tsx).
// Usage: node scripts/run-tests.mjs [path-filter ...]
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const filters = process.argv.slice(2);

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(spec|test)\.ts$/.test(name)) out.push(relative(root, p));
  }
  return out;
}

const files = [...walk(join(root, "packages"), []), ...walk(join(root, "test"), [])]
  .filter((f) => filters.length === 0 || filters.some((flt) => f.includes(flt)))
  .sort();
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  [
    "--conditions=sluice-src",
    "--import",
    "tsx",
    "--test",
    "--test-concurrency=2",
    "--test-reporter=spec",
    ...files,
  ],
  {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? "silent" },
  },
);
process.exit(r.status ?? 1);
