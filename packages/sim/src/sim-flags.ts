// `sluice sim` flags: parsed with node:util parseArgs (strict), every value validated with a message
// naming the flag. Every flag and its default is listed in SIM_HELP.

import { parseArgs } from "node:util";
import { DEFAULT_CAPACITY_OPTIONS } from "./capacity.js";
import { type ClassMix, DEFAULT_CLASS_MIX, parseClassMix } from "./classes.js";
import { DEFAULT_DYNAMO_BUSY_OPTIONS } from "./dynamo-busy-policy.js";
import { DEFAULT_ENGINE_SETUP, DEFAULT_SPLITWISE_PROFILE, type EngineSetupOptions } from "./engine-setup.js";
import { SimUsageError } from "./errors.js";
import {
  type BaselineOptions,
  DEFAULT_BASELINE_OPTIONS,
  isPolicyName,
  POLICY_NAMES,
  type PolicyName,
} from "./experiment.js";
import { DEFAULT_DISPATCH_DELAY_MS, DEFAULT_LOAD_DELAY_MS } from "./simulator.js";
import type { TraceFormat } from "./trace.js";
import { DEFAULT_SPREAD_BUCKET_MS } from "./workload.js";

export const DEFAULT_ENGINES = 8;
export const DEFAULT_STATIC_LIMIT_PER_ENGINE = 32;
export const DEFAULT_SEED = 1;

export interface SimFlags {
  help: boolean;
  tracePath: string;
  format: TraceFormat | undefined;
  skipMalformed: boolean;
  engines: number;
  engine: Partial<EngineSetupOptions>;
  policies: PolicyName[];
  /** A fixed limit, or `auto`: sized from the capacity found (needs --find-capacity). */
  staticLimit: number | "auto";
  /** dynamo-busy and dynamo-ema tunables. */
  baselines: Omit<BaselineOptions, "staticLimit">;
  rateScale: number;
  durationMs: number | undefined;
  seed: number;
  spreadBucketMs: number;
  classMix: ClassMix;
  loadDelayMs: number;
  dispatchDelayMs: number;
  sweep: number[] | undefined;
  findCapacity: boolean;
  capacityTarget: number;
  capacityReference: "absolute" | "light-load";
  plotPath: string | undefined;
  json: boolean;
  progress: boolean;
}

