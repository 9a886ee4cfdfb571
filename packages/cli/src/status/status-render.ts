// Renders a StatusReport as plain-text tables for a terminal.

import type { StatusReport } from "./status-report.js";

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

const pct = (used: number, total: number): string =>
  total > 0 ? `${Math.round((used / total) * 100)}%` : "-";

export function renderStatus(r: StatusReport): string {
  const out: string[] = [`sluice status — namespace ${r.namespace} — ${r.takenAt}`, ""];

  out.push(`Instances (${r.instances.length})`);
  if (r.instances.length === 0) out.push("  none registered");
  else {
    out.push(
      ...table(
        ["ROLE", "ID", "VERSION", "STARTED", "ADDRESSES"],
        r.instances.map((i) => [
          i.role,
          i.id,
          i.version || "-",
          i.startedAt || "-",
          Object.entries(i.addresses)
            .map(([k, v]) => `${k}=${v}`)
            .join(" "),
        ]),
      ).map((l) => `  ${l}`),
    );
  }
  out.push("");

  out.push(`Engines (${r.engines.length})`);
  if (r.engines.length === 0) out.push("  none registered");
  else {
    out.push(
      ...table(
        [
          "WORKER",
          "MODEL",
          "KV USED/TOTAL",
          "RUNNING",
          "WAITING",
          "MAX SEQS",
          "PENDING PREFILL",
          "PREFILL TOK/S",
          "LOAD AGE",
        ],
        r.engines.map((e) => {
          const o = e.observed;
          return [
            e.workerId,
            e.model,
            o
              ? `${o.kvUsedBlocks}/${e.kvTotalBlocks} (${pct(o.kvUsedBlocks, e.kvTotalBlocks)})`
              : `?/${e.kvTotalBlocks}`,
            o ? String(o.running) : "?",
            o ? String(o.waiting) : "?",
            String(e.maxNumSeqs),
            o ? String(o.pendingPrefillTokens) : "?",
            o ? String(Math.round(o.prefillTokensPerS)) : "?",
            o ? `${o.ageMs} ms` : "no load seen",
          ];
        }),
      ).map((l) => `  ${l}`),
    );
  }
  out.push("");

  const source =
    r.cluster.source === "aggregator"
      ? `from cluster.load (aggregator leader ${r.cluster.leaderId ?? "?"})`
      : "computed locally: no aggregator is publishing cluster.load";
  out.push(`Cluster load ${source}`);
  if (r.cluster.models.length === 0) out.push("  no models with live engines");
  for (const m of r.cluster.models) {
    out.push(
      `  ${m.model}: ${m.liveEngines} engine(s), KV ${m.observedKvUsedBlocks}/${m.capacityKvBlocks} observed (${pct(m.observedKvUsedBlocks, m.capacityKvBlocks)}), ` +
        `running ${m.observedRunning}/${m.capacitySeqs}, waiting ${m.observedWaiting}, pending prefill ${m.observedPendingPrefillTokens} tok, data age ${m.freshnessMs} ms`,
    );
    out.push(
      m.predicted
        ? `    predicted: ${m.predicted.requests} requests / ${m.predicted.kvBlocks} KV blocks in flight (ingresses), ` +
            `${m.predicted.pendingPrefillTokens} prefill tok pending (routers)`
        : "    predicted: none reported (no ingress or router publishing)",
    );
    out.push(
      ...table(
        ["CLASS", "HEADROOM REQUESTS", "HEADROOM KV BLOCKS", "PREDICTED TTFT"],
        m.headroom.map((h) => [
          h.requestClass,
          String(h.inflightRequests),
          String(h.kvBlocks),
          h.predictedTtftMs > 0 ? `${Math.round(h.predictedTtftMs)} ms` : "-",
        ]),
      ).map((l) => `    ${l}`),
    );
  }
  out.push("");

  const rr = r.recentRejections;
  out.push(`Rejections in the last ${Math.round(rr.windowMs / 1000)} s`);
  if (rr.unavailable !== undefined) out.push(`  unavailable: ${rr.unavailable}`);
  else if (rr.counts.length === 0) out.push("  none");
  else
    out.push(
      ...table(
        ["LEVEL", "REASON", "COUNT"],
        rr.counts.map((c) => [c.level, c.reason, String(c.count)]),
      ).map((l) => `  ${l}`),
    );
  out.push("");

  out.push("TTFT prediction error (engine-schedulers)");
  if (r.predictionError.length === 0) out.push("  not exported by any reachable engine-scheduler");
  else {
    out.push(
      ...table(
        ["INSTANCE", "MEAN |ERR|/TTFT", "SAMPLES"],
        r.predictionError.map((p) => [
          p.instanceId,
          `${(p.meanRelativeError * 100).toFixed(1)}%`,
          String(p.samples),
        ]),
      ).map((l) => `  ${l}`),
    );
  }
  return `${out.join("\n")}\n`;
}
