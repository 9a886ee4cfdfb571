// Every Sluice process's /metrics is valid Prometheus text exposition: the real processes (mock engine,
// engine-scheduler sidecar, router, aggregator, ingress) run in this process against real nats-server
// and etcd, serve a little traffic so labelled series and histograms exist, and each page goes
// through a small strict parser (names, HELP/TYPE, counters end in _total, histogram buckets
// monotone and ending at +Inf = _count, no duplicate series) and, when installed, `promtool check
// metrics` (Debian package `prometheus`).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type LaunchedAggregator, launchAggregator } from "@sluice/aggregator";
import { type LaunchedEngineScheduler, launchEngineScheduler } from "@sluice/engine-scheduler";
import { type LaunchedIngress, launchIngress } from "@sluice/ingress";
import { type LaunchedMockEngine, launchMockEngine } from "@sluice/mock-engine";
import { grpcServiceDefinition, Router } from "@sluice/proto";
import { type LaunchedRouter, launchRouter } from "@sluice/router";
import { createGrpcClient } from "@sluice/runtime";
import { type EtcdServer, type NatsServer, startEtcd, startNats } from "@sluice/testkit";

// ── A small exposition-format parser (text format 0.0.4) ─────────────────────────────────────────

type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

interface Sample {
  readonly name: string;
  readonly labels: ReadonlyMap<string, string>;
  readonly value: number;
  readonly line: number;
}

interface Family {
  readonly name: string;
  type: MetricType | undefined;
  help: string | undefined;
  readonly samples: Sample[];
}

