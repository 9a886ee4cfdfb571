// Fuzz (issue 9 item 2): bad NATS messages on every subject a process subscribes to — the router
// (engine.*.kv Dynamo-shaped JSON, engine.*.load, router.sync), the aggregator (engine.*.load,
// ingress.state, router.sync) and the ingress (ingress.state, cluster.load). Random bytes, illegal and
// truncated protobuf, messages of the wrong type, near-limit payloads, and valid-but-absurd values
// (NaN and infinite doubles, u32/u64 maxima, far-future timestamps, unknown workers, replicas and
// instances). Every process stays up, every certainly-malformed message is counted in its dropped
// counter, and afterwards valid messages still apply and a request is admitted, routed and served.
// (The engine-scheduler and mock engine subscribe to nothing.)

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create, type DescMessage, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { type LaunchedAggregator, launchAggregator } from "@sluice/aggregator";
import type { LaunchedIngress } from "@sluice/ingress";
import { routerEventJson } from "@sluice/mock-engine";
import {
  type ClusterLoad,
  ClusterLoadSchema,
  EngineLoadSchema,
  IngressStateSchema,
  RouterSyncSchema,
} from "@sluice/proto";
import { type LaunchedRouter, launchRouter } from "@sluice/router";
import { connect, type NatsConnection } from "nats";
import {
  assertHealthy,
  createRng,
  eventually,
  fuzzCaseCount,
  fuzzSeed,
  metricSum,
  type Rng,
  reportCases,
  scrape,
} from "./fuzz-helpers.js";
import {
  type FakeEngine,
  launch,
  startCluster,
  startFakeEngine,
  type TestCluster,
} from "./ingress-helpers.js";

const NS = "fz";
const MODEL = "fz-llm";
const WORKER = "w1";
const P = `sluice.v1.${NS}`;

type Kind = "kv" | "load" | "sync" | "ingress_state" | "cluster_load";

interface BadMessage {
  category: string;
  data: Uint8Array;
  /** Certain to fail decoding: must be counted as dropped by every subscriber. */
  certain: boolean;
}

const FAR_FUTURE_MS = [8.64e15, 1e300, Number.MAX_VALUE, Number.POSITIVE_INFINITY, Number.NaN, -1e15];
const U32_MAX = 4_294_967_295;
const U64_MAX = (1n << 64n) - 1n;

function absurdDouble(rng: Rng): number {
  return rng.pick([
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -1,
    -1e300,
    1e300,
    0,
    5e-324,
  ]);
}
function absurdU32(rng: Rng): number {
  return rng.pick([0, 1, U32_MAX, U32_MAX - 1, 2 ** 31]);
}
function absurdId(rng: Rng): string {
  return rng.pick([WORKER, "ghost", "", "x".repeat(10_000), "\u0000\uffff", "w1.load", "*", ">"]);
}

