#!/usr/bin/env node
// Fails when the committed generated files are stale: regenerates the protobuf-es code and
// docs/configuration.md into a temporary directory and compares them, file by file, with
// packages/proto/src/gen and docs/configuration.md. Compares content rather than asking git,
// so it also works before the generated files are first committed. Offline: local buf and
// the local protoc-gen-es only.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const GEN_DIR = "packages/proto/src/gen";
const DOCS_FILE = "docs/configuration.md";

function listFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: "utf8" });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message} (run npm ci first)`);
  if (r.status !== 0) throw new Error(`${basename(cmd)} ${args.join(" ")} failed:\n${r.stderr}${r.stdout}`);
}

const tmp = mkdtempSync(join(tmpdir(), "sluice-gen-check-"));
const stale = [];
try {
  const bin = join(root, "node_modules", ".bin");
  // buf looks up the local protoc-gen-es on PATH, as under `npm run gen`.
  const env = { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ""}` };
  run(join(bin, "buf"), ["lint"], env);
  run(join(bin, "buf"), ["generate", "-o", tmp], env);
  run(process.execPath, [join(root, "scripts", "gen-docs.mjs"), "--out", join(tmp, DOCS_FILE)], env);

  const fresh = listFiles(join(tmp, GEN_DIR));
  const committed = listFiles(join(root, GEN_DIR));
  for (const f of fresh) {
    const path = `${GEN_DIR}/${f}`;
    if (!committed.includes(f)) stale.push(`${path} (missing)`);
    else if (!readFileSync(join(tmp, path)).equals(readFileSync(join(root, path))))
      stale.push(`${path} (differs)`);
  }
  for (const f of committed) if (!fresh.includes(f)) stale.push(`${GEN_DIR}/${f} (no longer generated)`);
  if (!existsSync(join(root, DOCS_FILE))) stale.push(`${DOCS_FILE} (missing)`);
  else if (!readFileSync(join(tmp, DOCS_FILE)).equals(readFileSync(join(root, DOCS_FILE))))
    stale.push(`${DOCS_FILE} (differs)`);
} catch (error) {
  process.stderr.write(`gen:check: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

if (stale.length > 0) {
  process.stderr.write(
    `gen:check: generated files are stale — run \`npm run gen\` and commit the result:\n  ${stale.join("\n  ")}\n`,
  );
  process.exitCode = 1;
} else if (process.exitCode !== 1) {
  process.stdout.write("gen:check: packages/proto/src/gen and docs/configuration.md are up to date\n");
}