interface Exposition {
  readonly families: ReadonlyMap<string, Family>;
  /** Every rule the page breaks, each with its line number; empty when the page is valid. */
  readonly problems: readonly string[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<string>(["counter", "gauge", "histogram", "summary", "untyped"]);

// Prometheus parses values with Go's strconv.ParseFloat, which takes NaN and Inf in any case;
// prom-client writes an empty event-loop-lag window as "Nan".
function parseValue(text: string): number | undefined {
  const special = /^([-+]?)(inf|infinity|nan)$/i.exec(text);
  if (special !== null) {
    if (special[2]?.toLowerCase() === "nan") return Number.NaN;
    return special[1] === "-" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/** Parses `{a="x",b="y\"z"}` starting at `text[0] === "{"`; returns the labels and the rest of the line. */
function parseLabels(text: string): { labels: Map<string, string>; rest: string } | string {
  const labels = new Map<string, string>();
  let i = 1;
  for (;;) {
    while (text[i] === " ") i++;
    if (text[i] === "}") return { labels, rest: text.slice(i + 1) };
    const nameMatch = /^[^=\s]+/.exec(text.slice(i));
    if (nameMatch === null) return "a label without a name";
    const name = nameMatch[0];
    if (!LABEL_NAME.test(name)) return `invalid label name "${name}"`;
    if (name.startsWith("__")) return `label name "${name}" is reserved (starts with __)`;
    if (labels.has(name)) return `label "${name}" appears twice`;
    i += name.length;
    if (text[i] !== "=" || text[i + 1] !== '"') return `label "${name}" is not followed by ="…"`;
    i += 2;
    let value = "";
    for (;;) {
      const ch = text[i];
      if (ch === undefined) return `label "${name}" has an unterminated value`;
      if (ch === '"') break;
      if (ch === "\\") {
        const next = text[i + 1];
        if (next === "\\") value += "\\";
        else if (next === '"') value += '"';
        else if (next === "n") value += "\n";
        else return `label "${name}" has an invalid escape \\${next ?? ""}`;
        i += 2;
        continue;
      }
      value += ch;
      i++;
    }
    labels.set(name, value);
    i++;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") return `label "${name}" is followed by "${text[i] ?? ""}", not "," or "}"`;
  }
}

/** The family a sample belongs to: `x_bucket`/`x_sum`/`x_count` of a histogram `x`, else its own name. */
function familyOf(name: string, families: ReadonlyMap<string, Family>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const type = families.get(base)?.type;
    if (type === "histogram" || (type === "summary" && suffix !== "_bucket")) return base;
  }
  return name;
}

function seriesKey(sample: Sample, without?: string): string {
  const labels = [...sample.labels].filter(([k]) => k !== without).sort(([a], [b]) => (a < b ? -1 : 1));
  return `${sample.name}{${labels.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",")}}`;
}

function parseExposition(text: string): Exposition {
  const families = new Map<string, Family>();
  const problems: string[] = [];
  const problem = (line: number, what: string) => problems.push(`line ${line}: ${what}`);
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, type: undefined, help: undefined, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  const closed = new Set<string>();
  let current: string | undefined;
  const enter = (name: string, line: number) => {
    if (current === name) return;
    if (closed.has(name)) problem(line, `family ${name} is split (its lines are not contiguous)`);
    if (current !== undefined) closed.add(current);
    current = name;
  };
  const seen = new Set<string>();

  if (text.length > 0 && !text.endsWith("\n")) problems.push("the page does not end with a newline");
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (const [index, raw] of lines.entries()) {
    const line = index + 1;
    if (raw.trim() === "") continue;
    if (raw.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(raw);
      if (m === null) continue; // a plain comment
      const [, keyword, name = "", rest = ""] = m;
      if (!METRIC_NAME.test(name)) {
        problem(line, `invalid metric name "${name}" in ${keyword}`);
        continue;
      }
      enter(name, line);
      const f = family(name);
      if (keyword === "HELP") {
        if (f.help !== undefined) problem(line, `second HELP for ${name}`);
        f.help = rest;
        if (rest.trim() === "") problem(line, `empty HELP for ${name}`);
      } else {
        if (f.type !== undefined) problem(line, `second TYPE for ${name}`);
        if (f.samples.length > 0) problem(line, `TYPE for ${name} after its samples`);
        if (!TYPES.has(rest)) problem(line, `unknown TYPE "${rest}" for ${name}`);
        else f.type = rest as MetricType;
      }
      continue;
    }
    const nameMatch = /^[^\s{]+/.exec(raw);
    const name = nameMatch?.[0] ?? "";
    if (!METRIC_NAME.test(name)) {
      problem(line, `invalid metric name "${name}"`);
      continue;
    }
    let rest = raw.slice(name.length);
    let labels = new Map<string, string>();
    if (rest.startsWith("{")) {
      const parsed = parseLabels(rest);
      if (typeof parsed === "string") {
        problem(line, `${name}: ${parsed}`);
        continue;
      }
      labels = parsed.labels;
      rest = parsed.rest;
    }
    const fields = rest.trim().split(/\s+/);
    if (!rest.startsWith(" ") || fields.length < 1 || fields.length > 2) {
      problem(line, `${name}: expected " value [timestamp]" after the name and labels`);
      continue;
    }
    const value = parseValue(fields[0] ?? "");
    if (value === undefined) {
      problem(line, `${name}: "${fields[0]}" is not a number`);
      continue;
    }
    if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1])) {
      problem(line, `${name}: timestamp "${fields[1]}" is not an integer`);
      continue;
    }
    const familyName = familyOf(name, families);
    enter(familyName, line);
    const f = family(familyName);
    if (f.type === undefined) problem(line, `sample of ${familyName} before (or without) its TYPE`);
    const sample: Sample = { name, labels, value, line };
    const key = seriesKey(sample);
    if (seen.has(key)) problem(line, `duplicate series ${key}`);
    seen.add(key);
    f.samples.push(sample);
  }

  for (const f of families.values()) {
    if (f.help === undefined) problems.push(`${f.name}: no HELP line`);
    if (f.type === "counter") {
      if (!f.name.endsWith("_total")) problems.push(`${f.name}: a counter whose name does not end in _total`);
      for (const s of f.samples) {
        if (s.name !== f.name)
          problems.push(`line ${s.line}: counter sample ${s.name} is not named ${f.name}`);
        if (!(s.value >= 0)) problems.push(`line ${s.line}: counter ${s.name} is ${s.value}`);
      }
    }
    if (f.type === "gauge" || f.type === "untyped") {
      for (const s of f.samples) {
        if (s.name !== f.name) problems.push(`line ${s.line}: sample ${s.name} is not named ${f.name}`);
      }
    }
    if (f.type === "histogram") problems.push(...checkHistogram(f));
  }
  return { families, problems };
}