/** A valid encoding of the subject's own message type, with absurd values. */
function absurd(rng: Rng, kind: Kind): Uint8Array {
  switch (kind) {
    case "load":
      return toBinary(
        EngineLoadSchema,
        create(EngineLoadSchema, {
          workerId: absurdId(rng),
          seq: rng.pick([0n, 1n, U64_MAX]),
          timestampMs: rng.pick(FAR_FUTURE_MS),
          waiting: absurdU32(rng),
          running: absurdU32(rng),
          kvUsedBlocks: absurdU32(rng),
          kvTotalBlocks: absurdU32(rng),
          pendingPrefillTokens: absurdU32(rng),
          prefillTokensPerS: absurdDouble(rng),
          decodeStepMs: absurdDouble(rng),
          oldestWaitingMs: absurdU32(rng),
          preemptionsTotal: rng.pick([0n, U64_MAX]),
          heartbeatIntervalMs: absurdU32(rng),
        }),
      );
    case "sync": {
      const event =
        rng.int(3) === 0
          ? {
              case: "add" as const,
              value: {
                requestId: absurdId(rng),
                workerId: rng.pick([WORKER, "ghost"]),
                blockHashes: Array.from({ length: rng.between(0, 2000) }, () => BigInt(rng.int(2 ** 30))),
                blocks: absurdU32(rng),
                prefillTokens: absurdU32(rng),
                overlapBlocks: absurdU32(rng),
              },
            }
          : rng.chance(0.5)
            ? { case: "prefillDone" as const, value: { requestId: absurdId(rng), workerId: absurdId(rng) } }
            : { case: "free" as const, value: { requestId: absurdId(rng), workerId: absurdId(rng) } };
      return toBinary(
        RouterSyncSchema,
        create(RouterSyncSchema, {
          replicaId: rng.pick(["ghost-replica", "", "r-other"]),
          seq: rng.pick([0n, 1n, U64_MAX, BigInt(rng.int(1000))]),
          timestampMs: rng.pick(FAR_FUTURE_MS),
          event: event as never,
        }),
      );
    }
    case "ingress_state":
      return toBinary(
        IngressStateSchema,
        create(IngressStateSchema, {
          instanceId: rng.pick(["ghost-ingress", "", "ingress-fz"]),
          seq: rng.pick([0n, U64_MAX, BigInt(rng.int(1000))]),
          timestampMs: rng.pick(FAR_FUTURE_MS),
          heartbeatIntervalMs: absurdU32(rng),
          inflight: Array.from({ length: rng.between(0, 50) }, () => ({
            model: rng.pick([MODEL, "", "other"]),
            requestClass: rng.pick(["critical", "standard", "sheddable", "bogus", ""]),
            inflightRequests: absurdU32(rng),
            inflightKvBlocks: absurdU32(rng),
          })),
          ackedSeqs: { "ingress-fz": U64_MAX, ghost: 0n },
          tenantInflight: [{ model: MODEL, tenant: "t", inflightRequests: absurdU32(rng) }],
        }),
      );
    case "cluster_load":
      return toBinary(
        ClusterLoadSchema,
        create(ClusterLoadSchema, {
          leaderId: rng.pick(["ghost-leader", ""]),
          seq: rng.pick([0n, U64_MAX]),
          timestampMs: rng.pick(FAR_FUTURE_MS),
          models: [
            {
              model: rng.pick([MODEL, "", "other"]),
              liveEngines: absurdU32(rng),
              capacityKvBlocks: absurdU32(rng),
              capacitySeqs: absurdU32(rng),
              observedKvUsedBlocks: absurdU32(rng),
              predictedInflightRequests: absurdU32(rng),
              predictedPendingPrefillTokens: absurdU32(rng),
              observedPrefillTokensPerS: absurdDouble(rng),
              freshnessMs: absurdU32(rng),
              classHeadroom: ["critical", "standard", "sheddable", "bogus"].map((requestClass) => ({
                requestClass,
                inflightRequests: rng.pick([-2_147_483_648, -1, 0, 2_147_483_647]),
                kvBlocks: rng.pick([-2_147_483_648, -1, 0, 2_147_483_647]),
                predictedTtftMs: absurdDouble(rng),
              })),
            },
          ],
        }),
      );
    case "kv": {
      const hashes = () =>
        Array.from({ length: rng.between(0, 3000) }, () =>
          BigInt.asUintN(64, BigInt(rng.int(2 ** 31)) << 33n),
        );
      const event =
        rng.int(3) === 0
          ? ({ type: "cleared" } as const)
          : rng.chance(0.5)
            ? ({ type: "removed", blockHashes: hashes() } as const)
            : ({
                type: "stored",
                parentHash: rng.chance(0.5) ? null : U64_MAX,
                blockHashes: hashes(),
                tokenHashes: [],
              } as const);
      const stored = event.type === "stored" ? { ...event, tokenHashes: event.blockHashes } : event;
      return new TextEncoder().encode(
        routerEventJson(rng.pick([0n, U64_MAX, 42n]), rng.pick([0n, U64_MAX, BigInt(rng.int(100))]), stored),
      );
    }
  }
}

/** Schemas of the other subjects: a valid message of the wrong type. */
const OTHER_SCHEMAS: readonly DescMessage[] = [
  EngineLoadSchema,
  RouterSyncSchema,
  IngressStateSchema,
  ClusterLoadSchema,
];

