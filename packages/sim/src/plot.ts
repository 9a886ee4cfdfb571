// Hand-written SVG (no dependencies) of a sweep: goodput and SLO attainment of admitted requests against
// offered load, one line per policy, two panels side by side.

import type { PolicyReport } from "./report.js";

const PANEL_W = 420;
const PANEL_H = 300;
const MARGIN = { left: 60, right: 20, top: 40, bottom: 50 };
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** ~5 "nice" ticks (1, 2, 5 × 10^k steps) covering [0, max]. */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 5;
  const pow = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= rough) ?? 10 * pow;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if ((ticks[ticks.length - 1] as number) < max) ticks.push(Number((ticks.length * step).toPrecision(12)));
  return ticks;
}

interface Series {
  name: string;
  points: [x: number, y: number][];
}

function panel(
  x0: number,
  title: string,
  yLabel: string,
  series: readonly Series[],
  xMax: number,
  yMax: number,
  reference?: { y: number; label: string },
): string {
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const xTicks = niceTicks(xMax);
  const yTicks = niceTicks(yMax);
  const xTop = xTicks[xTicks.length - 1] as number;
  const yTop = yTicks[yTicks.length - 1] as number;
  const px = (x: number): number => x0 + MARGIN.left + (x / xTop) * w;
  const py = (y: number): number => MARGIN.top + h - (y / yTop) * h;
  const out: string[] = [];
  out.push(
    `<text x="${x0 + PANEL_W / 2}" y="20" text-anchor="middle" font-weight="bold">${escapeXml(title)}</text>`,
  );
  for (const t of xTicks) {
    out.push(`<line x1="${px(t)}" y1="${py(0)}" x2="${px(t)}" y2="${py(0) + 5}" stroke="#000"/>`);
    out.push(`<line x1="${px(t)}" y1="${py(0)}" x2="${px(t)}" y2="${MARGIN.top}" stroke="#eee"/>`);
    out.push(`<text x="${px(t)}" y="${py(0) + 18}" text-anchor="middle">${t}</text>`);
  }
  for (const t of yTicks) {
    out.push(`<line x1="${px(0) - 5}" y1="${py(t)}" x2="${px(0)}" y2="${py(t)}" stroke="#000"/>`);
    out.push(`<line x1="${px(0)}" y1="${py(t)}" x2="${px(xTop)}" y2="${py(t)}" stroke="#eee"/>`);
    out.push(`<text x="${px(0) - 8}" y="${py(t) + 4}" text-anchor="end">${t}</text>`);
  }
  out.push(`<line x1="${px(0)}" y1="${py(0)}" x2="${px(xTop)}" y2="${py(0)}" stroke="#000"/>`);
  out.push(`<line x1="${px(0)}" y1="${py(0)}" x2="${px(0)}" y2="${MARGIN.top}" stroke="#000"/>`);
  out.push(
    `<text x="${px(xTop / 2)}" y="${PANEL_H - 10}" text-anchor="middle">offered load (requests/s)</text>`,
    `<text x="${x0 + 15}" y="${MARGIN.top + h / 2}" text-anchor="middle" transform="rotate(-90 ${x0 + 15} ${MARGIN.top + h / 2})">${escapeXml(yLabel)}</text>`,
  );
  if (reference && reference.y <= yTop) {
    out.push(
      `<line x1="${px(0)}" y1="${py(reference.y)}" x2="${px(xTop)}" y2="${py(reference.y)}" stroke="#888" stroke-dasharray="4 3"/>`,
      `<text x="${px(xTop) - 4}" y="${py(reference.y) - 4}" text-anchor="end" fill="#666">${escapeXml(reference.label)}</text>`,
    );
  }
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length] as string;
    const d = s.points
      .map(([x, y], i) => `${i === 0 ? "M" : "L"}${px(x).toFixed(1)},${py(y).toFixed(1)}`)
      .join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const [x, y] of s.points) {
      out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
    }
  });
  return out.join("\n");
}

export interface SweepPlotOptions {
  title: string;
  /** Goodput reference line (max sustainable), requests/s. */
  capacityGoodputRps?: number;
}

/** Renders the sweep's reports (any order; grouped by policy, sorted by offered load). */
export function renderSweepSvg(reports: readonly PolicyReport[], options: SweepPlotOptions): string {
  const policies = [...new Set(reports.map((r) => r.policy))];
  const byPolicy = (pick: (r: PolicyReport) => number): Series[] =>
    policies.map((name) => ({
      name,
      points: reports
        .filter((r) => r.policy === name)
        .sort((a, b) => a.offered_rps - b.offered_rps)
        .map((r): [number, number] => [r.offered_rps, pick(r)]),
    }));
  const xMax = Math.max(...reports.map((r) => r.offered_rps), 0);
  const goodMax = Math.max(...reports.map((r) => r.goodput_rps), options.capacityGoodputRps ?? 0, 0);
  const width = PANEL_W * 2;
  const height = PANEL_H + 30 + policies.length * 18;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    panel(
      0,
      `${options.title}: goodput`,
      "goodput (requests/s)",
      byPolicy((r) => r.goodput_rps),
      xMax,
      goodMax,
      options.capacityGoodputRps !== undefined
        ? { y: options.capacityGoodputRps, label: "max sustainable" }
        : undefined,
    ),
    panel(
      PANEL_W,
      `${options.title}: SLO attainment`,
      "attainment of admitted (%)",
      byPolicy((r) => r.slo_attainment_admitted * 100),
      xMax,
      100,
      { y: 99, label: "99 %" },
    ),
  ];
  policies.forEach((name, k) => {
    const y = PANEL_H + 20 + k * 18;
    parts.push(
      `<line x1="${MARGIN.left}" y1="${y}" x2="${MARGIN.left + 24}" y2="${y}" stroke="${COLORS[k % COLORS.length]}" stroke-width="2"/>`,
      `<text x="${MARGIN.left + 30}" y="${y + 4}">${escapeXml(name)}</text>`,
    );
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