function checkHistogram(f: Family): string[] {
  const problems: string[] = [];
  interface Series {
    buckets: { le: number; count: number; line: number }[];
    count?: number;
    sum?: number;
  }
  const series = new Map<string, Series>();
  const of = (s: Sample) => {
    const key = seriesKey({ ...s, name: f.name }, "le");
    let entry = series.get(key);
    if (entry === undefined) {
      entry = { buckets: [] };
      series.set(key, entry);
    }
    return entry;
  };
  for (const s of f.samples) {
    if (s.name === `${f.name}_bucket`) {
      const le = s.labels.get("le");
      const bound = le === undefined ? undefined : parseValue(le);
      if (bound === undefined || Number.isNaN(bound)) {
        problems.push(`line ${s.line}: ${s.name} has no valid le label`);
        continue;
      }
      of(s).buckets.push({ le: bound, count: s.value, line: s.line });
    } else if (s.name === `${f.name}_count`) of(s).count = s.value;
    else if (s.name === `${f.name}_sum`) of(s).sum = s.value;
    else problems.push(`line ${s.line}: histogram ${f.name} has a sample ${s.name}`);
  }
  for (const [key, s] of series) {
    const last = s.buckets.at(-1);
    if (last === undefined) problems.push(`${key}: a histogram series without buckets`);
    else if (last.le !== Number.POSITIVE_INFINITY) problems.push(`${key}: the last bucket is not le="+Inf"`);
    else if (s.count !== undefined && last.count !== s.count)
      problems.push(`${key}: the +Inf bucket (${last.count}) differs from _count (${s.count})`);
    for (let i = 1; i < s.buckets.length; i++) {
      const [prev, cur] = [s.buckets[i - 1], s.buckets[i]];
      if (prev === undefined || cur === undefined) continue;
      if (cur.le <= prev.le) problems.push(`line ${cur.line}: ${key} bucket bounds are not increasing`);
      if (cur.count < prev.count) problems.push(`line ${cur.line}: ${key} bucket counts decrease`);
    }
    if (s.count === undefined) problems.push(`${key}: no _count`);
    if (s.sum === undefined) problems.push(`${key}: no _sum`);
  }
  return problems;
}

// promtool is optional locally: without it the check is skipped with the reason, never passed silently;
// under CI=true it is required.
const PROMTOOL = spawnSync("sh", ["-c", "command -v promtool"], { encoding: "utf8" }).stdout.trim();

// Lint findings accepted on purpose, each for a name Sluice does not choose:
// - vLLM's own names contain ':' (vllm:num_requests_running), which promtool's linter reserves for
//   recording rules; the mock engine keeps them because the sidecar and dashboards scrape vLLM by them;
// - prom-client's default Node.js metrics include three gauges named *_total; stock Node.js dashboards
//   use these names, so the runtime keeps them (docs/deployment.md).
const ACCEPTED_LINT = [
  /^vllm:\S+ metric names should not contain ':'/,
  /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/,
];

function promtoolCheck(text: string): { status: number; problems: string[] } {
  const r = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8" });
  const lines = `${r.stdout ?? ""}${r.stderr ?? ""}`
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  return {
    status: r.status ?? 1,
    problems: lines.filter((l) => !ACCEPTED_LINT.some((re) => re.test(l))),
  };
}

// ── The parser catches what it should ────────────────────────────────────────────────────────────

