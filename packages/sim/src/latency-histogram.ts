// Log-bucketed histogram for per-token inter-token latencies: millions of samples per run in O(1) memory
// and O(1) per sample, percentiles within ±0.5 % (bucket ratio 1.01, value reported at the bucket's
// geometric middle). Exact values below MIN_MS are lumped into bucket 0.

const MIN_MS = 0.01;
const RATIO = 1.01;
const LOG_RATIO = Math.log(RATIO);
/** Covers 0.01 ms … ~0.01·1.01^2400 ≈ 2.3e8 ms. */
const BUCKETS = 2400;

export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #total = 0;

  get count(): number {
    return this.#total;
  }

  add(valueMs: number, times = 1): void {
    let b = valueMs <= MIN_MS ? 0 : Math.floor(Math.log(valueMs / MIN_MS) / LOG_RATIO) + 1;
    if (b >= BUCKETS) b = BUCKETS - 1;
    this.#counts[b] = (this.#counts[b] as number) + times;
    this.#total += times;
  }

  /** The q-quantile (0 < q ≤ 1), NaN when empty. */
  quantile(q: number): number {
    if (this.#total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.#total));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.#counts[b] as number;
      if (seen >= rank) return b === 0 ? MIN_MS : MIN_MS * RATIO ** (b - 0.5);
    }
    return MIN_MS * RATIO ** (BUCKETS - 1);
  }
}

/** Exact q-quantile (nearest rank) of `sorted` (ascending), NaN when empty. */
export function quantileSorted(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1] as number;
}
