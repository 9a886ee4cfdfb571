// The ingress asks `sluice router` for the engine: a real router, a real mock engine and an ingress on
// real NATS/etcd. While the router is registered it places the request (its decision counter moves)
// and the ingress's Release brings the router's predicted load back to 0; once the router is gone the
// ingress still serves, choosing locally, and counts the fallback.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type LaunchedIngress, launchIngress } from "@sluice/ingress";
import { type LaunchedMockEngine, launchMockEngine } from "@sluice/mock-engine";
import { type LaunchedRouter, launchRouter } from "@sluice/router";
import { type EtcdServer, type NatsServer, startEtcd, startNats } from "@sluice/testkit";
import { metricValue, until } from "./ingress-helpers.js";

const PREFIX = "/ir/v1";
const NS = "ir";
const MODEL = "ir-model";

/** Sum of one counter over all its label sets whose labels contain `labelPart`. */
async function counterSum(adminUrl: string, name: string, labelPart: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) && line.includes(labelPart))
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

describe("ingress routed by sluice router", () => {
  let nats: NatsServer;
  let etcdServer: EtcdServer;
  let engine: LaunchedMockEngine;
  let router: LaunchedRouter;
  let ingress: LaunchedIngress;

  const common = () => [
    "--admin-port=0",
    "--log-level=silent",
    `--nats-url=${nats.url}`,
    `--etcd-endpoints=${etcdServer.endpoints.join(",")}`,
    `--etcd-prefix=${PREFIX}`,
    `--namespace=${NS}`,
  ];

  const predictedRequests = () =>
    [...router.service.load.workers()].reduce((n, w) => n + router.service.load.load(w).predictedRequests, 0);

  const complete = async (prompt: string) => {
    const res = await fetch(`${ingress.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt, max_tokens: 4 }),
    });
    const body = (await res.json()) as { choices?: unknown[] };
    return { status: res.status, body };
  };

  before(async () => {
    [nats, etcdServer] = await Promise.all([startNats(), startEtcd()]);
    const e = await launchMockEngine({
      argv: [
        ...common(),
        "--port=0",
        "--id=w1",
        "--worker-id=w1",
        `--model=${MODEL}`,
        "--block-size=16",
        "--num-gpu-blocks=4096",
        "--speedup=20",
      ],
      env: {},
    });
    assert.ok(typeof e !== "number", "mock engine started");
    engine = e;
    const r = await launchRouter({ argv: [...common(), "--grpc-port=0", "--id=r1"], env: {} });
    assert.ok(typeof r !== "number", "router started");
    router = r;
    const i = await launchIngress({
      argv: [...common(), "--port=0", "--id=i1", "--route-timeout=2s"],
      env: {},
    });
    assert.ok(typeof i !== "number", "ingress started");
    ingress = i;
  });

  after(async () => {
    await Promise.allSettled([ingress?.stop(), router?.stop(), engine?.stop()]);
    await Promise.allSettled([nats?.dispose(), etcdServer?.dispose()]);
  });

  it("places through the router, releases its load, and falls back when the router is gone", async () => {
    await until(
      "the router sees the engine",
      () => [...router.service.load.workers()].includes("w1"),
      15_000,
    );
    // The ingress finds the router through etcd; until then requests fall back, so wait for a routed one.
    const prompt = "The quick brown fox jumps over the lazy dog. ".repeat(8);
    await until(
      "a request placed by the router",
      async () => {
        const { status, body } = await complete(prompt);
        assert.equal(status, 200, JSON.stringify(body));
        return (await counterSum(router.adminUrl, "sluice_router_decisions_total", 'outcome="routed"')) > 0;
      },
      15_000,
    );
    // Release is fire-and-forget after the answer: the router's prediction drains to 0.
    await until("the router's predicted load back to 0", () => predictedRequests() === 0, 10_000);

    const fallbacksBefore = await counterSum(
      ingress.adminUrl,
      "sluice_ingress_route_fallbacks_total",
      "reason=",
    );
    assert.equal(await router.stop(), 0);
    for (let n = 0; n < 3; n++) {
      const { status, body } = await complete(`${prompt} ${n}`);
      assert.equal(status, 200, JSON.stringify(body));
      assert.ok(Array.isArray(body.choices) && body.choices.length > 0);
    }
    const fallbacksAfter = await counterSum(
      ingress.adminUrl,
      "sluice_ingress_route_fallbacks_total",
      "reason=",
    );
    assert.ok(fallbacksAfter >= fallbacksBefore + 3, `fallbacks ${fallbacksBefore} → ${fallbacksAfter}`);
    assert.equal(
      await metricValue(ingress.adminUrl, 'sluice_ingress_requests_finished_total{outcome="failed"}'),
      undefined,
    );
  });
});