describe("exposition parser", () => {
  const valid = [
    "# HELP sluice_x_total Things.",
    "# TYPE sluice_x_total counter",
    'sluice_x_total{reason="a\\"b"} 3',
    'sluice_x_total{reason="c"} 0',
    "# HELP sluice_lat_seconds Latency.",
    "# TYPE sluice_lat_seconds histogram",
    'sluice_lat_seconds_bucket{le="0.1"} 1',
    'sluice_lat_seconds_bucket{le="1"} 2',
    'sluice_lat_seconds_bucket{le="+Inf"} 2',
    "sluice_lat_seconds_sum 0.6",
    "sluice_lat_seconds_count 2",
    "",
  ].join("\n");

  it("reads NaN and Inf in any case, as Prometheus does", () => {
    const page = parseExposition('# HELP g G.\n# TYPE g gauge\ng{a="1"} Nan\ng{a="2"} -inf\ng{a="3"} +Inf\n');
    assert.deepEqual(page.problems, []);
    const values = page.families.get("g")?.samples.map((s) => s.value);
    assert.deepEqual(values, [Number.NaN, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY]);
  });

  it("accepts a valid page and reads its families", () => {
    const page = parseExposition(valid);
    assert.deepEqual(page.problems, []);
    assert.equal(page.families.get("sluice_x_total")?.samples[0]?.labels.get("reason"), 'a"b');
    assert.equal(page.families.get("sluice_lat_seconds")?.samples.length, 5);
  });

  const broken: [string, (page: string) => string, RegExp][] = [
    ["a duplicate series", (p) => p.replace('reason="c"} 0', 'reason="a\\"b"} 0'), /duplicate series/],
    ["a counter without _total", (p) => p.replaceAll("sluice_x_total", "sluice_x"), /does not end in _total/],
    ["decreasing buckets", (p) => p.replace('le="1"} 2', 'le="1"} 0'), /bucket counts decrease/],
    [
      "+Inf differing from _count",
      (p) => p.replace("sluice_lat_seconds_count 2", "sluice_lat_seconds_count 3"),
      /differs from _count/,
    ],
    ["no +Inf bucket", (p) => p.replace('sluice_lat_seconds_bucket{le="+Inf"} 2\n', ""), /not le="\+Inf"/],
    ["a missing TYPE", (p) => p.replace("# TYPE sluice_x_total counter\n", ""), /without\) its TYPE/],
    ["a missing HELP", (p) => p.replace("# HELP sluice_lat_seconds Latency.\n", ""), /no HELP line/],
    ["a bad metric name", (p) => `${p}9bad 1\n`, /invalid metric name "9bad"/],
    ["a bad label escape", (p) => p.replace('a\\"b', "a\\tb"), /invalid escape/],
    ["a non-numeric value", (p) => p.replace('reason="c"} 0', 'reason="c"} zero'), /is not a number/],
    ["a split family", (p) => `${p}sluice_x_total{reason="late"} 1\n`, /is split/],
    [
      "a negative counter",
      (p) => p.replace('reason="c"} 0', 'reason="c"} -1'),
      /counter sluice_x_total is -1/,
    ],
  ];
  for (const [what, breakPage, expected] of broken) {
    it(`reports ${what}`, () => {
      const page = parseExposition(breakPage(valid));
      assert.ok(
        page.problems.some((p) => expected.test(p)),
        `expected a problem matching ${expected}, got ${JSON.stringify(page.problems)}`,
      );
    });
  }
});

// ── Every real process ───────────────────────────────────────────────────────────────────────────

