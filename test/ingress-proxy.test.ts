// `sluice ingress` as an OpenAI-compatible proxy: real nats-server and etcd, the real mock engine
// (registered in etcd) for the happy paths, a scriptable upstream for headers and failures.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import type { LaunchedIngress } from "@sluice/ingress";
import { type MockEngine, startMockEngine } from "@sluice/mock-engine";
import { createMetricsRegistry, createPromMetrics } from "@sluice/runtime";
import type { Lease } from "etcd3";
import OpenAI from "openai";
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

let cluster: TestCluster;
let engine: MockEngine;
let fake: FakeEngine;
let ingress: LaunchedIngress;
let client: OpenAI;
let deadLease: Lease;

async function post(
  path: string,
  body: string | object,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${ingress.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function expectError(response: Response, status: number, code: string): Promise<void> {
  assert.equal(response.status, status);
  const body = (await response.json()) as {
    error: { message: string; type: string; param: unknown; code: string };
  };
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, "string");
  assert.equal(typeof body.error.type, "string");
  assert.ok("param" in body.error);
}

before(async () => {
  cluster = await startCluster();
  const registry = createMetricsRegistry({
    role: "mock-engine",
    version: "test",
    collectDefaultMetrics: false,
  });
  engine = await startMockEngine({
    host: "127.0.0.1",
    port: 0,
    workerId: "mock-1",
    speedup: 50,
    engine: { numGpuBlocks: 2048, blockSize: 16 },
    api: { model: "mock-llm" },
    metrics: createPromMetrics(registry, { requiredPrefix: "vllm:" }),
    metricsText: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
    publisher: () => undefined,
    kvSubject: "unused.kv",
    loadSubject: "unused.load",
    logger: { warn: () => {}, debug: () => {} },
  });
  fake = await startFakeEngine();
  await registerEngine(cluster, {
    workerId: "mock-1",
    model: "mock-llm",
    url: engine.url,
    kvTotalBlocks: 2048,
  });
  await registerEngine(cluster, { workerId: "fake-1", model: "fake-llm", url: fake.url });
  // Nothing listens there: connection refused.
  deadLease = await registerEngine(cluster, {
    workerId: "dead-1",
    model: "dead-llm",
    url: "http://127.0.0.1:1",
  });
  ingress = await launch(cluster, ["--max-body-bytes", "2048", "--upstream-timeout", "500ms"]);
  client = new OpenAI({ baseURL: `${ingress.url}/v1`, apiKey: "unused", maxRetries: 0 });
  await until("engines visible", async () => {
    const models = await client.models.list();
    return models.data.length === 3;
  });
});

after(async () => {
  await ingress?.stop();
  await engine?.close(500);
  await fake?.close();
  await cluster?.close();
});

describe("ingress proxy", () => {
  it("lists the union of live engines' models", async () => {
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      ["dead-llm", "fake-llm", "mock-llm"],
    );
  });

  it("forwards non-streaming completions to the engine", async () => {
    const completion = await client.completions.create({
      model: "mock-llm",
      prompt: "Hello there, mock.",
      max_tokens: 5,
    });
    assert.equal(completion.choices[0]?.text, " The quick brown fox jumps");
    assert.equal(completion.usage?.completion_tokens, 5);
  });

  it("streams chat completions through", async () => {
    const stream = await client.chat.completions.create({
      model: "mock-llm",
      messages: [{ role: "user", content: "Say something." }],
      max_tokens: 6,
      stream: true,
    });
    let chunks = 0;
    let text = "";
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    assert.ok(chunks >= 6, `expected ≥ 6 chunks, got ${chunks}`);
    assert.ok(text.length > 0);
  });

  it("sends SSE status events before the model's stream when asked", async () => {
    const response = await post(
      "/v1/completions",
      { model: "fake-llm", prompt: "x", stream: true },
      { "x-sluice-events": "1" },
    );
    assert.equal(response.status, 200);
    const text = await response.text();
    const admitted = text.indexOf('event: sluice\ndata: {"status":"admitted"');
    const routed = text.indexOf('event: sluice\ndata: {"status":"routed","worker_id":"fake-1"}');
    const firstData = text.indexOf('data: {"id"');
    assert.ok(admitted >= 0 && routed > admitted && firstData > routed, text);
    assert.ok(text.endsWith("data: [DONE]\n\n"));
  });

  it("strips hop-by-hop headers both ways and passes end-to-end ones", async () => {
    // fetch refuses to send connection-specific headers, so this uses node:http.
    const body = JSON.stringify({ model: "fake-llm", prompt: "x" });
    const { status, headers } = await new Promise<{ status: number; headers: http.IncomingHttpHeaders }>(
      (resolve, reject) => {
        const req = http.request(
          `${ingress.url}/v1/completions`,
          {
            method: "POST",
            headers: {
              "content-type": "application/json",
              connection: "keep-alive, x-hop",
              "x-hop": "secret",
              "x-end": "kept",
              te: "trailers",
              "proxy-authorization": "Basic eA==",
            },
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
          },
        );
        req.on("error", reject);
        req.end(body);
      },
    );
    assert.equal(status, 200);
    assert.equal(fake.lastHeaders?.["x-hop"], undefined);
    assert.equal(fake.lastHeaders?.te, undefined);
    assert.equal(fake.lastHeaders?.["proxy-authorization"], undefined);
    assert.equal(fake.lastHeaders?.["x-end"], "kept");
    assert.ok(typeof fake.lastHeaders?.["x-request-id"] === "string");
    assert.equal(headers["x-upstream"], "fake");
    // The upstream's keep-alive parameters are its hop's, not the client's.
    assert.notEqual(headers["keep-alive"], "timeout=5");
  });

  it("answers 413 for oversized bodies", async () => {
    await expectError(
      await post("/v1/completions", { model: "mock-llm", prompt: "x".repeat(4096) }),
      413,
      "request_too_large",
    );
  });

  it("answers 400 for malformed JSON and wrong field types", async () => {
    await expectError(await post("/v1/completions", "{not json"), 400, "invalid_json");
    await expectError(await post("/v1/completions", { prompt: "x" }), 400, "missing_model");
    await expectError(await post("/v1/completions", { model: "mock-llm", prompt: 3 }), 400, "invalid_value");
    await expectError(
      await post("/v1/completions", { model: "mock-llm", prompt: "x", max_tokens: "5" }),
      400,
      "invalid_value",
    );
    await expectError(
      await post("/v1/completions", { model: "mock-llm", prompt: "x", stream: "yes" }),
      400,
      "invalid_value",
    );
    await expectError(
      await post("/v1/chat/completions", { model: "mock-llm", messages: [] }),
      400,
      "invalid_value",
    );
    await expectError(
      await post("/v1/chat/completions", { model: "mock-llm", messages: ["hi"] }),
      400,
      "invalid_value",
    );
  });

  it("answers 404 for unknown models and routes", async () => {
    await expectError(await post("/v1/completions", { model: "nope", prompt: "x" }), 404, "model_not_found");
    await expectError(await post("/v1/embeddings", { model: "mock-llm", input: "x" }), 404, "unknown_url");
  });

  it("answers 502 when the engine is unreachable, and releases the slot", async () => {
    await expectError(
      await post("/v1/completions", { model: "dead-llm", prompt: "x" }),
      502,
      "upstream_error",
    );
    assert.equal(ingress.ledger.total().requests, 0);
  });

  it("answers 504 when the engine stays silent past the upstream timeout", async () => {
    fake.behaviour.chunkDelayMs = 2_000;
    try {
      const response = await post("/v1/completions", { model: "fake-llm", prompt: "x", stream: true });
      // Headers arrived, then the stream is cut: the client sees an incomplete body.
      await assert.rejects(response.text());
    } finally {
      fake.behaviour.chunkDelayMs = 2;
    }
    await until("slot released", () => ingress.ledger.total().requests === 0);
  });

  it("counts every error by status and code, and keeps the outcome identity", async () => {
    assert.equal(
      await metricValue(
        ingress.adminUrl,
        'sluice_ingress_http_errors_total{status="413",code="request_too_large"}',
      ),
      1,
    );
    assert.equal(
      await metricValue(
        ingress.adminUrl,
        'sluice_ingress_http_errors_total{status="400",code="invalid_json"}',
      ),
      1,
    );
    assert.equal(
      await metricValue(
        ingress.adminUrl,
        'sluice_ingress_http_errors_total{status="404",code="model_not_found"}',
      ),
      1,
    );
    assert.equal(
      await metricValue(
        ingress.adminUrl,
        'sluice_ingress_http_errors_total{status="502",code="upstream_error"}',
      ),
      1,
    );
    const c = ingress.ledger.counters();
    assert.ok(c.admitted >= 6);
    assert.equal(c.admitted, c.completed + c.failed + c.cancelled);
    assert.equal(ingress.ledger.total().requests, 0);
  });

  it("answers 503 once a model's last engine is gone", async () => {
    await deadLease.revoke();
    await until(
      "dead-llm unlisted",
      async () => !(await client.models.list()).data.some((m) => m.id === "dead-llm"),
    );
    await expectError(await post("/v1/completions", { model: "dead-llm", prompt: "x" }), 503, "no_engine");
  });
});
