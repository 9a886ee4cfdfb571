// Fuzz (issue 9 item 2): the engine-scheduler sidecar's HTTP API (in front of a real mock engine) under
// bad input — random bytes, truncated JSON, bodies over the limit, 100 000-level nesting, wrong types,
// invalid UTF-8, unknown fields, bad Sluice headers, malformed framing, unknown routes and resets
// mid-body. For every case: below 500 with the OpenAI error shape on the sidecar's own 4xx, the case
// counted in the sidecar's metrics, and afterwards the process healthy with nothing queued or in the
// engine. Seeded like every fuzz suite (SLUICE_FUZZ_SEED replays, SLUICE_FUZZ_CASES runs more).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type EtcdServer, type NatsServer, startEtcd, startNats } from "@sluice/testkit";
import { type Stack, startStack } from "./engine-scheduler-helpers.js";
import {
  assertHealthy,
  assertOpenAiError,
  createRng,
  deeplyNested,
  eventually,
  fuzzCaseCount,
  fuzzSeed,
  jsonPost,
  metricSum,
  type RawResponse,
  type Rng,
  randomJsonValue,
  rawRequest,
  reportCases,
  scrape,
  sendRaw,
} from "./fuzz-helpers.js";

const MAX_BODY_BYTES = 1024 * 1024;
const COMPLETIONS = "/v1/completions";
const CHAT = "/v1/chat/completions";

type Expect =
  | { kind: "status"; status: number; code?: string }
  | { kind: "below500" }
  | { kind: "statusOrClosed"; status: number; code: string };

interface Case {
  category: string;
  name: string;
  request: Buffer;
  expect: Expect;
}

function validBody(rng: Rng, path: string): Record<string, unknown> {
  return path === COMPLETIONS
    ? {
        model: "mock-llm",
        prompt: rng.chance(0.5) ? [5, 6, 7, 8] : "hello fuzz",
        max_tokens: rng.between(1, 4),
      }
    : {
        model: "mock-llm",
        messages: [{ role: "user", content: "hello fuzz" }],
        max_tokens: rng.between(1, 4),
      };
}

