// L1's third rule: the aggregator's `cluster.load` predicts TTFT per class; while that prediction is
// fresh and over a class's objective, the ingress refuses the class (reason `predicted_ttft`), and a
// stale prediction stops counting (fail-static). The message is published here in the aggregator's
// exact wire format (binary `sluice.v1.ClusterLoad`).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import type { LaunchedIngress } from "@sluice/ingress";
import { ClusterLoadSchema } from "@sluice/proto";
import { connect, type NatsConnection } from "nats";
import {
  type FakeEngine,
  launch,
  registerEngine,
  startCluster,
  startFakeEngine,
  type TestCluster,
  until,
} from "./ingress-helpers.js";

const MODEL = "fast-llm";
const MAX_AGE_MS = 1_000;

let cluster: TestCluster;
let engine: FakeEngine;
let ingress: LaunchedIngress;
let nc: NatsConnection;
let seq = 0n;

function publishClusterLoad(predictedTtftMs: Record<string, number>): void {
  seq += 1n;
  const load = create(ClusterLoadSchema, {
    leaderId: "aggregator-test",
    seq,
    timestampMs: Date.now(),
    models: [
      {
        model: MODEL,
        liveEngines: 1,
        classHeadroom: Object.entries(predictedTtftMs).map(([requestClass, ms]) => ({
          requestClass,
          predictedTtftMs: ms,
        })),
      },
    ],
  });
  nc.publish("sluice.v1.default.cluster.load", toBinary(ClusterLoadSchema, load));
}

async function attempt(requestClass: string): Promise<{ status: number; reason: string | undefined }> {
  const response = await fetch(`${ingress.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-sluice-class": requestClass },
    body: JSON.stringify({ model: MODEL, prompt: "hello", max_tokens: 4 }),
  });
  const body = (await response.json()) as { sluice?: { reason?: string } };
  return { status: response.status, reason: body.sluice?.reason };
}

before(async () => {
  cluster = await startCluster();
  engine = await startFakeEngine();
  await registerEngine(cluster, { workerId: "fast-1", model: MODEL, url: engine.url });
  await cluster.etcd
    .put(`${cluster.prefix}/policies/_default`)
    .value(JSON.stringify({ ingress: { maxClusterLoadAgeMs: MAX_AGE_MS } }));
  nc = await connect({ servers: cluster.nats.url });
  ingress = await launch(cluster, ["--trust-class-header"]);
  await until("engine visible", async () => (await attempt("standard")).status === 200);
});

after(async () => {
  await nc?.close();
  await ingress?.stop();
  await engine?.close();
  await cluster?.close();
});

describe("ingress and cluster.load", () => {
  it("refuses a class whose fresh predicted TTFT is over its objective, and only that class", async () => {
    // sheddable's objective is 10 s, standard's 2 s (policy defaults).
    const timer = setInterval(() => publishClusterLoad({ sheddable: 20_000, standard: 150 }), 100);
    try {
      await until(
        "the prediction reaches the ingress",
        async () => (await attempt("sheddable")).status === 429,
      );
      const refused = await attempt("sheddable");
      assert.deepEqual(refused, { status: 429, reason: "predicted_ttft" });
      assert.equal((await attempt("standard")).status, 200);
    } finally {
      clearInterval(timer);
    }
  });

  it("stops using a prediction once it is older than max_cluster_load_age_ms", async () => {
    publishClusterLoad({ sheddable: 20_000 });
    await nc.flush();
    await new Promise((r) => setTimeout(r, MAX_AGE_MS + 500));
    assert.equal((await attempt("sheddable")).status, 200);
  });
});
