// L1 rejections as clients see them: status, Retry-After / retry-after-ms, the OpenAI-shaped body with
// Sluice's numbers, the official `openai` client's RateLimitError and its back-off, and class ordering
// (sheddable refused before standard before critical under the same load).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { LaunchedIngress } from "@sluice/ingress";
import type { DecisionEventJson } from "@sluice/proto";
import { connect, type NatsConnection } from "nats";
import OpenAI, { RateLimitError } from "openai";
import {
  type FakeEngine,
  launch,
  metricValue,
  registerEngine,
  startCluster,
  startFakeEngine,
  type TestCluster,
  until,
} from "./ingress-helpers.js";

const MAX_INFLIGHT = 10; // shares: critical 10, standard 9, sheddable 7

let cluster: TestCluster;
let slow: FakeEngine;
let ingress: LaunchedIngress;
const holders: AbortController[] = [];
let nc: NatsConnection;
const events: DecisionEventJson[] = [];

/** Starts a streaming request that stays in flight until aborted. */
async function hold(requestClass: string): Promise<void> {
  const controller = new AbortController();
  holders.push(controller);
  const response = await fetch(`${ingress.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-sluice-class": requestClass },
    body: JSON.stringify({ model: "slow-llm", prompt: "hold", stream: true, max_tokens: 8 }),
    signal: controller.signal,
  });
  assert.equal(response.status, 200, `hold(${requestClass}) was not admitted`);
  // Read in the background so the stream keeps flowing; errors are the abort.
  void response.text().catch(() => {});
}

async function tryOnce(requestClass: string): Promise<Response> {
  return fetch(`${ingress.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-sluice-class": requestClass },
    body: JSON.stringify({ model: "slow-llm", prompt: "try", max_tokens: 8 }),
  });
}

before(async () => {
  cluster = await startCluster();
  // Streams last ~60 s unless aborted: the held requests stay in flight for the whole test.
  slow = await startFakeEngine({ chunks: 600, chunkDelayMs: 100 });
  await registerEngine(cluster, { workerId: "slow-1", model: "slow-llm", url: slow.url });
  // The limit comes from an etcd policy (proto3 JSON), as operators set it; the short Retry-After cap
  // keeps the back-off test quick (nothing completes while requests are held, so the prediction is long).
  await cluster.etcd.put(`${cluster.prefix}/policies/_default`).value(
    JSON.stringify({
      ingress: { maxInflight: MAX_INFLIGHT },
      rejection: { retryAfterMinMs: 200, retryAfterMaxMs: 1500 },
    }),
  );
  nc = await connect({ servers: cluster.nats.url });
  const sub = nc.subscribe("sluice.v1.default.events.ingress.>");
  void (async () => {
    for await (const m of sub) events.push(JSON.parse(new TextDecoder().decode(m.data)) as DecisionEventJson);
  })();
  ingress = await launch(cluster, ["--trust-class-header"]);
  await until("engine visible", async () => (await tryOnce("critical")).status === 200);
});

after(async () => {
  for (const h of holders) h.abort();
  await nc?.close();
  await ingress?.stop();
  await slow?.close();
  await cluster?.close();
});

