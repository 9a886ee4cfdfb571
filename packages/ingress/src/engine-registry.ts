// Live engines from their etcd registrations (`{prefix}/engines/{worker_id}`, DESIGN §3). Values are
// accepted in the mock-engine's snake-case JSON and in proto3 JSON of `sluice.v1.EngineRegistration`.

export interface EngineEntry {
  workerId: string;
  model: string;
  /** Where the ingress sends requests: the engine-scheduler when there is one, else the engine. */
  url: string;
  blockSize: number;
  kvTotalBlocks: number;
}

/** What proxying and L1 need to know about engines; the etcd view implements it, tests may pass a list. */
export interface EngineDirectory {
  engines(): Iterable<EngineEntry>;
}

export function staticEngineDirectory(list: readonly EngineEntry[]): EngineDirectory {
  return { engines: () => list };
}

/** Decodes one registration; undefined when a required field is missing or has the wrong type. */
export function parseEngineRegistration(workerIdFromKey: string, text: string): EngineEntry | undefined {
  const value = JSON.parse(text) as unknown;
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const pick = (...names: string[]) => names.map((n) => v[n]).find((x) => x !== undefined && x !== "");
  const model = pick("model");
  const url = pick("scheduler_url", "schedulerUrl", "url", "engine_url", "engineUrl");
  const blockSize = Number(pick("block_size", "blockSize") ?? Number.NaN);
  const kvTotalBlocks = Number(pick("kv_total_blocks", "kvTotalBlocks") ?? 0);
  const workerId = pick("worker_id", "workerId") ?? workerIdFromKey;
  if (typeof model !== "string" || typeof url !== "string" || typeof workerId !== "string") return undefined;
  if (!/^https?:\/\//.test(url)) return undefined;
  if (!Number.isSafeInteger(blockSize) || blockSize < 1) return undefined;
  if (!Number.isFinite(kvTotalBlocks) || kvTotalBlocks < 0) return undefined;
  return { workerId, model, url: url.replace(/\/+$/, ""), blockSize, kvTotalBlocks };
}

/** Live engines serving `model`. */
export function enginesOf(directory: EngineDirectory, model: string): EngineEntry[] {
  const out: EngineEntry[] = [];
  for (const e of directory.engines()) if (e.model === model) out.push(e);
  return out;
}

/** Sorted union of the models of live engines (`GET /v1/models`). */
export function liveModels(directory: EngineDirectory): string[] {
  const models = new Set<string>();
  for (const e of directory.engines()) models.add(e.model);
  return [...models].sort();
}
