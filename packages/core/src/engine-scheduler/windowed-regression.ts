// Windowed ridge regression y ≈ θ·x over the last `windowSize` samples, shrunk towards a prior θ₀:
//   minimise Σ (yᵢ − θ·xᵢ)² + λ·‖θ − θ₀‖²   ⇒   (XᵀX + λI)·θ = Xᵀy + λ·θ₀
// The prior is what the online engine models are seeded with (policy / defaults). λ starts at
// `priorWeight` (the seed counts as that many samples) and fades linearly to a small floor over the
// warm-up, so a full window is fitted almost exactly, even along poorly conditioned directions
// (u and u² are nearly collinear), while the floor still keeps directions the data cannot identify
// (every request the same size, the batch never changing) at their prior: with λ → 0 the solution is
// the exact fit closest to θ₀.
// Memory is fixed: a ring buffer of samples plus the running sums XᵀX and Xᵀy, which are updated in
// O(d²) per sample and rebuilt from the buffer once per window so float drift cannot accumulate.
// Outliers are winsorised: once warmed up, a sample's y is clamped to [pred / k, pred · k] of the
// current fit, so one stalled request moves the fit by a bounded amount and a real regime change still
// gets through within a few windows (each sample may move it by up to k×).
import { EngineSchedulerConfigError } from "./errors.js";

export interface WindowedRegressionOptions {
  /** Prior coefficients θ₀ (its length is the number of features d, ≤ 8). */
  prior: readonly number[];
  /** Initial ridge weight λ per coefficient (same length as `prior`), in sample-equivalents. */
  priorWeight: readonly number[];
  /** Samples kept. */
  windowSize: number;
  /** Winsorisation factor k > 1 (see above). */
  outlierFactor: number;
  /** Samples over which λ fades to its floor and before winsorisation starts (the prior may be far off). */
  warmupSamples: number;
}

export interface WindowedRegression {
  /** Adds a sample; the caller has validated x (finite) and y (finite, > 0). */
  add(x: readonly number[], y: number): void;
  /** Current θ (solved lazily after changes), a fresh copy. */
  coefficients(): readonly number[];
  /** θ₍i₎ without allocating (the hot path reads coefficients on every decision). */
  coefficient(i: number): number;
  predict(x: readonly number[]): number;
  /** Samples in the window. */
  readonly samples: number;
  /** Samples ever added (for metrics). */
  readonly totalSamples: number;
}

/** λ after warm-up as a fraction of `priorWeight`: small enough not to bias a full window. */
const PRIOR_FLOOR_FRACTION = 1e-4;

export function createWindowedRegression(options: WindowedRegressionOptions): WindowedRegression {
  const d = options.prior.length;
  if (d < 1 || d > 8) throw new EngineSchedulerConfigError(`regression: 1..8 features, got ${d}`);
  if (options.priorWeight.length !== d)
    throw new EngineSchedulerConfigError("regression: priorWeight must have one entry per feature");
  if (!options.prior.every(Number.isFinite) || !options.priorWeight.every((w) => Number.isFinite(w) && w > 0))
    throw new EngineSchedulerConfigError("regression: prior must be finite and priorWeight > 0");
  if (!(Number.isInteger(options.windowSize) && options.windowSize >= 1))
    throw new EngineSchedulerConfigError(
      `regression: windowSize must be an integer ≥ 1, got ${options.windowSize}`,
    );
  if (!(options.outlierFactor > 1))
    throw new EngineSchedulerConfigError(
      `regression: outlierFactor must be > 1, got ${options.outlierFactor}`,
    );

  const w = options.windowSize;
  const xs = new Float64Array(w * d);
  const ys = new Float64Array(w);
  const xtx = new Float64Array(d * d);
  const xty = new Float64Array(d);
  const theta = Float64Array.from(options.prior);
  let count = 0;
  let total = 0;
  let head = 0; // next slot to write
  let sinceRebuild = 0;
  let dirty = false;

  const accumulate = (slot: number, sign: number) => {
    const o = slot * d;
    const y = ys[slot]!;
    for (let i = 0; i < d; i++) {
      const xi = xs[o + i]!;
      xty[i] = xty[i]! + sign * xi * y;
      for (let j = 0; j < d; j++) xtx[i * d + j] = xtx[i * d + j]! + sign * xi * xs[o + j]!;
    }
  };
  const rebuild = () => {
    xtx.fill(0);
    xty.fill(0);
    for (let k = 0; k < count; k++) accumulate((head - 1 - k + w) % w, 1);
    sinceRebuild = 0;
  };

  // Gaussian elimination with partial pivoting on the (d × d+1) augmented system; d ≤ 8.
  const a = new Float64Array(d * (d + 1));
  const solve = () => {
    const cols = d + 1;
    const fade = Math.max(PRIOR_FLOOR_FRACTION, 1 - total / Math.max(1, options.warmupSamples));
    for (let i = 0; i < d; i++) {
      const lambda = options.priorWeight[i]! * fade;
      for (let j = 0; j < d; j++) a[i * cols + j] = xtx[i * d + j]! + (i === j ? lambda : 0);
      a[i * cols + d] = xty[i]! + lambda * options.prior[i]!;
    }
    for (let c = 0; c < d; c++) {
      let pivot = c;
      for (let r = c + 1; r < d; r++)
        if (Math.abs(a[r * cols + c]!) > Math.abs(a[pivot * cols + c]!)) pivot = r;
      if (pivot !== c)
        for (let j = 0; j < cols; j++) {
          const t = a[c * cols + j]!;
          a[c * cols + j] = a[pivot * cols + j]!;
          a[pivot * cols + j] = t;
        }
      const p = a[c * cols + c]!;
      // λ > 0 makes the matrix positive definite, so p is never 0 in exact arithmetic.
      for (let r = c + 1; r < d; r++) {
        const f = a[r * cols + c]! / p;
        if (f !== 0) for (let j = c; j < cols; j++) a[r * cols + j] = a[r * cols + j]! - f * a[c * cols + j]!;
      }
    }
    for (let r = d - 1; r >= 0; r--) {
      let s = a[r * cols + d]!;
      for (let j = r + 1; j < d; j++) s -= a[r * cols + j]! * theta[j]!;
      theta[r] = s / a[r * cols + r]!;
    }
    if (!theta.every(Number.isFinite)) theta.set(options.prior); // cannot happen with λ > 0; never serve NaN
    dirty = false;
  };

  const predict = (x: readonly number[]) => {
    if (dirty) solve();
    let s = 0;
    for (let i = 0; i < d; i++) s += theta[i]! * x[i]!;
    return s;
  };

  return {
    add(x, y) {
      if (total >= options.warmupSamples) {
        const pred = predict(x);
        if (pred > 0) y = Math.min(pred * options.outlierFactor, Math.max(pred / options.outlierFactor, y));
      }
      if (count === w) accumulate(head, -1);
      else count++;
      for (let i = 0; i < d; i++) xs[head * d + i] = x[i]!;
      ys[head] = y;
      accumulate(head, 1);
      head = (head + 1) % w;
      total++;
      if (++sinceRebuild >= w) rebuild();
      dirty = true;
    },
    coefficients() {
      if (dirty) solve();
      return Array.from(theta);
    },
    predict,
    coefficient(i) {
      if (dirty) solve();
      return theta[i]!;
    },
    get samples() {
      return count;
    },
    get totalSamples() {
      return total;
    },
  };
}
