// Fuzz (issue 9 item 2): the ingress's OpenAI HTTP API under bad input — random bytes, truncated JSON,
// bodies over the limit, 100 000-level nesting, wrong types for every field, invalid UTF-8, unknown
// fields, odd headers and framing, wrong methods and paths, resets mid-body and mid-stream, and
// slowloris senders. For every case: a clear OpenAI-shaped 4xx (or, for timeouts and resets, a closed
// connection), the case counted in the ingress's metrics, and afterwards the process healthy with no
// slot leaked. Seeded: the seed and the case counts are printed; SLUICE_FUZZ_SEED replays,
// SLUICE_FUZZ_CASES runs more.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import type { LaunchedIngress } from "@sluice/ingress";
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
  type RawSendOptions,
  type Rng,
  randomJsonValue,
  rawRequest,
  reportCases,
  scrape,
  sendRaw,
} from "./fuzz-helpers.js";
import {
  type FakeEngine,
  launch,
  registerEngine,
  startCluster,
  startFakeEngine,
  type TestCluster,
} from "./ingress-helpers.js";

const MODEL = "fuzz-llm";
const MAX_BODY_BYTES = 1024 * 1024;
const REQUEST_TIMEOUT_MS = 2_000;

type Expect =
  /** Exactly this status; for a 4xx also the OpenAI shape, and `param` when given. */
  | { kind: "status"; status: number; param?: string; code?: string }
  /** A 2xx from the (fake) engine. */
  | { kind: "ok" }
  /** Anything below 500, OpenAI-shaped when it is a 4xx — unless the engine may have answered it. */
  | { kind: "below500"; engineMayAnswer?: true }
  /** `status` with the OpenAI shape, or (when the server cut the upload) a closed connection. */
  | { kind: "statusOrClosed"; status: number; code: string };

interface Case {
  category: string;
  name: string;
  request: Buffer;
  expect: Expect;
  options?: RawSendOptions;
}

const COMPLETIONS = "/v1/completions";
/** Control characters (not allowed in a header value by any HTTP parser) replaced by "x". */
const withoutControls = (text: string): string =>
  Array.from(text, (ch) => (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f ? "x" : ch)).join("");
const CHAT = "/v1/chat/completions";

function validBody(rng: Rng, path: string): Record<string, unknown> {
  const body: Record<string, unknown> =
    path === COMPLETIONS
      ? { model: MODEL, prompt: rng.chance(0.3) ? [1, 2, 3, 4] : "hello fuzz", max_tokens: rng.between(1, 8) }
      : { model: MODEL, messages: [{ role: "user", content: "hello fuzz" }], max_tokens: rng.between(1, 8) };
  if (rng.chance(0.5)) body.stream = true;
  return body;
}

/** Values of the wrong type for a field the ingress validates itself (it must answer 400 naming it). */
const WRONG: Readonly<Record<string, readonly unknown[]>> = {
  model: [null, 1, -1, true, "", [], {}, ["fuzz-llm"], { id: "fuzz-llm" }],
  stream: ["true", 1, 0, [], {}, "yes"],
  max_tokens: ["8", 0, -1, 1.5, 1e308, 2 ** 60, true, [], {}, "NaN"],
  prompt: [null, 1, true, {}, [], [-1], [1.5], [2 ** 60], [[]], [1, "a"], [null], [{}], [[1, "a"]]],
  messages: [null, "hi", 1, true, {}, []],
};
/** Fields the ingress forwards untouched: the engine judges them; the ingress must stay below 500. */
const FORWARDED = [
  "temperature",
  "top_p",
  "n",
  "stop",
  "user",
  "logprobs",
  "seed",
  "tools",
  "response_format",
];