function badMessage(rng: Rng, kind: Kind, index: number): BadMessage {
  const json = kind === "kv";
  const generators: (() => BadMessage)[] = [
    () => ({ category: "random-bytes", data: rng.bytes(rng.between(0, 2048)), certain: false }),
    // Field number 0 is illegal in protobuf, and a 0x00 byte cannot start JSON.
    () => ({
      category: "illegal-tag",
      data: Buffer.concat([Buffer.from([0]), rng.bytes(rng.between(0, 64))]),
      certain: true,
    }),
    // A length-delimited field claiming more bytes than follow; for JSON, an unterminated object.
    () => ({
      category: "truncated",
      data: json
        ? new TextEncoder().encode(
            routerEventJson(1n, 1n, { type: "removed", blockHashes: [1n, 2n] }).slice(0, rng.between(1, 40)),
          )
        : Buffer.from([0x0a, rng.between(10, 120), ...rng.bytes(rng.between(0, 9))]),
      certain: true,
    }),
    // A valid encoding cut short anywhere: usually, not always, undecodable.
    () => {
      const whole = absurd(rng, kind);
      return {
        category: "cut-short",
        data: whole.subarray(0, rng.int(Math.max(1, whole.length))),
        certain: json,
      };
    },
    () => {
      if (json) {
        const text = rng.pick([
          '{"worker_id":"x"}',
          "[]",
          "1",
          '"cleared"',
          '{"worker_id":1,"event":{"event_id":-1,"data":"cleared"}}',
          '{"worker_id":1,"event":{"event_id":1,"data":{"stored":{"parent_hash":null,"blocks":[{"block_hash":"nope"}]}}}}',
          "null",
        ]);
        return { category: "wrong-type", data: new TextEncoder().encode(text), certain: true };
      }
      const schema = rng.pick(OTHER_SCHEMAS);
      return { category: "wrong-type", data: toBinary(schema, create(schema)), certain: false };
    },
    () => ({ category: "huge", data: rng.bytes(rng.between(256 * 1024, 900 * 1024)), certain: false }),
    () => ({ category: "absurd-values", data: absurd(rng, kind), certain: false }),
  ];
  return (generators[index % generators.length] as () => BadMessage)();
}

/** Where each kind is published and which counter of which process must count its certain drops. */
interface Target {
  kind: Kind;
  subjects: readonly string[];
  counters: readonly { who: "router" | "aggregator" | "ingress"; name: string; labels: string[] }[];
}

const TARGETS: readonly Target[] = [
  {
    kind: "kv",
    subjects: [`${P}.engine.${WORKER}.kv`, `${P}.engine.ghost.kv`],
    counters: [{ who: "router", name: "sluice_router_malformed_messages_total", labels: ['source="kv"'] }],
  },
  {
    kind: "load",
    subjects: [`${P}.engine.${WORKER}.load`, `${P}.engine.ghost.load`],
    counters: [
      { who: "router", name: "sluice_router_malformed_messages_total", labels: ['source="load"'] },
      {
        who: "aggregator",
        name: "sluice_aggregator_snapshots_dropped_total",
        labels: ['kind="engine_load"', 'reason="malformed"'],
      },
    ],
  },
  {
    kind: "sync",
    subjects: [`${P}.router.sync`],
    counters: [
      { who: "router", name: "sluice_router_malformed_messages_total", labels: ['source="sync"'] },
      {
        who: "aggregator",
        name: "sluice_aggregator_snapshots_dropped_total",
        labels: ['kind="router_sync"', 'reason="malformed"'],
      },
    ],
  },
  {
    kind: "ingress_state",
    subjects: [`${P}.ingress.state`],
    counters: [
      { who: "ingress", name: "sluice_ingress_dropped_messages_total", labels: ['kind="ingress_state"'] },
      {
        who: "aggregator",
        name: "sluice_aggregator_snapshots_dropped_total",
        labels: ['kind="ingress_state"', 'reason="malformed"'],
      },
    ],
  },
  {
    kind: "cluster_load",
    subjects: [`${P}.cluster.load`],
    counters: [
      { who: "ingress", name: "sluice_ingress_dropped_messages_total", labels: ['kind="cluster_load"'] },
    ],
  },
];

