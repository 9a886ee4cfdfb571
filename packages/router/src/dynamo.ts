// Running beside a real NVIDIA Dynamo deployment (README "Dynamo compatibility"): Dynamo's own KV
// events, load metrics and model entries, in the shapes ai-dynamo/dynamo serializes them with serde.
//
//   NATS  namespace.{ns}.component.{component}.kv_events   RouterEvent JSON (kv-events.ts)
//   NATS  namespace.{ns}.kv_metrics                         LoadEvent {worker_id, data: ForwardPassMetrics}
//                                                           or ActiveLoad {worker_id, dp_rank, active_decode_blocks, …}
//   etcd  {dynamo-etcd-prefix}…/{lease id hex}              ModelEntry {name, endpoint, model_type, runtime_config, …}
//
// Dynamo identifies a worker by its etcd lease id (u64); here it becomes the decimal worker id.
import type { ObservedWorkerLoad } from "@sluice/core";
import { MalformedInputError } from "./errors.js";
import { numberOf, objectOf, parseExactJson, u64Of } from "./exact-json.js";
import type { RegisteredWorker } from "./worker-registry.js";

export interface DynamoSubjects {
  kvEvents: string;
  kvMetrics: string;
}

export function dynamoSubjects(namespace: string, component: string): DynamoSubjects {
  return {
    kvEvents: `namespace.${namespace}.component.${component}.kv_events`,
    kvMetrics: `namespace.${namespace}.kv_metrics`,
  };
}

export interface DynamoLoad {
  workerId: string;
  /** The observation; fields Dynamo does not report are 0 (prefill rate, release rate). */
  observed: ObservedWorkerLoad;
}

const decoder = new TextDecoder();

/**
 * Parses a `kv_metrics` message. Two generations of Dynamo publish there:
 * `LoadEvent { worker_id, data: ForwardPassMetrics { worker_stats { request_active_slots,
 * request_total_slots, num_requests_waiting, data_parallel_rank }, kv_stats { kv_active_blocks,
 * kv_total_blocks, gpu_cache_usage_perc, gpu_prefix_cache_hit_rate }, spec_decode_stats } }`
 * and `ActiveLoad { worker_id, dp_rank, active_decode_blocks?, active_prefill_tokens?, kv_used_blocks? }`.
 */
export function parseDynamoLoad(
  payload: Uint8Array,
  nowMs: number,
  kvTotalBlocksOf: (id: string) => number,
): DynamoLoad {
  const root = objectOf(parseExactJson(decoder.decode(payload), "kv_metrics"), "kv_metrics");
  const workerId = u64Of(root.worker_id, "kv_metrics.worker_id").toString();
  if (root.data !== undefined) {
    const data = objectOf(root.data, "kv_metrics.data");
    const worker = objectOf(data.worker_stats, "kv_metrics.data.worker_stats");
    const kv = objectOf(data.kv_stats, "kv_metrics.data.kv_stats");
    return {
      workerId,
      observed: {
        kvUsedBlocks: numberOf(kv.kv_active_blocks, "kv_stats.kv_active_blocks"),
        kvTotalBlocks: numberOf(kv.kv_total_blocks, "kv_stats.kv_total_blocks"),
        pendingPrefillTokens: 0,
        waiting: numberOf(worker.num_requests_waiting, "worker_stats.num_requests_waiting"),
        running: numberOf(worker.request_active_slots, "worker_stats.request_active_slots"),
        prefillTokensPerS: 0,
        kvBlocksReleasedPerS: 0,
        observedAtMs: nowMs,
      },
    };
  }
  if (root.active_decode_blocks === undefined && root.kv_used_blocks === undefined) {
    throw new MalformedInputError("kv_metrics: neither a LoadEvent (data) nor an ActiveLoad");
  }
  const used = numberOf(
    root.kv_used_blocks ?? root.active_decode_blocks,
    "kv_metrics.kv_used_blocks / active_decode_blocks",
  );
  return {
    workerId,
    observed: {
      kvUsedBlocks: used,
      kvTotalBlocks: kvTotalBlocksOf(workerId),
      pendingPrefillTokens: numberOf(root.active_prefill_tokens, "kv_metrics.active_prefill_tokens"),
      waiting: 0,
      running: 0,
      prefillTokensPerS: 0,
      kvBlocksReleasedPerS: 0,
      observedAtMs: nowMs,
    },
  };
}

/**
 * Worker id of a Dynamo model entry key: its last segment is the worker's lease id in hex
 * (`…/{lease:x}`; a `name:lease` form takes the part after the last ':'). A `worker_id` / `instance_id`
 * field in the value, when present, wins.
 */
function workerIdOfKey(key: string): string {
  const last = key.slice(key.lastIndexOf("/") + 1);
  const hex = last.slice(last.lastIndexOf(":") + 1);
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) {
    throw new MalformedInputError(`Dynamo model entry ${key}: last key segment is not a hex lease id`);
  }
  return BigInt(`0x${hex}`).toString();
}

/** Parses a Dynamo `ModelEntry` (etcd `models/…`) into a worker with its capacity. */
export function parseDynamoModelEntry(key: string, value: string, blockSize: number): RegisteredWorker {
  const root = objectOf(parseExactJson(value, `Dynamo model entry ${key}`), `Dynamo model entry ${key}`);
  const id = root.worker_id ?? root.instance_id;
  const workerId = id === undefined ? workerIdOfKey(key) : u64Of(id, `${key}: worker_id`).toString();
  const name = typeof root.name === "string" ? root.name : "";
  const runtime = objectOf(root.runtime_config, `${key}: runtime_config`);
  const kvTotalBlocks = numberOf(runtime.total_kv_blocks, `${key}: runtime_config.total_kv_blocks`);
  const maxNumBatchedTokens = numberOf(
    runtime.max_num_batched_tokens,
    `${key}: runtime_config.max_num_batched_tokens`,
  );
  if (!(kvTotalBlocks >= 1) || !(maxNumBatchedTokens >= 1)) {
    throw new MalformedInputError(
      `${key}: runtime_config.total_kv_blocks and max_num_batched_tokens must be set and ≥ 1`,
    );
  }
  const endpoint = root.endpoint === undefined ? {} : objectOf(root.endpoint, `${key}: endpoint`);
  const part = (v: unknown) => (typeof v === "string" ? v : "");
  return {
    worker: { workerId, kvTotalBlocks, maxNumBatchedTokens, blockSize },
    model: name,
    // Dynamo workers are reached through Dynamo's request plane, not a URL: the address names the
    // endpoint and instance so the caller can dispatch through Dynamo.
    address: `dyn://${part(endpoint.namespace)}.${part(endpoint.component)}.${part(endpoint.name)}/${workerId}`,
    source: "dynamo",
  };
}
