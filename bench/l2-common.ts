// Shared workload for the L2 micro-benchmarks (bench/l2-index.ts, bench/l2-route.ts).
//
// Shape (issue 5): 128 workers, 1 048 576 (block, worker) entries indexed = 8192 blocks per worker,
// 8k-token requests = 128 blocks of 64 tokens. Each worker caches prompts of 128 blocks until it holds 8192 distinct blocks; a prompt is
// one of 32 shared "system prompt" prefixes (16–64 blocks) followed by a conversation-specific tail, so
// the index has realistic prefix sharing. Block hashes are real chained xxh3 sequence hashes
// (`chainSequenceHashes` over seeded local hashes), as Dynamo workers emit them.

import { Session } from "node:inspector/promises";
import { cpus, loadavg } from "node:os";
import { constants, type PerformanceEntry, PerformanceObserver } from "node:perf_hooks";
import { chainSequenceHashes } from "@sluice/core";

export const WORKERS = 128;
export const BLOCKS_PER_REQUEST = 128;
export const BLOCKS_PER_WORKER = 8192;
export const SYSTEM_PROMPTS = 32;

/** Deterministic PRNG (LCG) so every run indexes the same data. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomU64(random: () => number): bigint {
  return (BigInt(Math.floor(random() * 2 ** 32)) << 32n) | BigInt(Math.floor(random() * 2 ** 32));
}

export interface Workload {
  /** Sequence hashes of each worker's cached prompts. */
  perWorker: bigint[][][];
  /** Prompts whose whole 128 blocks are cached on at least one worker (worst case: full walk). */
  hitQueries: bigint[][];
  /** Prompts sharing only a system prefix with the cache. */
  prefixQueries: bigint[][];
}

export function buildWorkload(seed = 1): Workload {
  const random = rng(seed);
  const systems = Array.from({ length: SYSTEM_PROMPTS }, () => {
    const len = 16 + Math.floor(random() * 49);
    return Array.from({ length: len }, () => randomU64(random));
  });
  const prompt = () => {
    const system = systems[Math.floor(random() * systems.length)]!;
    const tail = Array.from({ length: BLOCKS_PER_REQUEST - system.length }, () => randomU64(random));
    return chainSequenceHashes([...system, ...tail]);
  };
  // Prompts until the worker holds 8192 distinct blocks (shared system prefixes count once).
  const perWorker = Array.from({ length: WORKERS }, () => {
    const prompts: bigint[][] = [];
    const held = new Set<bigint>();
    while (held.size < BLOCKS_PER_WORKER) {
      const p = prompt().slice(0, BLOCKS_PER_REQUEST);
      const room = BLOCKS_PER_WORKER - held.size;
      const fresh = p.filter((h) => !held.has(h)).length;
      // Trim the last prompt so the worker ends at exactly 8192 blocks.
      const kept = fresh <= room ? p : p.slice(0, p.length - (fresh - room));
      for (const h of kept) held.add(h);
      prompts.push(kept);
    }
    return prompts;
  });
  const hitQueries = Array.from({ length: 512 }, () => {
    const w = perWorker[Math.floor(random() * WORKERS)]!;
    return w[Math.floor(random() * w.length)]!;
  });
  const prefixQueries = Array.from({ length: 512 }, prompt);
  return { perWorker, hitQueries, prefixQueries };
}

export function percentile(sortedUs: number[], p: number): number {
  return sortedUs[Math.min(sortedUs.length - 1, Math.floor(sortedUs.length * p))]!;
}

/** Times `fn` `n` times (after `warmup` untimed calls), returning sorted durations in µs. */
export function timeEach(n: number, warmup: number, fn: (i: number) => void): number[] {
  for (let i = 0; i < warmup; i++) fn(i);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    fn(i);
    out[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return out.sort((a, b) => a - b);
}

/**
 * The machine's own tail: a fixed ~`workUs` µs loop (no allocation, no memory traffic) timed exactly
 * like the calls under test. Its p99 above its p50 is what scheduling, interrupts and neighbours add
 * to any call at that moment, so a latency tail can be judged against it in the same run.
 */
export function noiseFloor(n = 20_000): { p50: number; p99: number } {
  const data = new Float64Array(4096).map((_, i) => i);
  let sink = 0;
  const d = timeEach(n, 1000, () => {
    let s = 0;
    for (let i = 0; i < data.length; i++) s += data[i]!;
    sink += s;
  });
  if (sink === 0) throw new Error("unreachable");
  return { p50: percentile(d, 0.5), p99: percentile(d, 0.99) };
}

/** Where the numbers come from, including how busy the machine was (shared CI boxes are noisy). */
export function environment(): string {
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
  return `Node ${process.version}, ${process.platform}/${process.arch}, ${cpus().length} CPUs, load average ${load}`;
}

export interface GcTally {
  /** Young-generation collections (scavenges) that started during the measured code. */
  minor: number;
  /** Full (mark-compact) collections, incremental marking steps included. */
  major: number;
  /** Their summed pause, ms. */
  pauseMs: number;
}

/**
 * Garbage collections during the synchronous `run`. GC entries reach a PerformanceObserver only from
 * the event loop, so this yields once afterwards and keeps the entries that started inside the window.
 */
export async function gcDuring(run: () => void): Promise<GcTally> {
  const entries: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  observer.observe({ entryTypes: ["gc"] });
  const from = performance.now();
  run();
  const to = performance.now();
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 10));
  observer.disconnect();
  const tally: GcTally = { minor: 0, major: 0, pauseMs: 0 };
  for (const e of entries) {
    if (e.startTime < from || e.startTime > to) continue;
    const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) tally.minor++;
    else tally.major++;
    tally.pauseMs += e.duration;
  }
  return tally;
}

/**
 * Heap bytes allocated per call of `fn`, garbage included: V8's sampling heap profiler (every
 * ~`intervalBytes` bytes of allocation is sampled with its size, collected or not) over `calls`
 * calls after a warm-up, so compilation is not counted. Heap-usage deltas proved unreliable for this
 * (collections and old-space growth in between).
 */
export async function bytesPerCall(
  fn: (i: number) => void,
  calls = 5000,
  intervalBytes = 64,
): Promise<number> {
  let i = 0;
  for (let k = 0; k < 2000; k++) fn(i++);
  const session = new Session();
  session.connect();
  try {
    await session.post("HeapProfiler.startSampling", {
      samplingInterval: intervalBytes,
      includeObjectsCollectedByMinorGC: true,
      includeObjectsCollectedByMajorGC: true,
    });
    for (let k = 0; k < calls; k++) fn(i++);
    const { profile } = await session.post("HeapProfiler.stopSampling");
    let bytes = 0;
    const stack = [profile.head];
    while (stack.length > 0) {
      const node = stack.pop()!;
      bytes += node.selfSize;
      stack.push(...node.children);
    }
    return bytes / calls;
  } finally {
    session.disconnect();
  }
}