interface Scraped {
  readonly role: string;
  readonly adminUrl: string;
  /** Families this role must expose (proves the page is the process's, not an empty registry). */
  readonly expected: readonly string[];
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function scrape(adminUrl: string): Promise<string> {
  const res = await fetch(`${adminUrl}/metrics`);
  assert.equal(res.status, 200, `${adminUrl}/metrics answers 200`);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
  return res.text();
}

describe("/metrics of every Sluice process", () => {
  const NS = "mf";
  const MODEL = "mock-llm";
  let nats: NatsServer;
  let etcd: EtcdServer;
  const stops: (() => Promise<number>)[] = [];
  const targets: Scraped[] = [];

  before(async () => {
    [nats, etcd] = await Promise.all([startNats(), startEtcd()]);
    const common = [
      `--nats-url=${nats.url}`,
      `--etcd-endpoints=${etcd.endpoints.join(",")}`,
      `--namespace=${NS}`,
      "--admin-port=0",
      "--log-level=silent",
      "--lease-ttl=2s",
      "--shutdown-timeout=2s",
    ];
    const started = <T extends { stop(): Promise<number> }>(role: string, launched: T | number): T => {
      assert.ok(typeof launched !== "number", `${role} exited during start-up with ${String(launched)}`);
      stops.push(() => launched.stop());
      return launched;
    };

    const engine: LaunchedMockEngine = started(
      "mock-engine",
      await launchMockEngine({
        argv: [...common, "--port=0", "--id=mf-engine", "--worker-id=mf-engine", "--register-engine=false"],
        env: {},
      }),
    );
    const sidecar: LaunchedEngineScheduler = started(
      "engine-scheduler",
      await launchEngineScheduler({
        argv: [
          ...common,
          "--port=0",
          "--id=mf-sidecar",
          "--worker-id=mf-0",
          `--engine-url=${engine.url}`,
          `--model=${MODEL}`,
          "--scrape-interval=100ms",
        ],
        env: {},
      }),
    );
    const router: LaunchedRouter = started(
      "router",
      await launchRouter({ argv: [...common, "--grpc-port=0", "--id=mf-router"], env: {} }),
    );
    const aggregator: LaunchedAggregator = started(
      "aggregator",
      await launchAggregator({ argv: [...common, "--id=mf-agg", "--heartbeat=200ms"], env: {} }),
    );
    const ingress: LaunchedIngress = started(
      "ingress",
      await launchIngress({ argv: [...common, "--port=0", "--id=mf-ingress"], env: {} }),
    );

    // Traffic, so labelled counters and histograms have series: a streamed completion through the
    // ingress and the sidecar (TTFT and the prediction audit), and a Route call on the router.
    await until("the sidecar ready", async () => (await fetch(`${sidecar.adminUrl}/readyz`)).ok);
    await until("the aggregator leading", () => aggregator.isLeader());
    let status = 0;
    await until("a completion through the ingress", async () => {
      const res = await fetch(`${ingress.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, prompt: "hello metrics", max_tokens: 3, stream: true }),
      });
      status = res.status;
      await res.text();
      return res.ok;
    }).catch((err: unknown) =>
      assert.fail(`the ingress never served a completion (last status ${status}): ${err}`),
    );
    const client = createGrpcClient(grpcServiceDefinition(Router), router.target, {
      defaultDeadlineMs: 5_000,
    });
    try {
      await until("the router to see the engine", () => router.service !== undefined);
      const routed = await client.unary("route", {
        requestId: "mf-1",
        model: MODEL,
        requestClass: "standard",
        prompt: { case: "text", value: "hello metrics" },
      });
      if (routed.result.case === "routed") await client.unary("release", { requestId: "mf-1" });
    } finally {
      client.close();
    }

    targets.push(
      { role: "mock-engine", adminUrl: engine.adminUrl, expected: ["vllm:num_requests_running"] },
      {
        role: "engine-scheduler",
        adminUrl: sidecar.adminUrl,
        expected: [
          "sluice_engine_up",
          "sluice_engine_ttft_prediction_relative_error",
          "sluice_policy_revision",
        ],
      },
      {
        role: "router",
        adminUrl: router.adminUrl,
        expected: ["sluice_router_decisions_total", "sluice_router_event_lag_seconds"],
      },
      {
        role: "aggregator",
        adminUrl: aggregator.adminUrl,
        expected: ["sluice_aggregator_leader", "sluice_aggregator_publish_lag_seconds"],
      },
      {
        role: "ingress",
        adminUrl: ingress.adminUrl,
        expected: ["sluice_ingress_admitted_total", "sluice_ingress_decision_seconds"],
      },
    );
  });

  after(async () => {
    // Reverse start order: clients of the engine stop before it.
    for (const stop of stops.reverse()) await stop().catch(() => 1);
    await Promise.allSettled([nats?.dispose(), etcd?.dispose()]);
  });

  for (const role of ["mock-engine", "engine-scheduler", "router", "aggregator", "ingress"]) {
    it(`${role}: the parser finds no problem`, async () => {
      const target = targets.find((t) => t.role === role);
      assert.ok(target, `${role} was started`);
      const page = parseExposition(await scrape(target.adminUrl));
      assert.deepEqual(page.problems, [], `${role} /metrics breaks the exposition format`);
      for (const name of [...target.expected, "process_cpu_user_seconds_total"]) {
        assert.ok(page.families.has(name), `${role} exposes ${name}`);
      }
      const build = page.families.get("sluice_build_info")?.samples[0];
      assert.equal(build?.labels.get("role"), role, "sluice_build_info names the role");
      // Histograms with traffic behind them have observations, so the bucket checks were not vacuous.
      const observed = [...page.families.values()]
        .filter((f) => f.type === "histogram" && f.name.startsWith("sluice_"))
        .some((f) => f.samples.some((s) => s.name.endsWith("_count") && s.value > 0));
      if (role !== "mock-engine") assert.ok(observed, `${role} has a sluice_* histogram with observations`);
    });

    it(`${role}: promtool check metrics`, async (t) => {
      if (PROMTOOL === "") {
        // CI installs it (`node scripts/setup.mjs --test`), so there a missing promtool is a failure.
        assert.notEqual(
          process.env.CI,
          "true",
          "promtool must be installed in CI (Debian package `prometheus`)",
        );
        t.skip(
          "promtool is not installed (Debian package `prometheus`); the exposition was only checked by the parser",
        );
        return;
      }
      const target = targets.find((x) => x.role === role);
      assert.ok(target, `${role} was started`);
      const result = promtoolCheck(await scrape(target.adminUrl));
      assert.deepEqual(result.problems, [], `promtool check metrics on ${role} (exit ${result.status})`);
    });
  }
});