function generate(rng: Rng, index: number): Case {
  const path = rng.chance(0.5) ? COMPLETIONS : CHAT;
  const generators: (() => Case)[] = [
    // Random bytes: never a JSON object.
    () => ({
      category: "random-bytes",
      name: "random bytes",
      request: jsonPost(path, rng.bytes(rng.between(0, 4096))),
      expect: { kind: "status", status: 400, code: "invalid_json" },
    }),
    // Every strict prefix of a JSON object is invalid JSON.
    () => {
      const text = JSON.stringify(validBody(rng, path));
      return {
        category: "truncated-json",
        name: "truncated JSON",
        request: jsonPost(path, text.slice(0, rng.int(text.length))),
        expect: { kind: "status", status: 400, code: "invalid_json" },
      };
    },
    // Over the limit: with a declared length (refused before reading) or chunked (refused at the bound).
    () => {
      const size = MAX_BODY_BYTES + rng.between(1, 256 * 1024);
      const body = Buffer.alloc(size, 0x20);
      const chunked = rng.chance(0.5);
      const request = chunked
        ? rawRequest(
            "POST",
            path,
            [
              ["content-type", "application/json"],
              ["transfer-encoding", "chunked"],
            ],
            Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), body, Buffer.from("\r\n0\r\n\r\n")]),
          )
        : jsonPost(path, body);
      return {
        category: "huge-body",
        name: `${size} bytes ${chunked ? "chunked" : "with content-length"}`,
        request,
        expect: { kind: "statusOrClosed", status: 413, code: "request_too_large" },
      };
    },
    // Deep nesting (up to 100 000 levels) in every position: parsed without blowing the stack.
    () => {
      const depth = rng.chance(0.3) ? 100_000 : rng.between(1_000, 100_000);
      const kind = rng.chance(0.5) ? "array" : "object";
      const nest = deeplyNested(depth, kind);
      const where = rng.int(4);
      const text =
        where === 0
          ? nest
          : where === 1
            ? `{"model":"${MODEL}",${path === COMPLETIONS ? `"prompt":${nest}` : `"messages":${nest}`}}`
            : where === 2
              ? `{"model":"${MODEL}","max_tokens":2,${path === COMPLETIONS ? '"prompt":"x"' : `"messages":[{"role":"user","content":${nest}}]`}}`
              : `{"model":"${MODEL}","max_tokens":2,${path === COMPLETIONS ? '"prompt":"x"' : '"messages":[{"role":"user","content":"x"}]'},"x_nested":${nest}}`;
      return {
        category: "deep-nesting",
        name: `${depth} levels of ${kind} at position ${where}`,
        request: jsonPost(path, text),
        // A nested object at the top is an object without a model; a nested array is no object at all.
        expect:
          where === 0
            ? { kind: "status", status: 400, code: kind === "array" ? "invalid_json" : "missing_model" }
            : { kind: "below500" },
      };
    },
    // A wrong type in a field the ingress validates: 400 naming the field.
    () => {
      const body = validBody(rng, path);
      const field = rng.pick(
        path === COMPLETIONS
          ? ["model", "stream", "max_tokens", "prompt"]
          : ["model", "stream", "max_tokens", "messages", "message", "role", "content"],
      );
      let param = field;
      const value = WRONG[field] ? rng.pick(WRONG[field] ?? []) : undefined;
      if (field === "message") {
        body.messages = [rng.pick([null, 1, "m", [], true])];
        param = "messages[0]";
      } else if (field === "role") {
        body.messages = [{ role: rng.pick([null, 1, [], {}, true]), content: "x" }];
        param = "messages[0].role";
      } else if (field === "content") {
        body.messages = [{ role: "user", content: rng.pick([1, true, {}, [1], ["x"], [null]]) }];
        param = "messages[0].content";
      } else {
        body[field] = value;
      }
      if (field === "max_tokens" && path === CHAT) delete body.max_completion_tokens;
      return {
        category: "wrong-type",
        name: `${param} = ${JSON.stringify(field === "message" || field === "role" || field === "content" ? body.messages : value)}`,
        request: jsonPost(path, JSON.stringify(body)),
        expect: { kind: "status", status: 400, param },
      };
    },
    // A wrong type in a field the engine owns: forwarded, the ingress stays below 500.
    () => {
      const body = validBody(rng, path);
      const field = rng.pick(FORWARDED);
      body[field] = randomJsonValue(rng);
      return {
        category: "wrong-type-forwarded",
        name: `${field} = ${JSON.stringify(body[field])?.slice(0, 60)}`,
        request: jsonPost(path, JSON.stringify(body)),
        expect: { kind: "below500" },
      };
    },
    // Invalid UTF-8 inside a string value (decoded with U+FFFD replacements), or in the model name.
    () => {
      const bad = Buffer.from(Array.from({ length: rng.between(1, 16) }, () => rng.between(0x80, 0xff)));
      const inModel = rng.chance(0.3);
      const body = inModel
        ? Buffer.concat([Buffer.from('{"model":"fuzz-'), bad, Buffer.from('","prompt":"x","max_tokens":2}')])
        : Buffer.concat([
            Buffer.from(`{"model":"${MODEL}","max_tokens":2,`),
            Buffer.from(path === COMPLETIONS ? '"prompt":"' : '"messages":[{"role":"user","content":"'),
            bad,
            Buffer.from(path === COMPLETIONS ? '\\ud800"}' : '\\udfff"}]}'),
          ]);
      return {
        category: "invalid-utf8",
        name: `${bad.length} invalid bytes in ${inModel ? "model" : "prompt"}`,
        request: jsonPost(inModel ? COMPLETIONS : path, body),
        expect: inModel ? { kind: "status", status: 404, param: "model" } : { kind: "ok" },
      };
    },
    // Unknown fields (prototype-looking names included) are forwarded untouched.
    () => {
      const body = validBody(rng, path);
      const extra: string[] = [];
      for (let i = rng.between(1, 5); i > 0; i--) {
        const key = rng.pick(["__proto__", "constructor", "prototype", `x_${rng.int(1000)}`, "toString"]);
        extra.push(`${JSON.stringify(key)}:${JSON.stringify(randomJsonValue(rng))}`);
      }
      const text = `${JSON.stringify(body).slice(0, -1)},${extra.join(",")}}`;
      return {
        category: "unknown-fields",
        name: extra.join(",").slice(0, 80),
        request: jsonPost(path, text),
        expect: { kind: "ok" },
      };
    },
    // Odd headers and framing.
    () => {
      const body = JSON.stringify(validBody(rng, path));
      const len = String(Buffer.byteLength(body));
      const variant = rng.int(11);
      const ct: [string, string] = ["content-type", "application/json"];
      const cases: [string, Buffer, Expect][] = [
        [
          "huge header",
          rawRequest(
            "POST",
            path,
            [ct, ["content-length", len], ["x-big", "a".repeat(rng.between(17_000, 80_000))]],
            body,
          ),
          { kind: "status", status: 431, code: "headers_too_large" },
        ],
        [
          "two different content-lengths",
          rawRequest(
            "POST",
            path,
            [ct, ["content-length", len], ["content-length", String(Number(len) + 3)]],
            body,
          ),
          { kind: "status", status: 400, code: "malformed_http" },
        ],
        [
          "content-length and chunked",
          rawRequest("POST", path, [ct, ["content-length", len], ["transfer-encoding", "chunked"]], body),
          { kind: "status", status: 400, code: "malformed_http" },
        ],
        [
          "non-numeric content-length",
          rawRequest(
            "POST",
            path,
            [ct, ["content-length", rng.pick(["-1", "abc", "1e3", "0x10", " "])]],
            body,
          ),
          { kind: "status", status: 400, code: "malformed_http" },
        ],
        [
          "bad content-type",
          rawRequest(
            "POST",
            path,
            [
              [
                "content-type",
                rng.pick([
                  "text/plain",
                  "multipart/form-data; boundary=x",
                  "application/x-www-form-urlencoded",
                  "\u00ff\u00fe",
                  "application/json; charset=utf-16",
                ]),
              ],
              ["content-length", len],
            ],
            body,
          ),
          { kind: "ok" },
        ],
        ["no content-type", rawRequest("POST", path, [["content-length", len]], body), { kind: "ok" }],
        [
          "chunked body",
          rawRequest(
            "POST",
            path,
            [ct, ["transfer-encoding", "chunked"]],
            `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`,
          ),
          { kind: "ok" },
        ],
        [
          "odd sluice headers",
          rawRequest(
            "POST",
            path,
            [
              ct,
              ["content-length", len],
              ["x-request-id", "r".repeat(rng.between(129, 4000))],
              ["x-sluice-class", withoutControls(rng.bytes(20).toString("latin1"))],
              ["x-sluice-events", rng.pick(["1", "yes", "", "\u00ff"])],
              ["x-sluice-cached-tokens", "-5"],
              ["x-sluice-elapsed-ms", "1e309"],
              ["authorization", "Bearer \u00ff"],
            ],
            body,
          ),
          { kind: "below500" },
        ],
        [
          "control character in a header",
          rawRequest("POST", path, [ct, ["content-length", len], ["x-sluice-class", "crit\u0001ical"]], body),
          { kind: "status", status: 400, code: "malformed_http" },
        ],
        [
          "2 000 headers",
          rawRequest(
            "POST",
            path,
            [
              ct,
              ["content-length", len],
              ...Array.from({ length: 2_000 }, (_, i) => [`x-h${i}`, "v"] as const),
            ],
            body,
          ),
          { kind: "below500", engineMayAnswer: true },
        ],
        [
          "garbage request line",
          Buffer.concat([rng.bytes(rng.between(1, 200)), Buffer.from("\r\n\r\n")]),
          { kind: "status", status: 400, code: "malformed_http" },
        ],
      ];
      const [name, request, expect] = cases[variant] as [string, Buffer, Expect];
      return { category: "odd-headers", name, request, expect };
    },
    // Methods and paths.
    () => {
      const variant = rng.int(5);
      const cases: [string, Buffer, Expect][] = [
        [
          "GET on a POST route",
          rawRequest(rng.pick(["GET", "PUT", "DELETE", "PATCH"]), path, []),
          { kind: "status", status: 405 },
        ],
        ["POST /v1/models", jsonPost("/v1/models", "{}"), { kind: "status", status: 405 }],
        [
          "unknown path",
          jsonPost(`/v1/${rng.bytes(6).toString("hex")}`, "{}"),
          { kind: "status", status: 404 },
        ],
        ["GET /v1/models", rawRequest("GET", "/v1/models?x=%ff", []), { kind: "ok" }],
        ["dot segments", jsonPost("/v1/completions/../models", "{}"), { kind: "status", status: 404 }],
      ];
      const [name, request, expect] = cases[variant] as [string, Buffer, Expect];
      return { category: "method-path", name, request, expect };
    },
    // A valid request between the bad ones: the ingress keeps serving.
    () => ({
      category: "valid",
      name: "valid request",
      request: jsonPost(path, JSON.stringify(validBody(rng, path))),
      expect: { kind: "ok" },
    }),
  ];
  // Round-robin over the generators (each category gets its share), random within each.
  return (generators[index % generators.length] as () => Case)();
}

