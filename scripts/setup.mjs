#!/usr/bin/env node
// One-time set-up shared by `npm start` and `npm test`: the two commands must work on a fresh
// Debian/Ubuntu machine with only Node.js. Uses nothing but Node built-ins, because it runs
// before `npm ci` has installed anything.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const log = (msg) => process.stderr.write(`[setup] ${msg}\n`);

function fail(msg) {
  process.stderr.write(`\n[setup] ERROR: ${msg}\n\n`);
  process.exit(1);
}

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 20 || (major === 20 && minor < 6)) fail(`Node.js >= 20.6 is required, found ${process.version}.`);

// --- 1. npm dependencies: `npm ci` when the lockfile changed since the last install.
const lock = join(root, "package-lock.json");
const stamp = join(root, "node_modules", ".sluice-lock-hash");
const lockHash = createHash("sha256").update(readFileSync(lock)).digest("hex");
const installed = existsSync(stamp) ? readFileSync(stamp, "utf8").trim() : "";
if (installed !== lockHash) {
  log("installing npm dependencies (npm ci) ...");
  const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) fail(`npm ci failed with exit code ${r.status}.`);
  writeFileSync(stamp, `${lockHash}\n`);
}

// --- 2. nats-server and etcd: the real servers the stack and the tests run against; with --test also
// promtool (Debian package `prometheus`), which checks every process's /metrics and the alert rules.
const forTests = process.argv.includes("--test");
const have = (cmd) => spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
const servers = [
  { bin: "nats-server", pkg: "nats-server" },
  { bin: "etcd", pkg: "etcd-server" },
];
const tools = forTests ? [{ bin: "promtool", pkg: "prometheus" }] : [];
// An operator may point at servers they already run; then the binaries are not needed.
const external = process.env.SLUICE_TEST_NATS_URL && process.env.SLUICE_TEST_ETCD_ENDPOINTS;
const needed = [...(external ? [] : servers), ...tools];
const missing = needed.filter((n) => !have(n.bin));
if (missing.length > 0) {
  const pkgs = missing.map((m) => m.pkg).join(" ");
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (!isRoot || !have("apt-get")) {
    fail(
      `missing ${missing.map((m) => m.bin).join(", ")}. Install with:\n\n` +
        `    sudo apt-get update && sudo apt-get install -y ${pkgs}\n\n` +
        (missing.some((m) => servers.includes(m))
          ? "or point Sluice at running servers with SLUICE_TEST_NATS_URL and SLUICE_TEST_ETCD_ENDPOINTS."
          : ""),
    );
  }
  log(`installing ${pkgs} with apt-get ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [
    ["update", "-qq"],
    ["install", "-y", "-qq", "--no-install-recommends", ...pkgs.split(" ")],
  ]) {
    const r = spawnSync("apt-get", args, { stdio: "inherit", env });
    if (r.status !== 0) fail(`apt-get ${args.join(" ")} failed with exit code ${r.status}.`);
  }
  // Debian starts the packaged services; Sluice runs its own on free ports, so stop them.
  spawnSync(
    "sh",
    [
      "-c",
      "command -v systemctl >/dev/null && systemctl disable --now etcd nats-server prometheus prometheus-node-exporter",
    ],
    {
      stdio: "ignore",
    },
  );
}
for (const n of needed) {
  const out = execFileSync(n.bin, ["--version"], { encoding: "utf8" }).split("\n")[0];
  log(`${n.bin}: ${out.trim()}`);
}
