import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { niceTicks, renderSweepSvg } from "./plot.js";
import { simCommand } from "./sim-command.js";
import { SIM_HELP } from "./sim-flags.js";

const dir = mkdtempSync(join(tmpdir(), "sluice-sim-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// 60 requests in 3 s buckets of 4, sharing a two-block system prompt (ids 0, 1), 2–5 k tokens each.
const lines: string[] = [];
for (let i = 0; i < 60; i++) {
  const input = 2000 + ((i * 977) % 3000);
  const blocks = Math.ceil(input / 512);
  const ids = [0, 1, ...Array.from({ length: blocks - 2 }, (_, k) => 100 + i * 20 + k)];
  lines.push(
    JSON.stringify({
      timestamp: Math.floor(i / 4) * 3000,
      input_length: input,
      output_length: 20 + (i % 7) * 30,
      hash_ids: ids,
    }),
  );
}
const tracePath = join(dir, "small.jsonl");
writeFileSync(tracePath, `${lines.join("\n")}\n`);

async function runCli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await simCommand.run(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env: {},
  });
  return { code, stdout, stderr };
}

const BASE = ["--trace", tracePath, "--engines", "2", "--num-gpu-blocks", "2048", "--rate-scale", "20"];

describe("sluice sim command", () => {
  it("prints identical JSON for two runs with the same seed, with the required fields", async () => {
    const argv = [...BASE, "--json", "--seed", "5", "--class-mix", "critical=0.3,standard=0.4,sheddable=0.3"];
    const a = await runCli(argv);
    const b = await runCli(argv);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, b.stdout);
    const rows = JSON.parse(a.stdout) as Record<string, unknown>[];
    assert.deepEqual(
      rows.map((r) => r.policy),
      ["none", "static"],
    );
    for (const key of [
      "policy",
      "offered_rps",
      "completed_rps",
      "goodput_rps",
      "slo_attainment_admitted",
      "rejected_fraction",
      "ttft_p50_ms",
      "ttft_p99_ms",
      "itl_p50_ms",
      "itl_p99_ms",
      "wasted_prefill_tokens",
    ]) {
      assert.ok(key in (rows[0] as object), key);
    }
    assert.equal(rows[0]?.requests, 60);
    const other = await runCli([...argv.slice(0, -4), "--seed", "6", ...argv.slice(-2)]);
    assert.notEqual(other.stdout, a.stdout);
  });

  it("prints a table, and a static limit below the offered concurrency rejects at L1", async () => {
    const r = await runCli([...BASE, "--policy", "static", "--static-limit", "1", "--rate-scale", "200"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^policy\s+scale\s+offered\/s/);
    assert.match(r.stdout, /static @200 rejections: L1:static_inflight_limit/);
  });

  it("sweeps, plots and finds capacity", async () => {
    const plot = join(dir, "sweep.svg");
    const r = await runCli([
      ...BASE,
      "--find-capacity",
      "--sweep",
      "1,2",
      "--plot",
      plot,
      "--json",
      "--progress",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as {
      rate_scale: number;
      capacity_rate_scale: number | null;
      static_limit: number | null;
    }[];
    assert.equal(rows.length, 4);
    const limits = rows.map((row) => row.static_limit);
    assert.equal(limits[0], null);
    assert.ok(typeof limits[1] === "number" && limits[1] >= 1);
    const cap = rows[0]?.capacity_rate_scale;
    assert.ok(typeof cap === "number" && cap > 0);
    assert.ok(Math.abs((rows[2]?.rate_scale as number) - 2 * cap) < 1e-3);
    assert.match(r.stderr, /capacity: rate scale/);
    assert.match(r.stderr, /\r\[/);
    const svg = readFileSync(plot, "utf8");
    assert.match(svg, /^<svg /);
    assert.equal((svg.match(/<path /g) ?? []).length, 4);
    assert.match(svg, />none</);
    assert.match(svg, />static</);
  });

  it("exits 2 with a clear message on bad flags, 1 on a bad trace", async () => {
    for (const [argv, pattern] of [
      [["--bogus"], /Unknown option '--bogus'/],
      [[], /--trace FILE is required/],
      [[...BASE, "--engines", "0"], /--engines must be an integer ≥ 1, got "0"/],
      [[...BASE, "--policy", "magic"], /unknown policy "magic"/],
      [[...BASE, "--plot", "x.svg"], /--plot needs --sweep/],
      [[...BASE, "--duration", "soon"], /--duration must be a positive duration/],
      [[...BASE, "--sweep", "1,,2"], /--sweep must be a comma-separated list/],
      [[...BASE, "--static-limit", "auto"], /needs --find-capacity/],
      [[...BASE, "--step-model", "splitwise"], /--splitwise-csv/],
      [["--trace", "x.txt"], /--format/],
    ] as const) {
      const r = await runCli([...argv]);
      assert.equal(r.code, 2, `${argv.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stdout, "");
    }
    const badTrace = join(dir, "bad.jsonl");
    writeFileSync(badTrace, `${lines[0]}\n{"timestamp": 1}\n`);
    const r = await runCli(["--trace", badTrace]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.jsonl:2: "input_length"/);
    const skipped = await runCli(["--trace", badTrace, "--skip-malformed", "--json", "--policy", "none"]);
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.match(skipped.stderr, /skipped 1 malformed line\(s\)/);
    assert.equal((JSON.parse(skipped.stdout) as unknown[]).length, 1);
  });

  it("documents every flag with its default in --help", async () => {
    const r = await runCli(["--help"]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, SIM_HELP);
    const flags = [...SIM_HELP.matchAll(/^ {2}(?:-h, )?(--[a-z-]+)/gm)].map((m) => m[1]);
    assert.ok(flags.length >= 28, `${flags.length} flags documented`);
    // Each flag's entry runs until the next flag or section; all but the four without a default name it.
    const entries = SIM_HELP.split(/\n(?= {2}-|\S)/).filter((e) => /^ {2}--/.test(e));
    assert.equal(entries.length, flags.length - 1);
    for (const entry of entries) {
      if (/^ {2}--(trace|format|splitwise-csv|plot) /.test(entry)) continue;
      assert.match(entry, /\(default: /, entry);
    }
  });
});

describe("plot helpers", () => {
  it("picks nice ticks covering the range", () => {
    assert.deepEqual(niceTicks(9.3), [0, 2, 4, 6, 8, 10]);
    assert.deepEqual(niceTicks(100), [0, 20, 40, 60, 80, 100]);
    assert.deepEqual(niceTicks(0), [0, 1]);
  });

  it("escapes titles", () => {
    assert.match(renderSweepSvg([], { title: "a<b" }), /a&lt;b/);
  });
});
