import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { parseAzureTimestamp, parseAzureTrace } from "./azure-reader.js";
import { TraceFormatError } from "./errors.js";
import { parseMooncakeTrace } from "./mooncake-reader.js";
import { parseTrace, traceFormatFromPath } from "./read-trace.js";

const MOONCAKE = [
  '{"timestamp": 3000, "input_length": 1100, "output_length": 7, "hash_ids": [0, 1, 2]}',
  "",
  '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 3]}',
].join("\n");

describe("mooncake reader", () => {
  it("parses records and sorts them by timestamp", () => {
    const trace = parseMooncakeTrace(MOONCAKE, "t.jsonl");
    assert.equal(trace.format, "mooncake");
    assert.deepEqual(trace.records, [
      { timestampMs: 0, promptTokens: 600, outputTokens: 5, hashIds: [0, 3] },
      { timestampMs: 3000, promptTokens: 1100, outputTokens: 7, hashIds: [0, 1, 2] },
    ]);
    assert.equal(trace.skippedLines, 0);
  });

  it("names the line of a malformed record", () => {
    const bad = `${MOONCAKE}\n{"timestamp": 1, "input_length": -4, "output_length": 1, "hash_ids": []}`;
    assert.throws(
      () => parseMooncakeTrace(bad, "t.jsonl"),
      (e: unknown) =>
        e instanceof TraceFormatError && e.line === 4 && /t\.jsonl:4: "input_length"/.test(e.message),
    );
    assert.throws(() => parseMooncakeTrace("{not json", "x.jsonl"), /x\.jsonl:1: not valid JSON/);
    assert.throws(() => parseMooncakeTrace("[1,2]", "x.jsonl"), /expected a JSON object/);
    assert.throws(
      () =>
        parseMooncakeTrace('{"timestamp":0,"input_length":5,"output_length":1,"hash_ids":[1.5]}', "x.jsonl"),
      /"hash_ids" must be an array of non-negative integers/,
    );
    assert.throws(() => parseMooncakeTrace("\n\n", "x.jsonl"), /no requests in trace/);
  });

  it("skips and counts malformed lines when asked", () => {
    const bad = `${MOONCAKE}\nnope\n{"timestamp": 5}`;
    const trace = parseMooncakeTrace(bad, "t.jsonl", { skipMalformed: true });
    assert.equal(trace.records.length, 2);
    assert.equal(trace.skippedLines, 2);
  });
});

const AZURE = [
  "TIMESTAMP,ContextTokens,GeneratedTokens",
  "2023-11-16 18:17:04.0319600,3180,8",
  "2023-11-16 18:17:03.9799600,4808,10",
  "2023-11-16 18:17:05.5,100,1",
  "",
].join("\n");

describe("azure reader", () => {
  it("parses timestamps to ms since the first request", () => {
    const trace = parseAzureTrace(AZURE, "a.csv");
    assert.equal(trace.records.length, 3);
    assert.deepEqual(
      trace.records.map((r) => [Math.round(r.timestampMs * 1000) / 1000, r.promptTokens, r.outputTokens]),
      [
        [0, 4808, 10],
        [52, 3180, 8],
        [1520.04, 100, 1],
      ],
    );
    assert.equal(trace.records[0]?.hashIds, undefined);
  });

  it("rejects bad headers and rows with their line numbers", () => {
    assert.throws(() => parseAzureTrace("a,b,c\n", "a.csv"), /a\.csv:1: expected header/);
    assert.throws(
      () => parseAzureTrace(`${AZURE}2023-13-16 18:17:05,1,1\n`, "a.csv"),
      (e: unknown) => e instanceof TraceFormatError && e.line === 5 && /TIMESTAMP/.test(e.message),
    );
    assert.throws(
      () => parseAzureTrace(`${AZURE}2023-11-16 18:17:05,x,1\n`, "a.csv"),
      /a\.csv:5: ContextTokens/,
    );
    assert.throws(
      () => parseAzureTrace(`${AZURE}2023-11-16 18:17:05,1\n`, "a.csv"),
      /expected 3 comma-separated/,
    );
    const skipped = parseAzureTrace(`${AZURE}garbage\n`, "a.csv", { skipMalformed: true });
    assert.equal(skipped.skippedLines, 1);
  });

  it("parses the timestamp format exactly", () => {
    assert.equal(
      parseAzureTimestamp("2023-11-16 18:17:03.9799600"),
      Date.UTC(2023, 10, 16, 18, 17, 3) + 979.96,
    );
    assert.equal(parseAzureTimestamp("2023-11-16 25:00:00"), undefined);
    assert.equal(parseAzureTimestamp("16/11/2023"), undefined);
  });
});

describe("format dispatch", () => {
  it("chooses the reader from the extension", () => {
    assert.equal(traceFormatFromPath("a/b.JSONL"), "mooncake");
    assert.equal(traceFormatFromPath("x.csv"), "azure");
    assert.throws(() => traceFormatFromPath("x.txt"), /--format/);
    assert.equal(parseTrace(AZURE, "a", "azure").format, "azure");
  });
});
