// The official `openai` client against the mock engine's OpenAI API (real sockets, no NATS/etcd:
// publishing is off here; test/mock-engine-shared-state.test.ts covers it through the command).
import assert from "node:assert/strict";
import { connect as connectTcp } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type MockEngine, startMockEngine } from "@sluice/mock-engine";
import { createMetricsRegistry, createPromMetrics } from "@sluice/runtime";
import OpenAI from "openai";

const BLOCK_SIZE = 16;
let engine: MockEngine;
let client: OpenAI;

async function metricValue(name: string): Promise<number> {
  const text = await (await fetch(`${engine.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  assert.ok(line, `metric ${name} not exposed`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

before(async () => {
  const registry = createMetricsRegistry({
    role: "mock-engine",
    version: "test",
    collectDefaultMetrics: false,
  });
  engine = await startMockEngine({
    host: "127.0.0.1",
    port: 0,
    workerId: "api-test",
    speedup: 20,
    engine: { numGpuBlocks: 256, blockSize: BLOCK_SIZE },
    api: { model: "mock-llm", maxBodyBytes: 64 * 1024, headersTimeoutMs: 1_000, requestTimeoutMs: 5_000 },
    metrics: createPromMetrics(registry, { requiredPrefix: "vllm:" }),
    metricsText: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
    publisher: () => undefined,
    kvSubject: "unused.kv",
    loadSubject: "unused.load",
    logger: { warn: () => {}, debug: () => {} },
  });
  client = new OpenAI({ baseURL: `${engine.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  await engine.close(1_000);
});

describe("mock-engine OpenAI API (official openai client)", () => {
  it("lists the served model", async () => {
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      ["mock-llm"],
    );
  });

  it("serves non-streaming completions with max_tokens honoured and exact usage", async () => {
    const completion = await client.completions.create({
      model: "mock-llm",
      prompt: "Hello there, mock.",
      max_tokens: 5,
    });
    assert.equal(completion.object, "text_completion");
    assert.equal(completion.choices[0]?.text, " The quick brown fox jumps");
    assert.equal(completion.choices[0]?.finish_reason, "length");
    assert.equal(completion.usage?.completion_tokens, 5);
    assert.equal(completion.usage?.prompt_tokens, 5, "cl100k_base: 'Hello', ' there', ',', ' mock', '.'");
    assert.equal(completion.usage?.total_tokens, 10);
  });

  it("streams completions for a token-array prompt, with a final usage chunk", async () => {
    const stream = await client.completions.create({
      model: "mock-llm",
      prompt: [9906, 1070, 11, 8018, 13, 1, 2, 3],
      max_tokens: 7,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let textChunks = 0;
    for await (const chunk of stream) {
      assert.equal(chunk.object, "text_completion");
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        textChunks += 1;
        text += choice.text;
        finish = choice.finish_reason ?? finish;
      }
    }
    assert.equal(textChunks, 7, "one chunk per token");
    assert.equal(text, " The quick brown fox jumps over the");
    assert.equal(finish, "length");
    assert.deepEqual(usage, { prompt_tokens: 8, completion_tokens: 7, total_tokens: 15 });
  });

  it("serves chat completions, streaming and not", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Say something." },
    ];
    const chat = await client.chat.completions.create({
      model: "mock-llm",
      messages,
      max_completion_tokens: 4,
    });
    assert.equal(chat.object, "chat.completion");
    assert.equal(chat.choices[0]?.message.role, "assistant");
    assert.equal(chat.choices[0]?.message.content, " The quick brown fox");
    assert.equal(chat.usage?.completion_tokens, 4);
    const promptTokens = chat.usage?.prompt_tokens ?? 0;
    assert.ok(promptTokens > 8);

    const stream = await client.chat.completions.create({
      model: "mock-llm",
      messages,
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = "";
    let role: string | undefined;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      assert.equal(chunk.object, "chat.completion.chunk");
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        role = choice.delta.role ?? role;
        content += choice.delta.content ?? "";
        finish = choice.finish_reason ?? finish;
      }
    }
    assert.equal(role, "assistant");
    assert.equal(content, " The quick brown");
    assert.equal(finish, "length");
    assert.deepEqual(usage, {
      prompt_tokens: promptTokens,
      completion_tokens: 3,
      total_tokens: promptTokens + 3,
    });
  });

  it("frames SSE exactly as vLLM: data lines, blank-line separated, ending with [DONE]", async () => {
    const res = await fetch(`${engine.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "x", max_tokens: 2, stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const events = (await res.text()).split("\n\n");
    assert.equal(events.pop(), "", "the stream ends with a blank line");
    assert.equal(events.pop(), "data: [DONE]");
    assert.equal(events.length, 2);
    for (const event of events) {
      assert.match(event, /^data: \{/);
      const chunk = JSON.parse(event.slice("data: ".length)) as Record<string, unknown>;
      assert.deepEqual(Object.keys(chunk).sort(), ["choices", "created", "id", "model", "object"]);
    }
  });

  it("answers malformed requests with OpenAI-shaped errors", async () => {
    await assert.rejects(
      client.completions.create({ model: "no-such-model", prompt: "x" }),
      (error: unknown) => error instanceof OpenAI.NotFoundError && error.code === "model_not_found",
    );
    await assert.rejects(
      client.completions.create({ model: "mock-llm", prompt: ["a", "b"] }),
      (error: unknown) => error instanceof OpenAI.BadRequestError && error.param === "prompt",
    );
    const cases: { path: string; body: string; status: number; code: string }[] = [
      { path: "/v1/completions", body: "{not json", status: 400, code: "invalid_json" },
      {
        path: "/v1/completions",
        body: JSON.stringify({ prompt: "x", max_tokens: "ten" }),
        status: 400,
        code: "invalid_value",
      },
      {
        path: "/v1/chat/completions",
        body: JSON.stringify({ messages: "hi" }),
        status: 400,
        code: "invalid_value",
      },
      {
        path: "/v1/completions",
        body: JSON.stringify({ prompt: [1, 2], max_tokens: 5000 }),
        status: 400,
        code: "context_length_exceeded",
      },
      {
        path: "/v1/completions",
        body: JSON.stringify({ prompt: "x".repeat(70_000) }),
        status: 413,
        code: "request_too_large",
      },
      { path: "/v1/nope", body: "{}", status: 404, code: "not_found" },
    ];
    for (const c of cases) {
      const res = await fetch(`${engine.url}${c.path}`, { method: "POST", body: c.body });
      assert.equal(res.status, c.status, c.path + c.body.slice(0, 40));
      const body = (await res.json()) as { error: Record<string, unknown> };
      assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);
      assert.equal(body.error.code, c.code);
      assert.equal(typeof body.error.message, "string");
    }
  });

  it("aborts the sequence and frees its KV blocks when the client disconnects mid-stream", async () => {
    const controller = new AbortController();
    const stream = await client.completions.create(
      { model: "mock-llm", prompt: "a long running request ".repeat(20), max_tokens: 3000, stream: true },
      { signal: controller.signal },
    );
    let chunks = 0;
    try {
      for await (const _chunk of stream) {
        chunks += 1;
        if (chunks === 3) {
          assert.ok((await metricValue("vllm:kv_cache_usage_perc")) > 0, "blocks in use while streaming");
          assert.equal(await metricValue("vllm:num_requests_running"), 1);
          controller.abort();
        }
      }
    } catch (error) {
      // Depending on timing the SDK ends the iteration or throws its abort error.
      assert.ok(error instanceof OpenAI.APIUserAbortError, String(error));
    }
    assert.ok(chunks >= 3 && chunks < 3000, `the stream was cut short (${chunks} chunks)`);
    await until("the aborted sequence to release its blocks", async () => {
      return (await metricValue("vllm:kv_cache_usage_perc")) === 0 && engine.driver.inFlight() === 0;
    });
    assert.equal(await metricValue("vllm:num_requests_running"), 0);
    assert.equal(engine.driver.load().kvUsedBlocks, 0);
  });

  it("aborts a non-streaming request whose client goes away", async () => {
    const controller = new AbortController();
    const pending = fetch(`${engine.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ messages: [{ role: "user", content: "take your time" }], max_tokens: 3000 }),
      signal: controller.signal,
    });
    await until("the request to run", async () => engine.driver.load().running === 1);
    controller.abort();
    await assert.rejects(pending);
    await until("the aborted request to release its blocks", async () => {
      return engine.driver.inFlight() === 0 && engine.driver.load().kvUsedBlocks === 0;
    });
    assert.match(
      await (await fetch(`${engine.url}/metrics`)).text(),
      /^vllm:request_success_total\{model_name="mock-llm",finished_reason="abort"\} [1-9]/m,
    );
  });

  it("closes connections that do not finish their headers in time", async () => {
    const socket = connectTcp(engine.port, "127.0.0.1");
    const closed = new Promise<string>((resolve) => {
      let received = "";
      socket.on("data", (data) => {
        received += data.toString();
      });
      socket.on("close", () => resolve(received));
    });
    socket.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\n");
    const received = await Promise.race([closed, sleep(10_000).then(() => "still open")]);
    socket.destroy();
    assert.match(received, /^HTTP\/1\.1 408/);
  });

  it("reports a prefix cache hit for a shared text prefix, and vLLM latency metrics", async () => {
    const prefix = "You are a helpful assistant. Here is a long shared system preamble to cache. ".repeat(4);
    const hitsBefore = await metricValue("vllm:prefix_cache_hits_total").catch(() => 0);
    await client.completions.create({ model: "mock-llm", prompt: `${prefix}First question?`, max_tokens: 2 });
    await client.completions.create({
      model: "mock-llm",
      prompt: `${prefix}Second question?`,
      max_tokens: 2,
    });
    const hits = await metricValue("vllm:prefix_cache_hits_total");
    assert.ok(
      hits - hitsBefore >= 3 * BLOCK_SIZE,
      `expected ≥ 3 cached blocks, got ${hits - hitsBefore} tokens`,
    );
    assert.ok((await metricValue("vllm:prefix_cache_queries_total")) >= hits);
    const text = await (await fetch(`${engine.url}/metrics`)).text();
    for (const name of [
      "vllm:time_to_first_token_seconds_count",
      "vllm:inter_token_latency_seconds_count",
      "vllm:e2e_request_latency_seconds_count",
      "vllm:prompt_tokens_total",
      "vllm:generation_tokens_total",
      "vllm:num_preemptions_total",
      "vllm:num_requests_waiting",
    ]) {
      assert.match(text, new RegExp(`^${name}\\{model_name="mock-llm"\\} `, "m"), name);
    }
    assert.match(text, /^vllm:request_success_total\{model_name="mock-llm",finished_reason="length"\} \d+/m);
  });
});
