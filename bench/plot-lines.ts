// A dependency-free SVG line plot for the scaling benchmarks: one or more series of (x, y) points, a
// log-2 or linear x axis (sizes that double: 1 → 32 frontends, 8 → 1 024 engines), a linear or
// log-10 y axis, a legend. @sluice/sim's `renderSweepSvg` is specific to goodput sweeps (offered-load x
// axis, two fixed panels), so the scaling plots have their own.

export interface LineSeries {
  name: string;
  points: readonly (readonly [x: number, y: number])[];
}

export interface LinePlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  /** x on a log-2 scale (x > 0). Default false. */
  logX?: boolean;
  /** y on a log-10 scale (y > 0). Default false. */
  logY?: boolean;
  widthPx?: number;
  heightPx?: number;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const MARGIN = { left: 70, right: 20, top: 40, bottom: 50 };

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** ~5 "nice" linear ticks (1, 2, 5 × 10^k steps) covering [0, max]. */
function linearTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 5;
  const pow = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= rough) ?? 10 * pow;
  const ticks: number[] = [];
  for (let v = 0; v < max + step - step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function formatTick(v: number): string {
  if (v === 0) return "0";
  if (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-3) return v.toExponential(0);
  return String(Number(v.toPrecision(4)));
}

export function renderLinePlotSvg(o: LinePlotOptions): string {
  const width = o.widthPx ?? 560;
  const height = o.heightPx ?? 340;
  const all = o.series.flatMap((s) => s.points);
  if (all.length === 0) throw new Error(`plot "${o.title}" has no points`);
  for (const [x, y] of all) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) throw new Error(`plot "${o.title}": non-finite point`);
    if (o.logX && x <= 0) throw new Error(`plot "${o.title}": log x axis needs x > 0, got ${x}`);
    if (o.logY && y <= 0) throw new Error(`plot "${o.title}": log y axis needs y > 0, got ${y}`);
  }
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const w = width - MARGIN.left - MARGIN.right;
  const h = height - MARGIN.top - MARGIN.bottom;

  let xTicks: number[];
  let xPos: (x: number) => number;
  if (o.logX) {
    const lo = Math.floor(Math.log2(Math.min(...xs)));
    const hi = Math.max(lo + 1, Math.ceil(Math.log2(Math.max(...xs))));
    xTicks = Array.from({ length: hi - lo + 1 }, (_, i) => 2 ** (lo + i));
    xPos = (x) => MARGIN.left + ((Math.log2(x) - lo) / (hi - lo)) * w;
  } else {
    xTicks = linearTicks(Math.max(...xs));
    const top = xTicks[xTicks.length - 1] as number;
    xPos = (x) => MARGIN.left + (x / top) * w;
  }
  let yTicks: number[];
  let yPos: (y: number) => number;
  if (o.logY) {
    const lo = Math.floor(Math.log10(Math.min(...ys)));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...ys))));
    yTicks = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
    yPos = (y) => MARGIN.top + h - ((Math.log10(y) - lo) / (hi - lo)) * h;
  } else {
    yTicks = linearTicks(Math.max(...ys));
    const top = yTicks[yTicks.length - 1] as number;
    yPos = (y) => MARGIN.top + h - (y / top) * h;
  }

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-weight="bold" font-size="13">${escapeXml(o.title)}</text>`,
  ];
  const x0 = MARGIN.left;
  const y0 = MARGIN.top + h;
  for (const t of xTicks) {
    const x = xPos(t).toFixed(1);
    out.push(`<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${y0}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${y0 + 16}" text-anchor="middle">${formatTick(t)}</text>`);
  }
  for (const t of yTicks) {
    const y = yPos(t).toFixed(1);
    out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + w}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${x0 - 6}" y="${Number(y) + 4}" text-anchor="end">${formatTick(t)}</text>`);
  }
  out.push(
    `<line x1="${x0}" y1="${y0}" x2="${x0 + w}" y2="${y0}" stroke="#000"/>`,
    `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${MARGIN.top}" stroke="#000"/>`,
    `<text x="${x0 + w / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(o.xLabel)}${o.logX ? " (log₂)" : ""}</text>`,
    `<text x="16" y="${MARGIN.top + h / 2}" text-anchor="middle" transform="rotate(-90 16 ${MARGIN.top + h / 2})">${escapeXml(o.yLabel)}${o.logY ? " (log)" : ""}</text>`,
  );
  o.series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length] as string;
    const sorted = [...s.points].sort((a, b) => a[0] - b[0]);
    const d = sorted
      .map(([x, y], i) => `${i === 0 ? "M" : "L"}${xPos(x).toFixed(1)},${yPos(y).toFixed(1)}`)
      .join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const [x, y] of sorted) {
      out.push(`<circle cx="${xPos(x).toFixed(1)}" cy="${yPos(y).toFixed(1)}" r="3" fill="${color}"/>`);
    }
    const ly = MARGIN.top + 8 + k * 16;
    out.push(
      `<line x1="${x0 + 10}" y1="${ly}" x2="${x0 + 30}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${x0 + 36}" y="${ly + 4}">${escapeXml(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

/**
 * Growth of y over x in words. "flat" when y grows less than 1.5× over the whole range; otherwise the
 * exponent k of the part that grows, y − base ∝ x^k between the middle and the last point, base being
 * the smallest y of the lower half (so a constant cost that dominates small sizes, or a noisy first
 * point, does not hide linear growth): "≈ O(n)" for k ≈ 1, "≈ O(n²)" for k ≈ 2, else "≈ O(n^k)".
 */
export function describeGrowth(points: readonly (readonly [number, number])[]): string {
  const sorted = [...points].filter(([x, y]) => x > 0 && y > 0).sort((a, b) => a[0] - b[0]);
  const midIndex = Math.floor((sorted.length - 1) / 2);
  const first = sorted[0];
  const middle = sorted[midIndex];
  const last = sorted[sorted.length - 1];
  if (!first || !middle || !last || middle[0] === last[0]) return "unknown (too few points)";
  const ratio = last[1] / first[1];
  const over = `${ratio.toFixed(1)}× from ${first[0]} to ${last[0]}`;
  if (ratio < 1.5) return `flat (${over})`;
  const base = Math.min(...sorted.slice(0, midIndex + 1).map((p) => p[1]));
  const k =
    middle[1] > base
      ? Math.log((last[1] - base) / (middle[1] - base)) / Math.log(last[0] / middle[0])
      : Math.log(last[1] / middle[1]) / Math.log(last[0] / middle[0]);
  const order = k > 0.75 && k < 1.3 ? "O(n)" : k > 1.7 && k < 2.3 ? "O(n²)" : `O(n^${k.toFixed(1)})`;
  return `≈ ${order} (${over})`;
}