describe("ingress rejection", () => {
  it("sheds sheddable first, then standard, then critical", async () => {
    for (let i = 0; i < 7; i++) await hold("standard");
    assert.equal(ingress.ledger.total().requests, 7);
    assert.equal((await tryOnce("sheddable")).status, 429);
    await hold("standard"); // 8
    await hold("standard"); // 9
    const standard = await tryOnce("standard");
    assert.equal(standard.status, 429);
    await standard.text();
    await hold("critical"); // 10
    const critical = await tryOnce("critical");
    assert.equal(critical.status, 429);
    await critical.text();
    assert.equal(ingress.ledger.total().requests, 10);
  });

  it("answers with Retry-After, retry-after-ms and an OpenAI-shaped body with Sluice's numbers", async () => {
    const response = await tryOnce("sheddable");
    assert.equal(response.status, 429);
    const retryAfterMs = Number(response.headers.get("retry-after-ms"));
    assert.ok(
      Number.isInteger(retryAfterMs) && retryAfterMs >= 200 && retryAfterMs <= 1500,
      String(retryAfterMs),
    );
    assert.equal(Number(response.headers.get("retry-after")), Math.max(1, Math.ceil(retryAfterMs / 1000)));
    const body = (await response.json()) as {
      error: { message: string; type: string; param: unknown; code: string };
      sluice: {
        level: string;
        reason: string;
        class: string;
        observed: number;
        limit: number;
        retry_after_ms: number;
      };
    };
    assert.equal(body.error.type, "rate_limit_error");
    assert.equal(body.error.param, null);
    assert.equal(body.error.code, body.sluice.reason);
    assert.match(body.error.message, /sheddable/);
    assert.equal(body.sluice.level, "ingress");
    assert.equal(body.sluice.reason, "inflight_limit");
    assert.equal(body.sluice.class, "sheddable");
    assert.equal(body.sluice.limit, 7);
    assert.ok(body.sluice.observed >= body.sluice.limit);
    assert.equal(body.sluice.retry_after_ms, retryAfterMs);
  });

  it("surfaces as RateLimitError in the official openai client", async () => {
    const client = new OpenAI({
      baseURL: `${ingress.url}/v1`,
      apiKey: "unused",
      maxRetries: 0,
      defaultHeaders: { "x-sluice-class": "sheddable" },
    });
    const error = await client.completions.create({ model: "slow-llm", prompt: "x", max_tokens: 4 }).then(
      () => assert.fail("expected a rejection"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof RateLimitError, String(error));
    assert.equal(error.status, 429);
    assert.ok(Number(error.headers?.get("retry-after-ms")) >= 100);
  });

  it("makes the openai client back off by at least retry-after-ms", async () => {
    const attempts: { atMs: number; retryAfterMs: number }[] = [];
    const client = new OpenAI({
      baseURL: `${ingress.url}/v1`,
      apiKey: "unused",
      maxRetries: 2,
      defaultHeaders: { "x-sluice-class": "sheddable" },
      fetch: async (url, init) => {
        const atMs = performance.now();
        const response = await fetch(url, init);
        attempts.push({ atMs, retryAfterMs: Number(response.headers.get("retry-after-ms")) });
        return response;
      },
    });
    await assert.rejects(
      client.completions.create({ model: "slow-llm", prompt: "x", max_tokens: 4 }),
      RateLimitError,
    );
    assert.equal(attempts.length, 3);
    for (let i = 1; i < attempts.length; i++) {
      const gap = (attempts[i]?.atMs ?? 0) - (attempts[i - 1]?.atMs ?? 0);
      assert.ok(
        gap >= (attempts[i - 1]?.retryAfterMs ?? 0),
        `retry after ${gap} ms < retry-after-ms ${attempts[i - 1]?.retryAfterMs}`,
      );
    }
  });

  it("counts rejections by class and reason, and admits again once load drains", async () => {
    const rejected = await metricValue(
      ingress.adminUrl,
      'sluice_ingress_rejected_total{model="slow-llm",class="sheddable",reason="inflight_limit"}',
    );
    assert.ok((rejected ?? 0) >= 5, `rejected ${rejected}`);
    for (const h of holders.splice(0)) h.abort();
    await until("in-flight drained", () => ingress.ledger.total().requests === 0);
    assert.equal((await tryOnce("sheddable")).status, 200);
    const c = ingress.ledger.counters();
    assert.equal(c.admitted, c.completed + c.failed + c.cancelled);
    assert.equal(c.cancelled, 10);
  });

  it("publishes decision events as proto3 JSON and times every decision", async () => {
    const malformed = await fetch(`${ingress.url}/v1/completions`, {
      method: "POST",
      headers: { "x-request-id": "bad-1" },
      body: "{",
    });
    assert.equal(malformed.status, 400);
    await until("edge rejection event", () =>
      events.some((e) => e.requestId === "bad-1" && e.reason === "REASON_INVALID_REQUEST"),
    );
    const rejected = events.find((e) => e.outcome === "OUTCOME_REJECTED" && e.requestClass === "sheddable");
    assert.ok(rejected, JSON.stringify(events.slice(0, 3)));
    assert.equal(rejected.level, "LEVEL_INGRESS");
    assert.equal(rejected.reason, "REASON_INFLIGHT_LIMIT");
    assert.equal(rejected.model, "slow-llm");
    assert.equal(rejected.instanceId, ingress.instanceId);
    assert.ok((rejected.retryAfterMs ?? 0) >= 200);
    assert.ok(Number(rejected.limitValue ?? 0) === 7 && Number(rejected.observedValue ?? 0) > 7);
    assert.ok(events.some((e) => e.outcome === "OUTCOME_ADMITTED" && e.requestClass === "critical"));
    assert.ok(events.some((e) => e.outcome === "OUTCOME_CANCELLED"));
    const decisions = await metricValue(ingress.adminUrl, "sluice_ingress_decision_seconds_count");
    const admitted = ingress.ledger.counters().admitted;
    assert.ok(
      (decisions ?? 0) > admitted,
      `${decisions} decisions for ${admitted} admissions and the rejections`,
    );
  });
});