export const SIM_HELP = `Usage: sluice sim --trace FILE [flags]

Replays a request trace through N simulated vLLM-like engines in virtual time, under each admission
policy, and reports goodput, SLO attainment, rejections, TTFT/ITL percentiles and wasted prefill.

Trace
  --trace FILE                  Mooncake JSONL (.jsonl) or Azure CSV (.csv)            (required)
  --format mooncake|azure       override the format chosen from the extension
  --skip-malformed              skip and count malformed lines instead of failing       (default: fail)
  --rate-scale X                compress arrivals X times (2 = twice the trace rate)     (default: 1)
  --duration D                  only requests in the first D of the trace (trace time, before
                                --rate-scale); D like 600, 600s, 10m, 1h                 (default: whole trace)
  --spread-bucket-ms MS         spread requests sharing a timestamp uniformly (seeded) over
                                up to MS; 0 replays timestamps literally                 (default: ${DEFAULT_SPREAD_BUCKET_MS})
  --seed N                      seed of every random choice (jitter, classes)           (default: ${DEFAULT_SEED})
  --class-mix SPEC              e.g. critical=0.2,standard=0.6,sheddable=0.2            (default: standard=1)

Cluster
  --engines N                   simulated engines                                       (default: ${DEFAULT_ENGINES})
  --num-gpu-blocks N            KV blocks per engine                                    (default: ${DEFAULT_ENGINE_SETUP.numGpuBlocks})
  --block-size N                tokens per KV block                                     (default: ${DEFAULT_ENGINE_SETUP.blockSize})
  --max-num-seqs N              max running sequences per engine                        (default: ${DEFAULT_ENGINE_SETUP.maxNumSeqs})
  --max-num-batched-tokens N    token budget per engine step                            (default: ${DEFAULT_ENGINE_SETUP.maxNumBatchedTokens})
  --step-model dynamo|splitwise step-time profile                                       (default: dynamo)
  --splitwise-csv FILE          Splitwise perf CSV, needed by --step-model splitwise
  --splitwise-model NAME        Splitwise model column                                  (default: ${DEFAULT_SPLITWISE_PROFILE.model})
  --splitwise-hardware NAME     Splitwise hardware column                               (default: ${DEFAULT_SPLITWISE_PROFILE.hardware})
  --splitwise-tp N              Splitwise tensor_parallel column                        (default: ${DEFAULT_SPLITWISE_PROFILE.tensorParallel})
  --load-delay-ms MS            engine load snapshot → router/policy delay              (default: ${DEFAULT_LOAD_DELAY_MS})
  --dispatch-delay-ms MS        admission → request reaches its engine                  (default: ${DEFAULT_DISPATCH_DELAY_MS})

Policies and runs
  --policy LIST                 comma-separated: none, static, dynamo-busy, dynamo-ema,
                                sluice-l1, sluice-l3, sluice-l1l2, sluice-l1l2l3        (default: none,static)
  --static-limit N|auto         global in-flight limit of the static policy; auto = 1 + p99
                                of the in-flight count arrivals saw under 'none' at
                                capacity (needs --find-capacity)                        (default: ${DEFAULT_STATIC_LIMIT_PER_ENGINE} × engines)
  --busy-thresholds D,F         dynamo-busy: a worker is busy when KV usage > D or pending
                                prefill tokens > F × max_num_batched_tokens              (default: ${DEFAULT_DYNAMO_BUSY_OPTIONS.decodeBlockThreshold},${DEFAULT_DYNAMO_BUSY_OPTIONS.prefillBatchFraction})
  --ema-tau-ms MS               dynamo-ema: time constant of the TTFT / ITL averages     (default: ${DEFAULT_BASELINE_OPTIONS.emaTimeConstantMs})
  --ema-thresholds T,I          dynamo-ema: reject while EMA TTFT > T ms or ITL > I ms   (default: ${DEFAULT_BASELINE_OPTIONS.emaTtftThresholdMs},${DEFAULT_BASELINE_OPTIONS.emaItlThresholdMs})
  --find-capacity               bisect the largest rate scale at which 'none' attains
                                --capacity-target; report goodput against it            (default: off)
  --capacity-target F           attainment that defines capacity, in (0, 1]             (default: ${DEFAULT_CAPACITY_OPTIONS.targetAttainment})
  --capacity-reference R        absolute: the target is an attainment; light-load: it is
                                a fraction of what 'none' attains at 1/16 of the start
                                scale (for traces with requests no load can save)      (default: ${DEFAULT_CAPACITY_OPTIONS.reference})
  --sweep LIST                  multipliers of the rate scale (of capacity when found),
                                e.g. 0.5,1,1.5,2,3,4                                    (default: one run)
  --plot FILE.svg               write goodput and attainment vs offered load (needs --sweep)

Output
  --json                        JSON array on stdout, one object per policy and run     (default: table)
  --progress                    progress bar on stderr even when it is not a TTY       (default: TTY only)
  -h, --help                    this text
`;

function int(flag: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(v) || v < min) {
    throw new SimUsageError(`--${flag} must be an integer ≥ ${min}, got "${raw}"`);
  }
  return v;
}

function num(
  flag: string,
  raw: string | undefined,
  fallback: number,
  check: (v: number) => boolean,
  rule: string,
): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || !check(v))
    throw new SimUsageError(`--${flag} must be ${rule}, got "${raw}"`);
  return v;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `600` (seconds), `600s`, `10m`, `1h`, `500ms` → ms. */
export function parseDurationMs(raw: string): number {
  const m = DURATION.exec(raw.trim());
  const ms = m ? Number(m[1]) * (UNIT_MS[m[2] ?? "s"] as number) : Number.NaN;
  if (!(ms > 0))
    throw new SimUsageError(`--duration must be a positive duration like 600, 600s, 10m or 1h, got "${raw}"`);
  return ms;
}