/** Sum of the request outcome counters: every answered case moves at least one of them. */
function outcomes(text: string): number {
  return (
    metricSum(text, "sluice_ingress_http_errors_total") +
    metricSum(text, "sluice_ingress_rejected_total") +
    metricSum(text, "sluice_ingress_requests_finished_total")
  );
}

describe("fuzz: ingress HTTP API", () => {
  let cluster: TestCluster;
  let engine: FakeEngine;
  let ingress: LaunchedIngress;
  const seed = fuzzSeed("ingress-http");

  before(async () => {
    cluster = await startCluster("/fuzz-http/v1");
    engine = await startFakeEngine({ chunks: 3, chunkDelayMs: 1 });
    await registerEngine(cluster, { workerId: "fuzz-engine", model: MODEL, url: engine.url });
    ingress = await launch(cluster, [
      "--max-body-bytes",
      String(MAX_BODY_BYTES),
      "--request-timeout",
      `${REQUEST_TIMEOUT_MS}ms`,
    ]);
    await eventually("the engine in /v1/models", async () => {
      const res = await fetch(`${ingress.url}/v1/models`);
      return ((await res.json()) as { data: { id: string }[] }).data.some((m) => m.id === MODEL);
    });
  });

  after(async () => {
    await ingress?.stop();
    await engine?.close();
    await cluster?.close();
  });

  async function expectCounted(
    before: string,
    response: RawResponse,
    what: string,
    engineMayAnswer = false,
  ): Promise<void> {
    // The engine's own 4xx is relayed as a normal answer (a completed request), not an ingress error.
    const status = engineMayAnswer ? undefined : response.status;
    await eventually(`${what} counted in the ingress metrics`, async () => {
      const now = await scrape(ingress.adminUrl);
      if (status !== undefined && status >= 400 && status !== 429) {
        const series = `status="${status}"`;
        return (
          metricSum(now, "sluice_ingress_http_errors_total", series) >
          metricSum(before, "sluice_ingress_http_errors_total", series)
        );
      }
      return outcomes(now) > outcomes(before);
    });
  }

  function check(c: Case, response: RawResponse): void {
    const what = `case "${c.category}: ${c.name}" (seed ${seed})`;
    const status = response.status;
    const shaped = () => {
      if (status !== undefined && status >= 400) assertOpenAiError(response, what);
    };
    switch (c.expect.kind) {
      case "status": {
        assert.equal(status, c.expect.status, `${what}: status (body ${response.body.slice(0, 300)})`);
        assertOpenAiError(response, what);
        const error = (JSON.parse(response.body) as { error: { param: string | null; code: string } }).error;
        if (c.expect.param !== undefined) assert.equal(error.param, c.expect.param, `${what}: param`);
        if (c.expect.code !== undefined) assert.equal(error.code, c.expect.code, `${what}: code`);
        return;
      }
      case "ok":
        assert.ok(
          status !== undefined && status >= 200 && status < 300,
          `${what}: got ${status} ${response.body.slice(0, 300)}`,
        );
        return;
      case "below500":
        assert.ok(
          status !== undefined && status < 500,
          `${what}: got ${status} ${response.body.slice(0, 300)}`,
        );
        // The ingress forwards every header: the engine may refuse them itself, in its own words.
        if (!c.expect.engineMayAnswer) shaped();
        return;
      case "statusOrClosed":
        if (status === undefined) return; // the upload was cut; the metric check below still applies
        assert.equal(status, c.expect.status, `${what}: status`);
        assertOpenAiError(response, what);
        return;
    }
  }

  it("answers every random bad request with a counted OpenAI-shaped 4xx and keeps serving", async () => {
    const rng = createRng(seed);
    const total = fuzzCaseCount(154);
    const counts: Record<string, number> = {};
    for (let i = 0; i < total; i++) {
      const c = generate(rng, i);
      const before = await scrape(ingress.adminUrl);
      const response = await sendRaw(ingress.proxy.port, c.request, c.options);
      check(c, response);
      if (c.expect.kind === "statusOrClosed" && response.status === undefined) {
        // Cut mid-upload: the refusal must still be counted under its own status.
        await expectCounted(before, { ...response, status: c.expect.status }, `${c.category}: ${c.name}`);
      } else if (!(c.category === "method-path" && c.name === "GET /v1/models")) {
        const engineMayAnswer = c.expect.kind === "below500" && c.expect.engineMayAnswer === true;
        await expectCounted(before, response, `${c.category}: ${c.name}`, engineMayAnswer);
      }
      counts[c.category] = (counts[c.category] ?? 0) + 1;
    }
    reportCases("ingress-http", "ingress HTTP (random)", counts);
    await assertHealthy(ingress.adminUrl, "ingress");
  });

  it("counts and survives resets mid-body and mid-stream, leaking no slot", async () => {
    const rng = createRng(seed ^ 0x5eed);
    const resets = 8;
    for (let i = 0; i < resets; i++) {
      const path = rng.chance(0.5) ? COMPLETIONS : CHAT;
      const body = Buffer.from(JSON.stringify(validBody(rng, path)));
      const request = jsonPost(path, body);
      const before = await scrape(ingress.adminUrl);
      const activeBefore = ingress.proxy.activeRequests();
      const response = await sendRaw(ingress.proxy.port, request, {
        resetAfterBytes: request.length - rng.between(1, body.length),
        // Reset only once the handler holds the request, so the cut is the handler's to count.
        beforeReset: () =>
          eventually("the handler to start", () => ingress.proxy.activeRequests() > activeBefore, 5_000),
      });
      assert.equal(response.status, undefined, "a reset upload gets no answer");
      await eventually("the reset mid-body counted as body_read_failed", async () => {
        const series = 'code="body_read_failed"';
        return (
          metricSum(await scrape(ingress.adminUrl), "sluice_ingress_http_errors_total", series) >
          metricSum(before, "sluice_ingress_http_errors_total", series)
        );
      });
    }
    // Mid-stream: the engine streams slowly; the client resets after the first bytes of the answer.
    engine.behaviour = { chunks: 400, chunkDelayMs: 10, failRate: 0 };
    try {
      for (let i = 0; i < resets; i++) {
        const before = await scrape(ingress.adminUrl);
        await new Promise<void>((resolve, reject) => {
          const req = http.request(`${ingress.url}${COMPLETIONS}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
          });
          req.on("response", (res) => {
            res.once("data", () => {
              req.socket?.resetAndDestroy();
              resolve();
            });
          });
          req.on("error", () => resolve());
          req.setTimeout(15_000, () => reject(new Error("no response within 15 s")));
          req.end(JSON.stringify({ model: MODEL, prompt: "stream me", stream: true, max_tokens: 400 }));
        });
        await eventually("the reset mid-stream counted as cancelled", async () => {
          const series = 'outcome="cancelled"';
          return (
            metricSum(await scrape(ingress.adminUrl), "sluice_ingress_requests_finished_total", series) >
            metricSum(before, "sluice_ingress_requests_finished_total", series)
          );
        });
      }
    } finally {
      engine.behaviour = { chunks: 3, chunkDelayMs: 1, failRate: 0 };
    }
    reportCases("ingress-http", "ingress HTTP (resets)", {
      "reset-mid-body": resets,
      "reset-mid-stream": resets,
    });
  });

  it("cuts slow senders (slowloris) with the request timeout, counted", async () => {
    const before = await scrape(ingress.adminUrl);
    const started = Date.now();
    const head = "POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n";
    const body = JSON.stringify({ model: MODEL, prompt: "slow", max_tokens: 2 });
    // Each would take far longer than the timeout if the server let it: 1 byte (or 5) every 200 ms.
    const slow: [string, Promise<RawResponse>][] = [
      [
        "headers trickled",
        sendRaw(ingress.proxy.port, `${head}x-slow: ${"a".repeat(400)}\r\n\r\n`, {
          trickle: { pieceBytes: 1, pauseMs: 200 },
          timeoutMs: 30_000,
        }),
      ],
      [
        "body trickled",
        sendRaw(
          ingress.proxy.port,
          `${head}content-length: ${body.length + 400}\r\n\r\n${body}${" ".repeat(400)}`,
          {
            trickle: { pieceBytes: 5, pauseMs: 200 },
            timeoutMs: 30_000,
          },
        ),
      ],
      [
        "body shorter than content-length, then silence",
        sendRaw(ingress.proxy.port, `${head}content-length: ${body.length + 100}\r\n\r\n${body}`, {
          timeoutMs: 30_000,
        }),
      ],
      ["headers never finished, then silence", sendRaw(ingress.proxy.port, head, { timeoutMs: 30_000 })],
    ];
    for (const [name, pending] of slow) {
      const response = await pending;
      assert.notEqual(response.ended, "timeout", `${name}: the ingress did not cut the slow sender`);
      if (response.status !== undefined) {
        assert.equal(response.status, 408, `${name}: status`);
        assertOpenAiError(response, name);
      }
    }
    const elapsedMs = Date.now() - started;
    const now = await scrape(ingress.adminUrl);
    const cut =
      metricSum(now, "sluice_ingress_http_errors_total", 'code="request_timeout"') -
      metricSum(before, "sluice_ingress_http_errors_total", 'code="request_timeout"') +
      metricSum(now, "sluice_ingress_http_errors_total", 'code="body_read_failed"') -
      metricSum(before, "sluice_ingress_http_errors_total", 'code="body_read_failed"');
    assert.equal(cut, slow.length, "every slow sender counted (408 request_timeout or 400 body_read_failed)");
    console.log(
      `[fuzz ingress-http] ${slow.length} slowloris senders cut within ${elapsedMs} ms (timeout ${REQUEST_TIMEOUT_MS} ms)`,
    );
    reportCases("ingress-http", "ingress HTTP (slowloris)", { slowloris: slow.length });
  });

  it("is healthy with nothing in flight afterwards", async () => {
    await assertHealthy(ingress.adminUrl, "ingress");
    await eventually("the ledger to be empty", () => ingress.ledger.total().requests === 0);
    await eventually(
      "sluice_ingress_inflight_requests{scope=local} 0",
      async () =>
        metricSum(await scrape(ingress.adminUrl), "sluice_ingress_inflight_requests", 'scope="local"') === 0,
    );
    await eventually("no open request on the proxy", () => ingress.proxy.activeRequests() === 0);
    await eventually("no open request on the engine", () => engine.open() === 0);
    // Still serving.
    const res = await fetch(`${ingress.url}${COMPLETIONS}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: "still there?", max_tokens: 2 }),
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });
});
