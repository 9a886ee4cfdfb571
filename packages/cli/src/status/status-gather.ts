// Collects a StatusReport: registrations from etcd, engine load and cluster.load sampled from NATS,
// recent rejections from the events stream, prediction error scraped from engine-schedulers' /metrics.

import { fromBinary } from "@bufbuild/protobuf";
import {
  aggregateClusterLoad,
  clusterAggregateOptionsWithDefaults,
  type EngineCapacity,
  type ObservedEngineLoad,
} from "@sluice/core";
import {
  type ClusterLoad,
  ClusterLoadSchema,
  EngineLoadSchema,
  EngineRegistrationSchema,
} from "@sluice/proto";
import { protoJsonCodec, type SluiceKeys, type Subjects, workerIdOfSubject } from "@sluice/runtime";
import type { Etcd3 } from "etcd3";
import type { NatsConnection } from "nats";
import { levelName, reasonName } from "../events/decision-event-format.js";
import { readEvents } from "../events/event-history.js";
import type {
  ClusterInfo,
  EngineInfo,
  InstanceInfo,
  ObservedInfo,
  PredictionErrorInfo,
  RecentRejections,
  RejectionCount,
  StatusReport,
} from "./status-report.js";

export interface GatherOptions {
  readonly etcd: Etcd3;
  readonly nc: NatsConnection;
  readonly keys: SluiceKeys;
  readonly subjects: Subjects;
  readonly namespace: string;
  readonly stream: string;
  /** How long engine load and cluster.load are listened to (≥ one engine heartbeat). */
  readonly sampleMs: number;
  readonly rejectionWindowMs: number;
  readonly scrapeTimeoutMs: number;
}

const registrationCodec = protoJsonCodec(EngineRegistrationSchema);

export async function gatherStatus(o: GatherOptions): Promise<StatusReport> {
  const observed = new Map<string, ObservedEngineLoad>();
  let clusterLoad: ClusterLoad | undefined;
  const loadSub = o.nc.subscribe(o.subjects.allEngineLoad, {
    callback: (err, msg) => {
      const workerId = err === null ? workerIdOfSubject(msg.subject, o.subjects) : undefined;
      if (workerId === undefined) return;
      try {
        const l = fromBinary(EngineLoadSchema, msg.data);
        observed.set(workerId, { ...l, receivedAtMs: Date.now() });
      } catch {
        // malformed snapshot: not shown
      }
    },
  });
  const clusterSub = o.nc.subscribe(o.subjects.clusterLoad, {
    callback: (err, msg) => {
      if (err !== null) return;
      try {
        clusterLoad = fromBinary(ClusterLoadSchema, msg.data);
      } catch {
        // malformed view: fall back to the local computation
      }
    },
  });
  const sampled = new Promise((resolve) => setTimeout(resolve, o.sampleMs));

  const [instances, engines] = await Promise.all([
    readInstances(o.etcd, o.keys),
    readEngines(o.etcd, o.keys),
  ]);
  const [recentRejections, predictionError] = await Promise.all([
    countRecentRejections(o),
    scrapePredictionError(instances, o.scrapeTimeoutMs),
    sampled,
  ]);
  loadSub.unsubscribe();
  clusterSub.unsubscribe();

  const nowMs = Date.now();
  const engineInfos: EngineInfo[] = engines.map((e) => {
    const l = observed.get(e.workerId);
    const obs: ObservedInfo | undefined =
      l === undefined
        ? undefined
        : {
            waiting: l.waiting,
            running: l.running,
            kvUsedBlocks: l.kvUsedBlocks,
            pendingPrefillTokens: l.pendingPrefillTokens,
            prefillTokensPerS: l.prefillTokensPerS,
            ageMs: nowMs - l.receivedAtMs,
          };
    return { ...e, observed: obs };
  });
  return {
    takenAt: new Date(nowMs).toISOString(),
    namespace: o.namespace,
    instances,
    engines: engineInfos,
    cluster: clusterInfo(clusterLoad, engines, observed, nowMs),
    recentRejections,
    predictionError,
  };
}

async function readInstances(etcd: Etcd3, keys: SluiceKeys): Promise<InstanceInfo[]> {
  const prefix = keys.instances();
  const all = await etcd.getAll().prefix(prefix).strings();
  const out: InstanceInfo[] = [];
  for (const [key, value] of Object.entries(all)) {
    const [role = "?", id = "?"] = key.slice(prefix.length).split("/");
    let doc: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(value);
      if (parsed !== null && typeof parsed === "object") doc = parsed as Record<string, unknown>;
    } catch {
      // an unreadable registration still shows the instance exists
    }
    const addresses =
      doc.addresses !== null && typeof doc.addresses === "object"
        ? Object.fromEntries(
            Object.entries(doc.addresses as Record<string, unknown>).filter(
              (e): e is [string, string] => typeof e[1] === "string",
            ),
          )
        : {};
    const startedAt =
      typeof doc.started_at === "string"
        ? doc.started_at
        : typeof doc.started_at_ms === "number"
          ? new Date(doc.started_at_ms).toISOString()
          : "";
    out.push({ role, id, addresses, version: typeof doc.version === "string" ? doc.version : "", startedAt });
  }
  return out.sort((a, b) => (a.role + a.id).localeCompare(b.role + b.id));
}

type RegisteredEngine = Omit<EngineInfo, "observed"> & EngineCapacity;