describe("fuzz: NATS messages on every subscribed subject", () => {
  let cluster: TestCluster;
  let engine: FakeEngine;
  let router: LaunchedRouter;
  let aggregator: LaunchedAggregator;
  let ingress: LaunchedIngress;
  let nc: NatsConnection;
  const views: ClusterLoad[] = [];
  const seed = fuzzSeed("nats");

  const adminOf = (who: "router" | "aggregator" | "ingress") =>
    who === "router" ? router.adminUrl : who === "aggregator" ? aggregator.adminUrl : ingress.adminUrl;

  before(async () => {
    cluster = await startCluster("/fz/v1");
    engine = await startFakeEngine({ chunks: 3, chunkDelayMs: 1 });
    // Without a lease (as a static registration): a loaded machine must not lose the only engine mid-test.
    await cluster.etcd.put(`${cluster.prefix}/engines/${WORKER}`).value(
      JSON.stringify({
        worker_id: WORKER,
        model: MODEL,
        engine_url: engine.url,
        scheduler_url: engine.url,
        block_size: 16,
        kv_total_blocks: 1000,
        max_num_seqs: 256,
        max_num_batched_tokens: 8192,
      }),
    );
    const common = [
      "--admin-port=0",
      "--log-level=silent",
      `--nats-url=${cluster.nats.url}`,
      `--etcd-endpoints=${cluster.etcdServer.endpoints.join(",")}`,
      `--etcd-prefix=${cluster.prefix}`,
      `--namespace=${NS}`,
    ];
    const r = await launchRouter({ argv: [...common, "--grpc-port=0", "--id=r1"], env: {} });
    assert.ok(typeof r !== "number", "router started");
    router = r;
    const a = await launchAggregator({
      argv: [...common, "--id=agg-1", "--debounce=20ms", "--heartbeat=300ms"],
      env: {},
    });
    assert.ok(typeof a !== "number", "aggregator started");
    aggregator = a;
    ingress = await launch(cluster, ["--namespace", NS, "--id", "ingress-fz"]);
    nc = await connect({ servers: cluster.nats.url });
    nc.subscribe(`${P}.cluster.load`, {
      callback: (err, msg) => {
        if (err !== null) return;
        try {
          const view = fromBinary(ClusterLoadSchema, msg.data);
          if (view.leaderId === "agg-1") views.push(view);
        } catch {
          // The fuzzer's own messages on this subject.
        }
      },
    });
    // Served end to end before the fuzzing starts.
    await eventually(
      "a request served through the router",
      async () => {
        const res = await fetch(`${ingress.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: MODEL, prompt: "warm up", max_tokens: 2 }),
        });
        await res.body?.cancel();
        return res.status === 200;
      },
      20_000,
    );
  });

  after(async () => {
    await nc?.close();
    await ingress?.stop();
    await aggregator?.stop();
    await router?.stop();
    await engine?.close();
    await cluster?.close();
  });

  it("drops and counts bad messages on every subject; every process stays up", async () => {
    const rng = createRng(seed);
    const perTarget = fuzzCaseCount(49);
    for (const target of TARGETS) {
      const before = await Promise.all(target.counters.map((c) => scrape(adminOf(c.who))));
      const counts: Record<string, number> = {};
      let certain = 0;
      for (let i = 0; i < perTarget; i++) {
        const message = badMessage(rng, target.kind, i);
        nc.publish(rng.pick(target.subjects), message.data);
        counts[message.category] = (counts[message.category] ?? 0) + 1;
        if (message.certain) certain++;
        // Keep the publisher from outrunning slow subscribers (a slow consumer would drop, not count).
        if (i % 10 === 9) await nc.flush();
      }
      await nc.flush();
      for (const [i, counter] of target.counters.entries()) {
        const base = metricSum(before[i] as string, counter.name, ...counter.labels);
        await eventually(
          `${counter.who} counts ≥ ${certain} certainly-malformed ${target.kind} messages (seed ${seed})`,
          async () =>
            metricSum(await scrape(adminOf(counter.who)), counter.name, ...counter.labels) - base >= certain,
          15_000,
        );
        const dropped = metricSum(await scrape(adminOf(counter.who)), counter.name, ...counter.labels) - base;
        assert.ok(dropped <= perTarget, `${counter.who}: more drops (${dropped}) than messages sent`);
      }
      reportCases("nats", `${target.kind} → ${target.counters.map((c) => c.who).join(", ")}`, counts);
    }
    for (const who of ["router", "aggregator", "ingress"] as const) await assertHealthy(adminOf(who), who);
  });

  it("applies valid messages afterwards", async () => {
    // A valid load snapshot of the real worker: the aggregator's view takes it, with finite numbers.
    const running = 7;
    const publishLoad = () =>
      nc.publish(
        `${P}.engine.${WORKER}.load`,
        toBinary(
          EngineLoadSchema,
          create(EngineLoadSchema, {
            workerId: WORKER,
            seq: 1n,
            timestampMs: Date.now(),
            running,
            kvUsedBlocks: 10,
            kvTotalBlocks: 1000,
            prefillTokensPerS: 5000,
            decodeStepMs: 20,
            heartbeatIntervalMs: 1000,
          }),
        ),
      );
    const viewsBefore = views.length;
    await eventually(
      "the aggregator's view to apply a valid load snapshot",
      () => {
        publishLoad();
        const m = views.at(-1)?.models.find((x) => x.model === MODEL);
        return m !== undefined && m.observedRunning === running && m.observedKvUsedBlocks === 10;
      },
      30_000,
    ).catch((error: unknown) => {
      const last = views.at(-1);
      throw new Error(
        `${(error as Error).message}: ${views.length - viewsBefore} views since, the last: ${JSON.stringify(last?.models, (_k, v) => (typeof v === "bigint" ? String(v) : v))?.slice(0, 600)}`,
      );
    });
    const m = views.at(-1)?.models.find((x) => x.model === MODEL);
    for (const [k, v] of Object.entries(m ?? {})) {
      if (typeof v === "number") assert.ok(Number.isFinite(v), `cluster.load ${k} is ${v}`);
    }
    for (const h of m?.classHeadroom ?? []) {
      assert.ok(
        Number.isFinite(h.predictedTtftMs) && h.predictedTtftMs >= 0,
        `${h.requestClass} predicted TTFT ${h.predictedTtftMs}`,
      );
    }

    for (const who of ["router", "aggregator", "ingress"] as const) await assertHealthy(adminOf(who), who);
  });

  // Found by this suite (and by bench/soak.ts as a slow leak): a router.sync `add` from a replica that
  // is not alive (no etcd registration) was applied by the aggregator and the router, so one absurd add
  // (prefill_tokens = 2^32 − 1) kept the cluster's predicted TTFT at ~8.6e8 ms and L1 rejected every
  // request with predicted_ttft. Now deltas are taken only from replicas registered in etcd, and adds
  // that fit on no engine are refused (@sluice/runtime router-sync-gate); both are counted.
  it("still admits, routes and serves after absurd router.sync adds", async () => {
    const publishLoad = () =>
      nc.publish(
        `${P}.engine.${WORKER}.load`,
        toBinary(
          EngineLoadSchema,
          create(EngineLoadSchema, {
            workerId: WORKER,
            seq: 1n,
            timestampMs: Date.now(),
            kvUsedBlocks: 10,
            kvTotalBlocks: 1000,
            prefillTokensPerS: 5000,
            heartbeatIntervalMs: 1000,
          }),
        ),
      );
    const refusedBefore = metricSum(
      await scrape(aggregator.adminUrl),
      "sluice_aggregator_snapshots_dropped_total",
      'kind="router_sync"',
      'reason="unregistered_replica"',
    );
    // The case itself, whatever the random messages above did: one add from a replica nobody runs.
    nc.publish(
      `${P}.router.sync`,
      toBinary(
        RouterSyncSchema,
        create(RouterSyncSchema, {
          replicaId: "ghost-replica-2",
          seq: 1n,
          timestampMs: Date.now(),
          event: { case: "add", value: { requestId: "ghost-1", workerId: WORKER, prefillTokens: U32_MAX } },
        }),
      ),
    );
    await nc.flush();
    // The ingress admits again (absurd peers and cluster views replaced or aged out), the router places
    // the request (no local fallback) and the engine serves it.
    const fallbacksBefore = metricSum(await scrape(ingress.adminUrl), "sluice_ingress_route_fallbacks_total");
    const routedBefore = metricSum(
      await scrape(router.adminUrl),
      "sluice_router_decisions_total",
      'outcome="routed"',
    );
    let last = "";
    await eventually(
      "a valid request admitted and served after the fuzzing",
      async () => {
        publishLoad();
        const res = await fetch(`${ingress.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: MODEL, prompt: "after the storm", max_tokens: 2 }),
        });
        last = `${res.status} ${await res.text()}`;
        return res.status === 200;
      },
      20_000,
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; last answer: ${last}`);
    });
    // Refused by both consumers once its replica's registration wait ended, and counted.
    await eventually("the ghost add refused and counted by the router and the aggregator", async () => {
      const routerRefused = metricSum(
        await scrape(router.adminUrl),
        "sluice_router_sync_deltas_total",
        'outcome="unregistered_replica"',
      );
      const aggregatorRefused = metricSum(
        await scrape(aggregator.adminUrl),
        "sluice_aggregator_snapshots_dropped_total",
        'kind="router_sync"',
        'reason="unregistered_replica"',
      );
      return routerRefused > 0 && aggregatorRefused > refusedBefore;
    });
    assert.equal(router.service.load.workerOf("ghost-1"), undefined, "the ghost add never applied");
    assert.ok(
      metricSum(await scrape(router.adminUrl), "sluice_router_decisions_total", 'outcome="routed"') >
        routedBefore,
      "the router placed the request",
    );
    assert.equal(
      metricSum(await scrape(ingress.adminUrl), "sluice_ingress_route_fallbacks_total"),
      fallbacksBefore,
      "no fallback to the local engine choice",
    );
    await eventually("no slot left in the ingress", () => ingress.ledger.total().requests === 0);
    for (const who of ["router", "aggregator", "ingress"] as const) await assertHealthy(adminOf(who), who);
  });

  // A replica starting up routes (and publishes) as soon as an ingress sees its registration, which can
  // be before the other consumers' etcd watches show it: its first deltas wait for the registration.
  it("applies a new replica's deltas that arrive just before its registration", async () => {
    const replicaId = "r-late";
    const sync = (seq: bigint, event: MessageInitShape<typeof RouterSyncSchema>["event"]) =>
      nc.publish(
        `${P}.router.sync`,
        toBinary(
          RouterSyncSchema,
          create(RouterSyncSchema, { replicaId, seq, timestampMs: Date.now(), event }),
        ),
      );
    const predictedOnRouter = () => router.service.load.load(WORKER).predictedPendingPrefillTokens;
    const before = predictedOnRouter();
    sync(1n, {
      case: "add",
      value: { requestId: "late-1", workerId: WORKER, blocks: 1, prefillTokens: 7, overlapBlocks: 0 },
    });
    await nc.flush();
    await sleep(300);
    assert.equal(router.service.load.workerOf("late-1"), undefined, "held while the replica is unregistered");
    const lease = cluster.etcd.lease(10);
    try {
      await lease.put(`${cluster.prefix}/instances/router/${replicaId}`).value("{}").exec();
      await eventually(
        "the held add applied by the router",
        () => router.service.load.workerOf("late-1") === WORKER,
      );
      assert.equal(predictedOnRouter(), before + 7);
      await eventually("the held add in the aggregator's view", () => {
        const m = views.at(-1)?.models.find((x) => x.model === MODEL);
        return m !== undefined && m.predictedPendingPrefillTokens >= 7;
      });
      // Live now: its next delta applies at once.
      sync(2n, { case: "free", value: { requestId: "late-1", workerId: WORKER } });
      await eventually("the free applied", () => router.service.load.workerOf("late-1") === undefined);
      assert.equal(predictedOnRouter(), before);
    } finally {
      await lease.revoke();
    }
  });
});