function list(flag: string, raw: string): number[] {
  const values = raw.split(",").map((s) => Number(s.trim()));
  if (
    values.length === 0 ||
    values.some((v, i) => !(v > 0) || !Number.isFinite(v) || raw.split(",")[i]?.trim() === "")
  ) {
    throw new SimUsageError(`--${flag} must be a comma-separated list of positive numbers, got "${raw}"`);
  }
  return values;
}

function pair(flag: string, raw: string): [number, number] {
  const parts = raw.split(",").map((p) => p.trim());
  const values = parts.map(Number);
  if (
    parts.length !== 2 ||
    parts.some((p) => p === "") ||
    values.some((v) => !(v > 0) || !Number.isFinite(v))
  ) {
    throw new SimUsageError(`--${flag} must be two positive numbers A,B, got "${raw}"`);
  }
  return [values[0] as number, values[1] as number];
}

function baselineFlags(
  busy: string | undefined,
  tau: string | undefined,
  ema: string | undefined,
): Omit<BaselineOptions, "staticLimit"> {
  const d = DEFAULT_BASELINE_OPTIONS;
  const [decodeBlockThreshold, prefillBatchFraction] =
    busy === undefined
      ? [d.dynamoBusy.decodeBlockThreshold, d.dynamoBusy.prefillBatchFraction]
      : pair("busy-thresholds", busy);
  if (decodeBlockThreshold > 1) {
    throw new SimUsageError(
      `--busy-thresholds: the decode threshold is a KV fraction in (0, 1], got ${decodeBlockThreshold}`,
    );
  }
  const [emaTtftThresholdMs, emaItlThresholdMs] =
    ema === undefined ? [d.emaTtftThresholdMs, d.emaItlThresholdMs] : pair("ema-thresholds", ema);
  return {
    dynamoBusy: { decodeBlockThreshold, prefillBatchFraction },
    emaTimeConstantMs: num("ema-tau-ms", tau, d.emaTimeConstantMs, (x) => x > 0, "a number > 0"),
    emaTtftThresholdMs,
    emaItlThresholdMs,
  };
}

function capacityReference(raw: string | undefined): "absolute" | "light-load" {
  if (raw === undefined) return DEFAULT_CAPACITY_OPTIONS.reference;
  if (raw !== "absolute" && raw !== "light-load") {
    throw new SimUsageError(`--capacity-reference must be absolute or light-load, got "${raw}"`);
  }
  return raw;
}

