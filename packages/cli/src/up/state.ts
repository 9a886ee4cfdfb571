import { renameSync, writeFileSync } from "node:fs";

/**
 * Where everything in a local stack listens: printed by `sluice up` and written with
 * `--state-file`. Scripts and tests rely on this shape; URLs are absolute and `metrics` is the
 * full `/metrics` URL. Roles that do not exist yet in this build are empty lists.
 */
export interface StackState {
  nats: string;
  etcd: string;
  ingress: { id: string; url: string; metrics: string }[];
  router: { id: string; grpc: string; metrics: string }[];
  engine_scheduler: { id: string; url: string; metrics: string; worker_id: string }[];
  engine: { id: string; url: string; metrics: string }[];
  aggregator: { id: string; metrics: string }[];
}

export function emptyState(nats: string, etcd: string): StackState {
  return { nats, etcd, ingress: [], router: [], engine_scheduler: [], engine: [], aggregator: [] };
}

/** Written to a temp file and renamed (atomic on one filesystem): a polling reader never sees partial JSON. */
export function writeStateFile(path: string, state: StackState): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, path);
}

export function renderState(state: StackState): string {
  const rows: [string, string, string][] = [
    ["nats", "", state.nats],
    ["etcd", "", state.etcd],
  ];
  for (const e of state.engine) rows.push(["mock-engine", e.id, `${e.url}  metrics ${e.metrics}`]);
  for (const s of state.engine_scheduler)
    rows.push(["engine-scheduler", s.id, `${s.url}  metrics ${s.metrics}`]);
  for (const r of state.router) rows.push(["router", r.id, `${r.grpc}  metrics ${r.metrics}`]);
  for (const i of state.ingress) rows.push(["ingress", i.id, `${i.url}  metrics ${i.metrics}`]);
  for (const a of state.aggregator) rows.push(["aggregator", a.id, `metrics ${a.metrics}`]);
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  return rows.map(([role, id, where]) => `  ${role.padEnd(w0)}  ${id.padEnd(w1)}  ${where}`).join("\n");
}