async function readEngines(etcd: Etcd3, keys: SluiceKeys): Promise<RegisteredEngine[]> {
  const all = await etcd.getAll().prefix(keys.engines).strings();
  const out: RegisteredEngine[] = [];
  for (const [key, value] of Object.entries(all)) {
    const workerId = key.slice(keys.engines.length);
    const decoded = registrationCodec.tryDecode(new TextEncoder().encode(value));
    if (!decoded.ok) continue;
    const r = decoded.value;
    out.push({
      workerId,
      model: r.model,
      schedulerUrl: r.schedulerUrl || r.engineUrl,
      blockSize: r.blockSize,
      kvTotalBlocks: r.kvTotalBlocks,
      maxNumSeqs: r.maxNumSeqs,
    });
  }
  return out.sort((a, b) => a.workerId.localeCompare(b.workerId));
}

function clusterInfo(
  load: ClusterLoad | undefined,
  engines: readonly RegisteredEngine[],
  observed: ReadonlyMap<string, ObservedEngineLoad>,
  nowMs: number,
): ClusterInfo {
  if (load !== undefined) {
    return {
      source: "aggregator",
      leaderId: load.leaderId,
      models: load.models.map((m) => ({
        model: m.model,
        liveEngines: m.liveEngines,
        capacityKvBlocks: m.capacityKvBlocks,
        capacitySeqs: m.capacitySeqs,
        observedKvUsedBlocks: m.observedKvUsedBlocks,
        observedRunning: m.observedRunning,
        observedWaiting: m.observedWaiting,
        observedPendingPrefillTokens: m.observedPendingPrefillTokens,
        predicted:
          m.predictedInflightRequests + m.predictedInflightKvBlocks + m.predictedPendingPrefillTokens > 0
            ? {
                requests: m.predictedInflightRequests,
                kvBlocks: m.predictedInflightKvBlocks,
                pendingPrefillTokens: m.predictedPendingPrefillTokens,
              }
            : undefined,
        headroom: m.classHeadroom.map((h) => ({
          requestClass: h.requestClass,
          inflightRequests: h.inflightRequests,
          kvBlocks: h.kvBlocks,
          predictedTtftMs: h.predictedTtftMs,
        })),
        freshnessMs: m.freshnessMs,
      })),
    };
  }
  // No aggregator publishing: the same core computation, from what this command saw.
  const views = aggregateClusterLoad(
    { engines, observed, predicted: new Map(), nowMs },
    clusterAggregateOptionsWithDefaults(),
  );
  return {
    source: "local",
    leaderId: undefined,
    models: views.map((v) => ({
      model: v.model,
      liveEngines: v.liveEngines,
      capacityKvBlocks: v.capacityKvBlocks,
      capacitySeqs: v.capacitySeqs,
      observedKvUsedBlocks: v.observedKvUsedBlocks,
      observedRunning: v.observedRunning,
      observedWaiting: v.observedWaiting,
      observedPendingPrefillTokens: v.observedPendingPrefillTokens,
      predicted: undefined,
      headroom: v.classHeadroom.map((h) => ({ ...h })),
      freshnessMs: v.freshnessMs,
    })),
  };
}

async function countRecentRejections(o: GatherOptions): Promise<RecentRejections> {
  const counts = new Map<string, RejectionCount>();
  const result = await readEvents({
    nc: o.nc,
    stream: o.stream,
    subjectFilter: o.subjects.eventsFilter({ outcome: "rejected" }),
    startTimeMs: Date.now() - o.rejectionWindowMs,
    follow: false,
    createIfMissing: false,
    onEvent: (event) => {
      const level = levelName(event.level);
      const reason = reasonName(event.reason);
      const key = `${level}/${reason}`;
      const prev = counts.get(key);
      counts.set(key, { level, reason, count: (prev?.count ?? 0) + 1 });
    },
    onMalformed: () => undefined,
  }).catch((err: unknown) => ({ kind: "no-jetstream" as const, message: (err as Error).message }));
  const unavailable =
    result.kind === "no-stream"
      ? `no events stream "${o.stream}" yet (the aggregator leader or \`sluice events\` creates it)`
      : result.kind === "no-jetstream"
        ? `JetStream unavailable: ${result.message}`
        : undefined;
  return {
    windowMs: o.rejectionWindowMs,
    unavailable,
    counts: [...counts.values()].sort((a, b) => b.count - a.count),
  };
}

/** `…_sum{…} 1.5` / `…_count{…} 3` lines of a Prometheus text exposition, summed over labels. */
export function sumHistogram(text: string, name: string): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (const line of text.split("\n")) {
    const m = /^(\S+?)(?:\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m === null) continue;
    const value = Number(m[2]);
    if (!Number.isFinite(value)) continue;
    if (m[1] === `${name}_sum`) sum += value;
    else if (m[1] === `${name}_count`) count += value;
  }
  return { sum, count };
}

const PREDICTION_ERROR_METRIC = "sluice_engine_ttft_prediction_relative_error";

async function scrapePredictionError(
  instances: readonly InstanceInfo[],
  timeoutMs: number,
): Promise<PredictionErrorInfo[]> {
  const targets = instances.filter((i) => i.role === "engine-scheduler" && i.addresses.admin !== undefined);
  const results = await Promise.all(
    targets.map(async (i): Promise<PredictionErrorInfo | undefined> => {
      try {
        const res = await fetch(`${i.addresses.admin}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
        if (!res.ok) return undefined;
        const { sum, count } = sumHistogram(await res.text(), PREDICTION_ERROR_METRIC);
        return count > 0 ? { instanceId: i.id, meanRelativeError: sum / count, samples: count } : undefined;
      } catch {
        return undefined; // unreachable admin port: nothing to show for it
      }
    }),
  );
  return results.filter((r): r is PredictionErrorInfo => r !== undefined);
}