export function parseSimFlags(argv: readonly string[]): SimFlags {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new SimUsageError(`${(error as Error).message}\nRun 'sluice sim --help' for the flags.`, {
      cause: error,
    });
  }
  const v = parsed.values;
  if (parsed.positionals.length > 0) {
    throw new SimUsageError(
      `unexpected argument "${parsed.positionals[0]}"; the trace is given with --trace FILE`,
    );
  }
  const help = v.help === true;
  if (!help && v.trace === undefined) throw new SimUsageError("--trace FILE is required (see --help)");
  if (v.format !== undefined && v.format !== "mooncake" && v.format !== "azure") {
    throw new SimUsageError(`--format must be mooncake or azure, got "${v.format}"`);
  }
  const stepModel = v["step-model"] ?? "dynamo";
  if (stepModel !== "dynamo" && stepModel !== "splitwise") {
    throw new SimUsageError(`--step-model must be dynamo or splitwise, got "${stepModel}"`);
  }
  const policies = (v.policy ?? "none,static").split(",").map((s) => s.trim());
  for (const p of policies)
    if (!isPolicyName(p))
      throw new SimUsageError(`--policy: unknown policy "${p}"; known: ${POLICY_NAMES.join(", ")}`);
  const engines = int("engines", v.engines, DEFAULT_ENGINES, 1);
  const sweep = v.sweep === undefined ? undefined : list("sweep", v.sweep);
  if (v["static-limit"] === "auto" && v["find-capacity"] !== true) {
    throw new SimUsageError("--static-limit auto sizes the limit from capacity: it needs --find-capacity");
  }
  if (v.plot !== undefined && sweep === undefined)
    throw new SimUsageError("--plot needs --sweep (it plots a sweep)");
  const engine: Partial<EngineSetupOptions> = {
    numGpuBlocks: int("num-gpu-blocks", v["num-gpu-blocks"], DEFAULT_ENGINE_SETUP.numGpuBlocks, 1),
    blockSize: int("block-size", v["block-size"], DEFAULT_ENGINE_SETUP.blockSize, 1),
    maxNumSeqs: int("max-num-seqs", v["max-num-seqs"], DEFAULT_ENGINE_SETUP.maxNumSeqs, 1),
    maxNumBatchedTokens: int(
      "max-num-batched-tokens",
      v["max-num-batched-tokens"],
      DEFAULT_ENGINE_SETUP.maxNumBatchedTokens,
      1,
    ),
    stepModel,
    splitwiseProfile: {
      model: v["splitwise-model"] ?? DEFAULT_SPLITWISE_PROFILE.model,
      hardware: v["splitwise-hardware"] ?? DEFAULT_SPLITWISE_PROFILE.hardware,
      tensorParallel: int("splitwise-tp", v["splitwise-tp"], DEFAULT_SPLITWISE_PROFILE.tensorParallel, 1),
    },
    ...(v["splitwise-csv"] !== undefined ? { splitwiseCsvPath: v["splitwise-csv"] } : {}),
  };
  return {
    help,
    tracePath: v.trace ?? "",
    format: v.format as TraceFormat | undefined,
    skipMalformed: v["skip-malformed"] === true,
    engines,
    engine,
    policies: policies as PolicyName[],
    staticLimit:
      v["static-limit"] === "auto"
        ? "auto"
        : int("static-limit", v["static-limit"], DEFAULT_STATIC_LIMIT_PER_ENGINE * engines, 1),
    baselines: baselineFlags(v["busy-thresholds"], v["ema-tau-ms"], v["ema-thresholds"]),
    rateScale: num("rate-scale", v["rate-scale"], 1, (x) => x > 0, "a positive number"),
    durationMs: v.duration === undefined ? undefined : parseDurationMs(v.duration),
    seed: int("seed", v.seed, DEFAULT_SEED, 0),
    spreadBucketMs: num(
      "spread-bucket-ms",
      v["spread-bucket-ms"],
      DEFAULT_SPREAD_BUCKET_MS,
      (x) => x >= 0,
      "a number ≥ 0",
    ),
    classMix: v["class-mix"] === undefined ? DEFAULT_CLASS_MIX : parseClassMix(v["class-mix"]),
    loadDelayMs: num(
      "load-delay-ms",
      v["load-delay-ms"],
      DEFAULT_LOAD_DELAY_MS,
      (x) => x >= 0,
      "a number ≥ 0",
    ),
    dispatchDelayMs: num(
      "dispatch-delay-ms",
      v["dispatch-delay-ms"],
      DEFAULT_DISPATCH_DELAY_MS,
      (x) => x >= 0,
      "a number ≥ 0",
    ),
    sweep,
    findCapacity: v["find-capacity"] === true,
    capacityTarget: num(
      "capacity-target",
      v["capacity-target"],
      DEFAULT_CAPACITY_OPTIONS.targetAttainment,
      (x) => x > 0 && x <= 1,
      "in (0, 1]",
    ),
    capacityReference: capacityReference(v["capacity-reference"]),
    plotPath: v.plot,
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
      "skip-malformed": b,
      "rate-scale": s,
      duration: s,
      "spread-bucket-ms": s,
      seed: s,
      "class-mix": s,
      engines: s,
      "num-gpu-blocks": s,
      "block-size": s,
      "max-num-seqs": s,
      "max-num-batched-tokens": s,
      "step-model": s,
      "splitwise-csv": s,
      "splitwise-model": s,
      "splitwise-hardware": s,
      "splitwise-tp": s,
      "load-delay-ms": s,
      "dispatch-delay-ms": s,
      policy: s,
      "static-limit": s,
      "busy-thresholds": s,
      "ema-tau-ms": s,
      "ema-thresholds": s,
      "find-capacity": b,
      "capacity-target": s,
      "capacity-reference": s,
      sweep: s,
      plot: s,
      json: b,
      progress: b,
    },
  });
}