function generate(rng: Rng, index: number): Case {
  const path = rng.chance(0.5) ? COMPLETIONS : CHAT;
  const generators: (() => Case)[] = [
    () => ({
      category: "random-bytes",
      name: "random bytes",
      request: jsonPost(path, rng.bytes(rng.between(0, 4096))),
      expect: { kind: "status", status: 400, code: "invalid_json" },
    }),
    () => {
      const text = JSON.stringify(validBody(rng, path));
      return {
        category: "truncated-json",
        name: "truncated JSON",
        request: jsonPost(path, text.slice(0, rng.int(text.length))),
        expect: { kind: "status", status: 400, code: "invalid_json" },
      };
    },
    () => {
      const size = MAX_BODY_BYTES + rng.between(1, 128 * 1024);
      return {
        category: "huge-body",
        name: `${size} bytes`,
        request: jsonPost(path, Buffer.alloc(size, 0x20)),
        expect: { kind: "statusOrClosed", status: 413, code: "request_too_large" },
      };
    },
    () => {
      const depth = rng.chance(0.3) ? 100_000 : rng.between(1_000, 100_000);
      const kind = rng.chance(0.5) ? "array" : "object";
      const nest = deeplyNested(depth, kind);
      const text =
        path === COMPLETIONS
          ? `{"model":"mock-llm","max_tokens":2,"prompt":${rng.chance(0.5) ? nest : '"x"'},"x_nested":${nest}}`
          : `{"model":"mock-llm","max_tokens":2,"messages":[{"role":"user","content":${nest}}]}`;
      return {
        category: "deep-nesting",
        name: `${depth} levels of ${kind}`,
        request: jsonPost(path, text),
        expect: { kind: "below500" },
      };
    },
    () => {
      const body = validBody(rng, path);
      const field = rng.pick(["prompt", "messages", "max_tokens", "stream", "model", "temperature", "n"]);
      body[field] = randomJsonValue(rng);
      return {
        category: "wrong-type",
        name: `${field} = ${JSON.stringify(body[field])?.slice(0, 60)}`,
        request: jsonPost(path, JSON.stringify(body)),
        expect: { kind: "below500" },
      };
    },
    () => {
      const bad = Buffer.from(Array.from({ length: rng.between(1, 16) }, () => rng.between(0x80, 0xff)));
      return {
        category: "invalid-utf8",
        name: `${bad.length} invalid bytes in the prompt`,
        request: jsonPost(
          COMPLETIONS,
          Buffer.concat([
            Buffer.from('{"model":"mock-llm","max_tokens":2,"prompt":"'),
            bad,
            Buffer.from('"}'),
          ]),
        ),
        expect: { kind: "below500" },
      };
    },
    () => {
      const body = validBody(rng, path) as Record<string, unknown>;
      for (let i = rng.between(1, 4); i > 0; i--) body[`x_${rng.int(1000)}`] = randomJsonValue(rng);
      return {
        category: "unknown-fields",
        name: Object.keys(body).join(","),
        request: jsonPost(path, JSON.stringify(body)),
        expect: { kind: "below500" },
      };
    },
    () => {
      const body = JSON.stringify(validBody(rng, path));
      const len = String(Buffer.byteLength(body));
      const ct: [string, string] = ["content-type", "application/json"];
      const header = rng.pick([
        "x-sluice-prompt-tokens",
        "x-sluice-cached-tokens",
        "x-sluice-elapsed-ms",
      ] as const);
      const cases: [string, Buffer, Expect][] = [
        [
          `${header} not a number`,
          rawRequest(
            "POST",
            path,
            [
              ct,
              ["content-length", len],
              [header, rng.pick(["abc", "-5", "1.5e", "NaN", "Infinity", "-0.1"])],
            ],
            body,
          ),
          { kind: "status", status: 400, code: "invalid_header" },
        ],
        [
          "huge header",
          rawRequest(
            "POST",
            path,
            [ct, ["content-length", len], ["x-big", "b".repeat(rng.between(17_000, 60_000))]],
            body,
          ),
          { kind: "status", status: 431, code: "headers_too_large" },
        ],
        [
          "two different content-lengths",
          rawRequest("POST", path, [ct, ["content-length", len], ["content-length", "1"]], body),
          { kind: "status", status: 400, code: "malformed_http" },
        ],
        [
          "odd class and request id",
          rawRequest(
            "POST",
            path,
            [
              ct,
              ["content-length", len],
              ["x-sluice-class", rng.pick(["", "unknown-class", "\u00ff\u00fe", "c".repeat(3000)])],
              ["x-request-id", "r".repeat(rng.between(1, 5000))],
            ],
            body,
          ),
          { kind: "below500" },
        ],
        [
          "unknown route",
          jsonPost(`/v1/${rng.bytes(4).toString("hex")}`, "{}"),
          { kind: "status", status: 404 },
        ],
      ];
      const [name, request, expect] = rng.pick(cases);
      return { category: "odd-headers-routes", name, request, expect };
    },
    () => ({
      category: "valid",
      name: "valid request",
      request: jsonPost(path, JSON.stringify(validBody(rng, path))),
      expect: { kind: "status", status: 200 },
    }),
  ];
  return (generators[index % generators.length] as () => Case)();
}

/** Every answered request moves one of these: refused, rejected by L3, or ended (completed/failed/…). */
function outcomes(text: string): number {
  return (
    metricSum(text, "sluice_engine_http_errors_total") +
    metricSum(text, "sluice_engine_rejections_total") +
    metricSum(text, "sluice_engine_requests_total")
  );
}

