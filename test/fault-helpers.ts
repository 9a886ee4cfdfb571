// Shared machinery of the fault tests: every Sluice process as a child of the built CLI (so SIGKILL
// is a real crash), found through its own etcd registration; a client load loop that classifies
// every request's one terminal outcome; Prometheus scraping for the server-side identities; and the
// recovery-time record the fault table in docs/operations.md is written from.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Etcd3 } from "etcd3";

export const ROOT = new URL("..", import.meta.url).pathname;
/** The built CLI: processes start far faster than through tsx on a loaded 2-core machine. */
export const CLI_MAIN = join(ROOT, "packages/cli/dist/main.js");

/** Polls `check` until it holds; fails naming `what` after `timeoutMs`. Resolves with the time it held. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  pollMs = 50,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await check();
    } catch {
      ok = false; // a process that does not answer yet is the normal case while waiting
    }
    if (ok) return Date.now();
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface SluiceProcess {
  readonly role: string;
  readonly id: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Addresses from its etcd registration (`http`, `grpc`, `admin`). */
  readonly addresses: Readonly<Record<string, string>>;
  /** Main HTTP URL (`addresses.http`), "" for roles without one. */
  readonly url: string;
  readonly adminUrl: string;
  /** Set when the process exited; `expectedExit` tells a kill by the test from a crash. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  expectedExit: boolean;
  readonly exited: Promise<void>;
  /** SIGKILL (a crash: no lease revoke, no drain) and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface SpawnOptions {
  readonly role: string;
  readonly id: string;
  readonly args: readonly string[];
  /** Direct client (not through a fault proxy) used to find the registration. */
  readonly etcd: Etcd3;
  readonly logDir: string;
  readonly prefix?: string;
  readonly startTimeoutMs?: number;
}

/**
 * Starts `sluice <role> --id <id> …` from the built CLI and resolves once it registered under
 * `instances/<role>/<id>` with its own pid (a restarted process is not mistaken for its
 * predecessor's still-leased registration) and answers /healthz.
 */
export async function spawnSluice(options: SpawnOptions): Promise<SluiceProcess> {
  const prefix = options.prefix ?? "/sluice/v1";
  const logFile = join(options.logDir, `${options.role}-${options.id}.log`);
  const log = createWriteStream(logFile, { flags: "a" });
  const args = [options.role, "--id", options.id, ...options.args];
  const child = spawn(process.execPath, [CLI_MAIN, ...args], {
    cwd: ROOT,
    // SLUICE_PARENT_PID: the child stops by itself should this test process die without cleanup.
    env: { ...process.env, SLUICE_PARENT_PID: String(process.pid) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const proc: SluiceProcess = {
    role: options.role,
    id: options.id,
    args: options.args,
    logFile,
    child,
    addresses: {},
    url: "",
    adminUrl: "",
    exit: undefined,
    expectedExit: false,
    exited: new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        proc.exit = { code, signal };
        log.end();
        resolve();
      });
    }),
    kill: async () => {
      proc.expectedExit = true;
      if (proc.exit === undefined) child.kill("SIGKILL");
      await proc.exited;
    },
    stop: async (timeoutMs = 10_000) => {
      proc.expectedExit = true;
      if (proc.exit !== undefined) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      await proc.exited;
      clearTimeout(timer);
    },
  };
  const key = `${prefix}/instances/${options.role}/${options.id}`;
  let registration: { addresses?: Record<string, string>; pid?: number } | undefined;
  try {
    await waitForRegistration();
  } catch (err) {
    // Never leave a half-started child behind: its open pipes would keep the test process alive.
    await proc.kill();
    throw new Error(`${(err as Error).message}\n--- log tail ---\n${logTail(logFile)}`, { cause: err });
  }
  const addresses = registration?.addresses ?? {};
  const ready: SluiceProcess = Object.assign(proc, {
    addresses,
    url: addresses.http ?? "",
    adminUrl: (addresses.admin ?? "").replace(/\/$/, ""),
  });
  await until(`${options.role} ${options.id} /healthz`, () => healthy(ready), 10_000);
  return ready;

  async function waitForRegistration(): Promise<void> {
    await until(
      `${options.role} ${options.id} to register (log: ${logFile})`,
      async () => {
        if (proc.exit !== undefined) return true;
        const raw = await options.etcd.get(key).string();
        if (raw === null) return false;
        const parsed = JSON.parse(raw) as { addresses?: Record<string, string>; pid?: number };
        if (parsed.pid !== child.pid) return false;
        registration = parsed;
        return true;
      },
      options.startTimeoutMs ?? 180_000,
      100,
    );
    if (proc.exit !== undefined) {
      assert.fail(`${options.role} ${options.id} exited during start-up (${JSON.stringify(proc.exit)})`);
    }
  }
}

