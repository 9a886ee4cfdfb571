// Live workers the router may place requests on, from etcd `engines/{worker}` (Sluice engines and
// sidecars) and, with the Dynamo option, Dynamo's `models/` entries. A worker whose key goes (its
// lease expired or was revoked) leaves the registry; the caller then drops it from index and load.
import { fromJsonString } from "@bufbuild/protobuf";
import type { RouterWorker } from "@sluice/core";
import { EngineRegistrationSchema } from "@sluice/proto";
import { MalformedInputError } from "./errors.js";

export interface RegisteredWorker {
  readonly worker: RouterWorker;
  /** Model name served; "" matches any requested model. */
  readonly model: string;
  /** What the Route answer carries as `address`: the engine-scheduler (or engine) base URL. */
  readonly address: string;
  readonly source: "sluice" | "dynamo";
}

const WORKER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Parses the proto3 JSON `sluice.v1.EngineRegistration` stored under `engines/{worker}`. */
export function parseEngineRegistration(keyWorkerId: string, value: string): RegisteredWorker {
  let reg: ReturnType<typeof fromJsonString<typeof EngineRegistrationSchema>>;
  try {
    reg = fromJsonString(EngineRegistrationSchema, value, { ignoreUnknownFields: true });
  } catch (error) {
    throw new MalformedInputError(`engines/${keyWorkerId}: not an EngineRegistration JSON document`, {
      cause: error,
    });
  }
  const workerId = reg.workerId === "" ? keyWorkerId : reg.workerId;
  if (workerId !== keyWorkerId || !WORKER_ID.test(workerId)) {
    throw new MalformedInputError(
      `engines/${keyWorkerId}: worker_id ${JSON.stringify(reg.workerId)} does not match its key`,
    );
  }
  if (reg.blockSize < 1 || reg.kvTotalBlocks < 1 || reg.maxNumBatchedTokens < 1) {
    throw new MalformedInputError(
      `engines/${workerId}: block_size, kv_total_blocks and max_num_batched_tokens must be ≥ 1`,
    );
  }
  const address = (reg.schedulerUrl !== "" ? reg.schedulerUrl : reg.engineUrl).replace(/\/+$/, "");
  return {
    worker: {
      workerId,
      kvTotalBlocks: reg.kvTotalBlocks,
      maxNumBatchedTokens: reg.maxNumBatchedTokens,
      blockSize: reg.blockSize,
    },
    model: reg.model,
    address,
    source: "sluice",
  };
}

export interface WorkerRegistry {
  /** Adds or replaces a worker; returns true when it is new. */
  put(entry: RegisteredWorker): boolean;
  /** Returns true when the worker was known. */
  remove(workerId: string): boolean;
  get(workerId: string): RegisteredWorker | undefined;
  /** Workers serving `model` (any worker when `model` is ""), in a stable order. */
  forModel(model: string): readonly RouterWorker[];
  /**
   * The largest KV pool and block size of any worker (each its own maximum: an upper bound on what one
   * request can occupy anywhere); undefined when no worker is registered.
   */
  largestCapacity(): { kvTotalBlocks: number; blockSize: number } | undefined;
  size(): number;
}

export function createWorkerRegistry(): WorkerRegistry {
  const byId = new Map<string, RegisteredWorker>();
  // Rebuilt lazily after a change: routing reads it on every call, registrations change rarely.
  let byModel: Map<string, RouterWorker[]> | undefined;
  let all: RouterWorker[] = [];
  let largest: { kvTotalBlocks: number; blockSize: number } | undefined;

  function index(): Map<string, RouterWorker[]> {
    if (byModel !== undefined) return byModel;
    byModel = new Map();
    all = [];
    let maxKvBlocks = 0;
    let maxBlockSize = 0;
    const anyModel: RouterWorker[] = [];
    for (const e of byId.values()) {
      all.push(e.worker);
      maxKvBlocks = Math.max(maxKvBlocks, e.worker.kvTotalBlocks);
      maxBlockSize = Math.max(maxBlockSize, e.worker.blockSize);
      if (e.model === "") anyModel.push(e.worker);
      else {
        let list = byModel.get(e.model);
        if (list === undefined) {
          list = [];
          byModel.set(e.model, list);
        }
        list.push(e.worker);
      }
    }
    largest = byId.size === 0 ? undefined : { kvTotalBlocks: maxKvBlocks, blockSize: maxBlockSize };
    for (const list of byModel.values()) list.push(...anyModel);
    byModel.set("\u0000any", anyModel);
    return byModel;
  }

  return {
    put(entry) {
      const isNew = !byId.has(entry.worker.workerId);
      byId.set(entry.worker.workerId, entry);
      byModel = undefined;
      return isNew;
    },
    remove(workerId) {
      const known = byId.delete(workerId);
      if (known) byModel = undefined;
      return known;
    },
    get: (workerId) => byId.get(workerId),
    forModel(model) {
      const m = index();
      if (model === "") return all;
      return m.get(model) ?? m.get("\u0000any") ?? [];
    },
    largestCapacity() {
      index();
      return largest;
    },
    size: () => byId.size,
  };
}
