// `sluice replay` flags: node:util parseArgs (strict), every value validated with a message naming the flag.
// Every flag and its default is listed in REPLAY_HELP.

import { parseArgs } from "node:util";
import {
  type ClassMix,
  DEFAULT_CLASS_MIX,
  DEFAULT_SPREAD_BUCKET_MS,
  parseClassMix,
  parseDurationMs,
} from "@sluice/sim";
import { ReplayUsageError } from "./errors.js";
import { DEFAULT_REPLAY_OPTIONS } from "./options.js";

export interface ReplayFlags {
  help: boolean;
  tracePath: string;
  format: "mooncake" | "azure" | undefined;
  targets: URL[];
  rateScale: number;
  durationMs: number | undefined;
  speedupFactor: number;
  concurrencyLimit: number;
  seed: number;
  spreadBucketMs: number;
  classMix: ClassMix;
  model: string;
  requestTimeoutWallMs: number;
  maxClientLagMs: number;
  json: boolean;
  progress: boolean;
}

const d = DEFAULT_REPLAY_OPTIONS;

export const REPLAY_HELP = `Usage: sluice replay --trace FILE --target URL[,URL…] [flags]

Replays a request trace in real time against a running OpenAI-compatible endpoint (a Sluice ingress, an
engine-scheduler, a mock engine or vLLM): streaming /v1/completions with token-id prompts rebuilt from the
trace so prefix sharing survives (each Mooncake hash id → a fixed block of 512 token ids), max_tokens =
min_tokens = the trace's output length, open-loop arrivals at the trace's (scaled) times. Measures TTFT,
per-token gaps, mean ITL, rejections (429/503/529 with Sluice's level and reason, retry-after-ms) and
failures from the client side, and prints the same report as 'sluice sim' (policy 'replay').

Time: with --speedup S, a request due at trace time t (ms, after --rate-scale) is sent at wall time t/S,
and every measured wall duration is multiplied by S, so figures are in engine time, as the simulator's.

Trace
  --trace FILE                  Mooncake JSONL (.jsonl) or Azure CSV (.csv)            (required)
  --format mooncake|azure       override the format chosen from the extension
  --rate-scale X                compress arrivals X times (2 = twice the trace rate)     (default: 1)
  --duration D                  only requests in the first D of the trace (trace time, before
                                --rate-scale); D like 600, 600s, 10m, 1h                 (default: whole trace)
  --spread-bucket-ms MS         spread requests sharing a timestamp uniformly (seeded)   (default: ${DEFAULT_SPREAD_BUCKET_MS})
  --seed N                      seed of arrivals jitter, classes and prompt tokens       (default: ${d.seed})
  --class-mix SPEC              e.g. critical=0.2,standard=0.6,sheddable=0.2            (default: standard=1)

Target
  --target URL[,URL…]           base URL(s); requests go to the one with the fewest of
                                this client's requests in flight                        (required)
  --model NAME                  model field of every request                            (default: ${d.model})
  --speedup S                   the engines' --speedup: compress the timeline S times   (default: ${d.speedupFactor})
  --concurrency-limit N         at most N requests in flight (0 = unlimited); waiting
                                shows as send lag                                       (default: ${d.concurrencyLimit})
  --request-timeout-ms MS       wall time one request may take                          (default: ${d.requestTimeoutWallMs})
  --max-client-lag-ms MS        p99 send lag or event-loop delay (engine ms) above which
                                the client is the bottleneck and goodput is withheld    (default: ${d.maxClientLagMs})

Output
  --json                        JSON array on stdout (one row, keys as 'sluice sim --json')
  --progress                    progress on stderr even when it is not a TTY            (default: TTY only)
  -h, --help                    this text

Exit codes: 0 ok, 1 run failed or the client was the bottleneck (goodput withheld), 2 bad flags.
`;