export function logTail(logFile: string, lines = 30): string {
  try {
    return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** True when the process runs and its admin server answers /healthz with 200. */
export async function healthy(proc: SluiceProcess): Promise<boolean> {
  if (proc.exit !== undefined) return false;
  try {
    const res = await fetch(`${proc.adminUrl}/healthz`, { signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** No process the test did not kill has exited, and each still answers /healthz. */
export async function assertNoCrash(processes: readonly SluiceProcess[]): Promise<void> {
  for (const p of processes) {
    if (p.expectedExit) continue;
    assert.equal(
      p.exit,
      undefined,
      `${p.role} ${p.id} exited (${JSON.stringify(p.exit)}):\n${logTail(p.logFile)}`,
    );
    // A loaded machine may delay answers by seconds: keep asking for a while before calling it dead.
    let ok = false;
    const deadline = Date.now() + 60_000;
    while (!ok && Date.now() < deadline && p.exit === undefined) {
      ok = await healthy(p);
      if (!ok) await sleep(500);
    }
    assert.ok(ok, `${p.role} ${p.id} does not answer /healthz:\n${logTail(p.logFile)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Metrics

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] as string] = l[2] as string;
    }
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return samples;
}

export async function scrape(proc: SluiceProcess): Promise<Sample[]> {
  const res = await fetch(`${proc.adminUrl}/metrics`, { signal: AbortSignal.timeout(20_000) });
  return parseMetrics(await res.text());
}

/** Sum of every series of `name` whose labels include `match`. */
export function sum(samples: readonly Sample[], name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

export async function metric(
  proc: SluiceProcess,
  name: string,
  match: Record<string, string> = {},
): Promise<number> {
  return sum(await scrape(proc), name, match);
}

// ---------------------------------------------------------------------------------------------
// Client load

export type OutcomeKind =
  /** 200 and a complete answer (JSON with choices, or a stream ending in [DONE]). */
  | "ok"
  /** 4xx/5xx with an OpenAI-shaped error body. */
  | "http_error"
  /** 200, then the stream was cut or carried an `event: error`. */
  | "stream_error"
  /** No HTTP answer at all (connection refused or reset): only expected from a killed ingress. */
  | "transport_error"
  /** Anything else: a protocol violation, always a test failure. */
  | "invalid";

export interface Outcome {
  readonly kind: OutcomeKind;
  readonly target: string;
  readonly stream: boolean;
  readonly status: number;
  /** Error code, and the `sluice.reason` of a rejection, when there was an error body. */
  readonly code: string;
  readonly startedAtMs: number;
  readonly endedAtMs: number;
  readonly detail: string;
}

export interface LoadOptions {
  /** Ingress URLs to spread requests over (read before every request, so it can change). */
  targets(): readonly string[];
  concurrency?: number;
  /** Every n-th request streams. Default 2 (half). */
  streamEvery?: number;
  maxTokens?: number;
  /** Pause between one loop's requests. */
  pauseMs?: number;
  /** Client-side bound on one request; hitting it is an "invalid" outcome (a hang). */
  requestTimeoutMs?: number;
}

export class LoadGenerator {
  readonly outcomes: Outcome[] = [];
  sent = 0;
  #running = false;
  #loops: Promise<void>[] = [];
  #counter = 0;
  readonly #options: Required<LoadOptions>;

  constructor(options: LoadOptions) {
    this.#options = {
      concurrency: 4,
      streamEvery: 2,
      maxTokens: 8,
      pauseMs: 20,
      requestTimeoutMs: 60_000,
      ...options,
    };
  }

  start(): void {
    assert.ok(!this.#running, "load already running");
    this.#running = true;
    this.#loops = Array.from({ length: this.#options.concurrency }, () => this.#loop());
  }

  /** Stops sending and waits until every request sent has its outcome. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
    this.#loops = [];
  }

  /** Outcomes of requests started in [fromMs, toMs). */
  between(fromMs: number, toMs = Number.POSITIVE_INFINITY): Outcome[] {
    return this.outcomes.filter((o) => o.startedAtMs >= fromMs && o.startedAtMs < toMs);
  }

  /** Resolves with the end time of the first successful request started at or after `fromMs`. */
  async firstSuccessAfter(fromMs: number, timeoutMs = 30_000): Promise<number> {
    let found: number | undefined;
    await until(
      "a successful request",
      () => {
        found = this.between(fromMs).find((o) => o.kind === "ok")?.endedAtMs;
        return found !== undefined;
      },
      timeoutMs,
    );
    return found as number;
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      const targets = this.#options.targets();
      if (targets.length === 0) {
        await sleep(50);
        continue;
      }
      const n = this.#counter++;
      const target = targets[n % targets.length] as string;
      const stream = n % this.#options.streamEvery === 0;
      this.sent++;
      this.outcomes.push(await this.#one(target, stream, n));
      await sleep(this.#options.pauseMs);
    }
  }

  async #one(target: string, stream: boolean, n: number): Promise<Outcome> {
    const startedAtMs = Date.now();
    const done = (kind: OutcomeKind, status: number, code: string, detail = ""): Outcome => ({
      kind,
      target,
      stream,
      status,
      code,
      startedAtMs,
      endedAtMs: Date.now(),
      detail,
    });
    let res: Response;
    try {
      res = await fetch(`${target}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "mock-llm",
          messages: [{ role: "user", content: `fault test request ${n} ${"lorem ipsum ".repeat(n % 7)}` }],
          max_tokens: this.#options.maxTokens,
          stream,
        }),
        signal: AbortSignal.timeout(this.#options.requestTimeoutMs),
      });
    } catch (err) {
      const timedOut = err instanceof Error && err.name === "TimeoutError";
      return done(timedOut ? "invalid" : "transport_error", 0, "", String(err));
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      // Headers came, the body was cut: for a stream that is a stream error, otherwise a broken answer.
      return done(res.status === 200 && stream ? "stream_error" : "invalid", res.status, "", String(err));
    }
    if (res.status === 200) {
      if (stream) {
        if (/^event: error$/m.test(text)) return done("stream_error", 200, "event_error", text.slice(-300));
        return text.includes("data: [DONE]")
          ? done("ok", 200, "")
          : done("stream_error", 200, "cut", text.slice(-300));
      }
      try {
        const body = JSON.parse(text) as { choices?: unknown[] };
        return Array.isArray(body.choices)
          ? done("ok", 200, "")
          : done("invalid", 200, "", text.slice(0, 300));
      } catch {
        return done("invalid", 200, "", text.slice(0, 300));
      }
    }
    if (res.status >= 400 && res.status < 600) {
      try {
        const body = JSON.parse(text) as {
          error?: { message?: unknown; type?: unknown; code?: unknown };
          sluice?: { reason?: unknown };
        };
        const e = body.error;
        if (typeof e?.message === "string" && typeof e.type === "string") {
          const reason = typeof body.sluice?.reason === "string" ? body.sluice.reason : "";
          return done("http_error", res.status, reason !== "" ? reason : String(e.code ?? ""), e.message);
        }
      } catch {
        // falls through to invalid
      }
    }
    return done("invalid", res.status, "", text.slice(0, 300));
  }
}

/** "200 ×41, 503 no_engine ×2, stream cut ×1": what clients saw, for the fault table. */
export function describeOutcomes(outcomes: readonly Outcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const label =
      o.kind === "ok"
        ? "200"
        : o.kind === "http_error"
          ? `${o.status} ${o.code}`
          : o.kind === "stream_error"
            ? `stream ${o.code}`
            : o.kind === "transport_error"
              ? "connection error"
              : `invalid ${o.status}`;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([label, n]) => `${label} ×${n}`)
    .join(", ");
}

/** Every request sent has exactly one outcome and none is a protocol violation or a hang. */
export function assertOneOutcomeEach(
  load: LoadGenerator,
  allowTransportErrorsFrom: readonly string[] = [],
): void {
  const byKind = (k: OutcomeKind) => load.outcomes.filter((o) => o.kind === k).length;
  const total =
    byKind("ok") +
    byKind("http_error") +
    byKind("stream_error") +
    byKind("transport_error") +
    byKind("invalid");
  assert.equal(total, load.sent, "one terminal outcome per request sent");
  assert.equal(load.outcomes.length, load.sent);
  const invalid = load.outcomes.filter((o) => o.kind === "invalid");
  assert.deepEqual(invalid, [], "no protocol violation and no hung request");
  const unexpected = load.outcomes.filter(
    (o) => o.kind === "transport_error" && !allowTransportErrorsFrom.includes(o.target),
  );
  assert.deepEqual(unexpected, [], "connection errors only from a killed ingress");
}

// ---------------------------------------------------------------------------------------------
// Recovery record

export interface FaultRecord {
  readonly fault: string;
  /** What clients saw from the fault until the view converged (outcome counts). */
  readonly usersSaw: string;
  /** Fault → first successful request started after it. */
  readonly firstSuccessMs: number;
  /** Fault (or end of the outage) → the converged view. */
  readonly convergedMs: number;
  /** What "converged" means for this fault. */
  readonly convergedWhen: string;
}

export function recordTable(records: readonly FaultRecord[]): string {
  const lines = [
    "| fault | what users see | recovery time measured |",
    "|---|---|---|",
    ...records.map(
      (r) =>
        `| ${r.fault} | ${r.usersSaw} | first success ${Math.round(r.firstSuccessMs)} ms; ${r.convergedWhen} ${Math.round(r.convergedMs)} ms |`,
    ),
  ];
  return lines.join("\n");
}

/** JSON log lines of a process written at or after `sinceMs` that satisfy `match`. */
export function logLinesSince(
  proc: SluiceProcess,
  sinceMs: number,
  match: (entry: Record<string, unknown>) => boolean,
): Record<string, unknown>[] {
  let text = "";
  try {
    text = readFileSync(proc.logFile, "utf8");
  } catch {
    return [];
  }
  const found: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (Date.parse(String(entry.time)) >= sinceMs && entry.pid === proc.child.pid && match(entry)) {
        found.push(entry);
      }
    } catch {
      // a line cut by a crash
    }
  }
  return found;
}
