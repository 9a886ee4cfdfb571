import { strict as assert } from "node:assert";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { expandBlockHashes, uniqueBlockHashes } from "./block-hash.js";
import { parseMooncakeTrace } from "./mooncake-reader.js";

const AT_64 = { traceBlockTokens: 512, engineBlockTokens: 64 };

describe("block hash expansion", () => {
  it("keeps shared trace blocks shared at a smaller engine block size, and chains", () => {
    const a = expandBlockHashes([7, 8, 9], 1536, AT_64);
    const b = expandBlockHashes([7, 8, 10], 1536, AT_64);
    const c = expandBlockHashes([6, 8, 9], 1536, AT_64);
    assert.equal(a.length, 24);
    assert.deepEqual(a.slice(0, 16), b.slice(0, 16));
    for (let j = 16; j < 24; j++) assert.notEqual(a[j], b[j]);
    // Same later ids after a different first block: nothing shared (hashes chain the prefix).
    for (let j = 0; j < 24; j++) assert.notEqual(a[j], c[j]);
    assert.equal(new Set(a).size, 24);
    for (const h of a) assert.ok(Number.isSafeInteger(h) && h >= 0);
  });

  it("hashes only full engine blocks unless asked, and handles block sizes that do not divide 512", () => {
    assert.equal(expandBlockHashes([1, 2], 1000, AT_64).length, 15);
    assert.equal(expandBlockHashes([1, 2], 1000, { ...AT_64, includePartialBlock: true }).length, 16);
    const x = expandBlockHashes([1, 2, 3], 1300, { traceBlockTokens: 512, engineBlockTokens: 48 });
    const y = expandBlockHashes([1, 2, 4], 1300, { traceBlockTokens: 512, engineBlockTokens: 48 });
    // Blocks 0..20 end at token 1008 ≤ 1024, inside the shared first two trace blocks; block 21 straddles.
    assert.deepEqual(x.slice(0, 21), y.slice(0, 21));
    assert.notEqual(x[21], y[21]);
  });

  it("gives unique prompts disjoint hashes", () => {
    const a = uniqueBlockHashes(1, 640, 64);
    const b = uniqueBlockHashes(2, 640, 64);
    assert.equal(a.length, 10);
    assert.equal(new Set([...a, ...b]).size, 20);
  });
});

// The traces README: "with an unlimited cache, 36.6% (conversation) and 64% (synthetic) of 512-token blocks
// are prefix hits". Counting the partial last block too (as the README does), our expansion must agree.
const TRACES = "/work/shared/traces";
function hitFraction(file: string, engineBlockTokens: number, includePartialBlock: boolean): number {
  const trace = parseMooncakeTrace(readFileSync(`${TRACES}/${file}`, "utf8"), file);
  const seen = new Set<number>();
  let hits = 0;
  let total = 0;
  for (const r of trace.records) {
    const hashes = expandBlockHashes(r.hashIds ?? [], r.promptTokens, {
      traceBlockTokens: 512,
      engineBlockTokens,
      includePartialBlock,
    });
    for (const h of hashes) {
      total++;
      if (seen.has(h)) hits++;
      else seen.add(h);
    }
  }
  return hits / total;
}

describe("prefix sharing of the shared Mooncake traces", {
  skip: !existsSync(TRACES) && "traces not present",
}, () => {
  it("reproduces the README's unlimited-cache hit rates at 512-token blocks", () => {
    assert.equal(Math.round(hitFraction("mooncake_conversation.jsonl", 512, true) * 1000) / 10, 36.6);
    assert.equal(Math.round(hitFraction("mooncake_synthetic.jsonl", 512, true) * 1000) / 10, 64.0);
  });

  it("keeps the sharing at the engine's 64-token blocks (full blocks only)", () => {
    const conv = hitFraction("mooncake_conversation.jsonl", 64, false);
    const synth = hitFraction("mooncake_synthetic.jsonl", 64, false);
    assert.ok(conv > 0.36 && conv < 0.4, `conversation ${conv}`);
    assert.ok(synth > 0.63 && synth < 0.68, `synthetic ${synth}`);
  });
});