function num(
  flag: string,
  raw: string | undefined,
  fallback: number,
  ok: (v: number) => boolean,
  rule: string,
): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || !ok(v)) {
    throw new ReplayUsageError(`--${flag} must be ${rule}, got "${raw}"`);
  }
  return v;
}

function targets(raw: string | undefined): URL[] {
  if (raw === undefined) return [];
  return raw.split(",").map((part) => {
    const text = part.trim();
    let url: URL;
    try {
      url = new URL(text);
    } catch (error) {
      throw new ReplayUsageError(`--target: "${text}" is not a URL (like http://127.0.0.1:8000)`, {
        cause: error,
      });
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ReplayUsageError(`--target: "${text}" must be an http:// or https:// URL`);
    }
    return url;
  });
}

export function parseReplayFlags(argv: readonly string[]): ReplayFlags {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new ReplayUsageError(`${(error as Error).message}\nRun 'sluice replay --help' for the flags.`, {
      cause: error,
    });
  }
  const v = parsed.values;
  if (parsed.positionals.length > 0) {
    throw new ReplayUsageError(
      `unexpected argument "${parsed.positionals[0]}"; the trace is given with --trace FILE`,
    );
  }
  const help = v.help === true;
  if (!help && v.trace === undefined) throw new ReplayUsageError("--trace FILE is required (see --help)");
  if (!help && v.target === undefined) throw new ReplayUsageError("--target URL is required (see --help)");
  if (v.format !== undefined && v.format !== "mooncake" && v.format !== "azure") {
    throw new ReplayUsageError(`--format must be mooncake or azure, got "${v.format}"`);
  }
  let durationMs: number | undefined;
  let classMix = DEFAULT_CLASS_MIX;
  try {
    durationMs = v.duration === undefined ? undefined : parseDurationMs(v.duration);
    if (v["class-mix"] !== undefined) classMix = parseClassMix(v["class-mix"]);
  } catch (error) {
    throw new ReplayUsageError((error as Error).message, { cause: error });
  }
  return {
    help,
    tracePath: v.trace ?? "",
    format: v.format as ReplayFlags["format"],
    targets: targets(v.target),
    rateScale: num("rate-scale", v["rate-scale"], d.rateScale, (x) => x > 0, "a positive number"),
    durationMs,
    speedupFactor: num("speedup", v.speedup, d.speedupFactor, (x) => x > 0, "a positive number"),
    concurrencyLimit: num(
      "concurrency-limit",
      v["concurrency-limit"],
      d.concurrencyLimit,
      (x) => Number.isInteger(x) && x >= 0,
      "an integer ≥ 0",
    ),
    seed: num("seed", v.seed, d.seed, (x) => Number.isInteger(x) && x >= 0, "an integer ≥ 0"),
    spreadBucketMs: num(
      "spread-bucket-ms",
      v["spread-bucket-ms"],
      d.spreadBucketMs,
      (x) => x >= 0,
      "a number ≥ 0",
    ),
    classMix,
    model: v.model ?? d.model,
    requestTimeoutWallMs: num(
      "request-timeout-ms",
      v["request-timeout-ms"],
      d.requestTimeoutWallMs,
      (x) => x > 0,
      "a positive number",
    ),
    maxClientLagMs: num(
      "max-client-lag-ms",
      v["max-client-lag-ms"],
      d.maxClientLagMs,
      (x) => x > 0,
      "a positive number",
    ),
    json: v.json === true,
    progress: v.progress === true,
  };
}

function parse(argv: readonly string[]) {
  const s = { type: "string" } as const;
  const b = { type: "boolean" } as const;
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      trace: s,
      format: s,
      target: s,
      model: s,
      "rate-scale": s,
      duration: s,
      speedup: s,
      "concurrency-limit": s,
      seed: s,
      "spread-bucket-ms": s,
      "class-mix": s,
      "request-timeout-ms": s,
      "max-client-lag-ms": s,
      json: b,
      progress: b,
    },
  });
}