describe("fuzz: engine-scheduler HTTP API", () => {
  let nats: NatsServer;
  let etcd: EtcdServer;
  let stack: Stack;
  const seed = fuzzSeed("sidecar-http");

  before(async () => {
    [nats, etcd] = await Promise.all([startNats({ jetstream: false }), startEtcd()]);
    stack = await startStack({
      natsUrl: nats.url,
      etcdEndpoints: etcd.endpoints,
      workerId: "fuzz",
      engineArgs: ["--speedup=50"],
      sidecarArgs: [`--max-body-bytes=${MAX_BODY_BYTES}`],
    });
  });

  after(async () => {
    await stack?.[Symbol.asyncDispose]();
    await Promise.allSettled([nats?.dispose(), etcd?.dispose()]);
  });

  it("answers every random bad request below 500, OpenAI-shaped and counted", async () => {
    const rng = createRng(seed);
    const total = fuzzCaseCount(90);
    const counts: Record<string, number> = {};
    const port = Number(new URL(stack.sidecar.url).port);
    for (let i = 0; i < total; i++) {
      const c = generate(rng, i);
      const what = `case "${c.category}: ${c.name}" (seed ${seed})`;
      const before = await scrape(stack.sidecar.adminUrl);
      const response: RawResponse = await sendRaw(port, c.request);
      const status = response.status;
      if (c.expect.kind === "status") {
        assert.equal(status, c.expect.status, `${what}: status (body ${response.body.slice(0, 300)})`);
        if (status !== undefined && status >= 400) assertOpenAiError(response, what);
        if (c.expect.code !== undefined) {
          assert.equal(
            (JSON.parse(response.body) as { error: { code: string } }).error.code,
            c.expect.code,
            what,
          );
        }
      } else if (c.expect.kind === "statusOrClosed") {
        if (status !== undefined) {
          assert.equal(status, c.expect.status, `${what}: status`);
          assertOpenAiError(response, what);
        }
      } else {
        assert.ok(
          status !== undefined && status < 500,
          `${what}: got ${status} ${response.body.slice(0, 300)}`,
        );
        // 4xx answers here may be the sidecar's or the engine's; both speak the OpenAI error shape.
        if (status !== undefined && status >= 400) assertOpenAiError(response, what);
      }
      await eventually(
        `${what} counted in the sidecar metrics`,
        async () => outcomes(await scrape(stack.sidecar.adminUrl)) > outcomes(before),
      );
      counts[c.category] = (counts[c.category] ?? 0) + 1;
    }
    reportCases("sidecar-http", "engine-scheduler HTTP (random)", counts);
  });

  it("counts resets mid-body and is healthy with nothing queued or in the engine afterwards", async () => {
    const rng = createRng(seed ^ 0xbad);
    const port = Number(new URL(stack.sidecar.url).port);
    const resets = 6;
    for (let i = 0; i < resets; i++) {
      const body = Buffer.from(JSON.stringify(validBody(rng, COMPLETIONS)));
      const request = jsonPost(COMPLETIONS, body);
      const before = await scrape(stack.sidecar.adminUrl);
      const response = await sendRaw(port, request, {
        resetAfterBytes: request.length - rng.between(1, body.length),
        // Give the sidecar time to start reading the body, so the reset lands in its handler.
        beforeReset: () => new Promise((resolve) => setTimeout(resolve, 100)),
      });
      assert.equal(response.status, undefined, "a reset upload gets no answer");
      await eventually("the reset counted as body_read_failed", async () => {
        const series = 'code="body_read_failed"';
        return (
          metricSum(await scrape(stack.sidecar.adminUrl), "sluice_engine_http_errors_total", series) >
          metricSum(before, "sluice_engine_http_errors_total", series)
        );
      });
    }
    reportCases("sidecar-http", "engine-scheduler HTTP (resets)", { "reset-mid-body": resets });
    await assertHealthy(stack.sidecar.adminUrl, "engine-scheduler");
    await eventually("nothing queued or in the engine", async () => {
      const text = await scrape(stack.sidecar.adminUrl);
      return (
        metricSum(text, "sluice_engine_queue_depth") === 0 &&
        metricSum(text, "sluice_engine_in_engine") === 0 &&
        stack.sidecar.scheduler.counts().queued === 0 &&
        stack.sidecar.scheduler.counts().inEngine === 0
      );
    });
    const res = await fetch(`${stack.sidecar.url}${COMPLETIONS}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "mock-llm", prompt: [1, 2, 3], max_tokens: 2 }),
    });
    assert.equal(res.status, 200, "still serving");
    await res.body?.cancel();
  });
});
