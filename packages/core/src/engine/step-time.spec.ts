import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { EngineConfigError } from "./errors.js";
import { SPLITWISE_FIXTURE_CSV } from "./step-time.fixture.js";
import {
  dynamoMockerStepTime,
  interpolateCurve,
  parseSplitwiseCurves,
  splitwiseStepTime,
} from "./step-time.js";

const close = (actual: number, expected: number, eps = 1e-9) =>
  assert.ok(Math.abs(actual - expected) < eps, `${actual} ≉ ${expected}`);

describe("dynamoMockerStepTime", () => {
  const m = dynamoMockerStepTime();
  it("prices prefill with the quadratic fit in new tokens", () => {
    // 4.209989e-7·1000² + 1.518344e-2·1000 + 16.50142 = 0.4209989 + 15.18344 + 16.50142
    close(m.stepMs({ prefillTokens: 1000, decodeSeqs: 0, outputSeqs: 0, kvUsage: 0.5 }), 32.1058589);
    close(
      m.stepMs({ prefillTokens: 8192, decodeSeqs: 0, outputSeqs: 0, kvUsage: 0 }),
      4.209989e-7 * 8192 ** 2 + 1.518344e-2 * 8192 + 16.50142,
    );
  });
  it("prices decode with the utilisation fit, summed after prefill as the mocker's pass does", () => {
    // −25.74·0.25 + 54.01·0.5 + 5.74 = 26.31
    close(m.stepMs({ prefillTokens: 0, decodeSeqs: 3, outputSeqs: 3, kvUsage: 0.5 }), 26.31);
    close(m.stepMs({ prefillTokens: 1000, decodeSeqs: 3, outputSeqs: 4, kvUsage: 0.5 }), 32.1058589 + 26.31);
    close(m.stepMs({ prefillTokens: 0, decodeSeqs: 1, outputSeqs: 1, kvUsage: 0 }), 5.74);
    close(m.stepMs({ prefillTokens: 0, decodeSeqs: 1, outputSeqs: 1, kvUsage: 1 }), 34.01);
    close(m.stepMs({ prefillTokens: 0, decodeSeqs: 1, outputSeqs: 1, kvUsage: 1.7 }), 34.01, 1e-9); // clamped
  });
  it("charges the decode term when a completed prefill emits its first token", () => {
    close(m.stepMs({ prefillTokens: 1000, decodeSeqs: 0, outputSeqs: 1, kvUsage: 0 }), 32.1058589 + 5.74);
    assert.equal(m.stepMs({ prefillTokens: 0, decodeSeqs: 0, outputSeqs: 0, kvUsage: 0.3 }), 0);
  });
});

describe("splitwiseStepTime", () => {
  const csv = SPLITWISE_FIXTURE_CSV;
  const sel = { model: "llama2-70b", hardware: "h100-80gb", tensorParallel: 8 };

  /** Independent mean over the raw rows of one point (prefill: every row with that many total prompt tokens). */
  function mean(
    text: string,
    promptSize: number,
    batchSize: number,
    column: "prompt_time" | "token_time",
  ): number {
    const rows = text
      .trim()
      .split("\n")
      .slice(1)
      .map((l) => l.split(","))
      .filter((c) => c[0] === sel.model && c[1] === sel.hardware && c[10] === "8")
      .filter((c) =>
        column === "prompt_time"
          ? Number(c[2]) * Number(c[3]) === promptSize * batchSize
          : Number(c[3]) === batchSize,
      );
    assert.ok(rows.length > 0);
    const idx = column === "prompt_time" ? 7 : 8;
    return rows.reduce((a, c) => a + Number(c[idx]), 0) / rows.length;
  }

  it("reproduces a CSV point and interpolates linearly between points", () => {
    const m = splitwiseStepTime(csv, sel);
    const p1024 = mean(csv, 1024, 1, "prompt_time");
    const p2048 = mean(csv, 2048, 1, "prompt_time");
    assert.ok(p1024 > 70 && p1024 < 90, "README: prefill 1024 tokens ≈ 78 ms on H100 TP8");
    close(m.stepMs({ prefillTokens: 1024, decodeSeqs: 0, outputSeqs: 1, kvUsage: 0 }), p1024);
    close(m.stepMs({ prefillTokens: 1536, decodeSeqs: 0, outputSeqs: 1, kvUsage: 0 }), (p1024 + p2048) / 2);
  });

  it("interpolates decode in batch size and sums it with prefill", () => {
    const m = splitwiseStepTime(csv, sel);
    const d16 = mean(csv, 512, 16, "token_time");
    const d32 = mean(csv, 512, 32, "token_time");
    close(m.stepMs({ prefillTokens: 0, decodeSeqs: 24, outputSeqs: 24, kvUsage: 0 }), (d16 + d32) / 2);
    close(
      m.stepMs({ prefillTokens: 1024, decodeSeqs: 16, outputSeqs: 17, kvUsage: 0 }),
      mean(csv, 1024, 1, "prompt_time") + d16,
    );
  });

  const shared = new URL("../../../../../shared/perf/splitwise-sim_perf_model.csv", import.meta.url);
  it("parses the full shared table", { skip: !existsSync(shared) && "shared/perf CSV not present" }, () => {
    const full = readFileSync(shared, "utf8");
    const curves = parseSplitwiseCurves(full, sel);
    assert.deepEqual([...curves.decode.xs], [1, 2, 4, 8, 16, 32, 64]);
    assert.equal(curves.prefill.xs[0], 128);
    assert.equal(curves.prefill.xs[curves.prefill.xs.length - 1], 512 * 64);
    close(interpolateCurve(curves.prefill, 8192), mean(full, 8192, 1, "prompt_time"));
    assert.throws(
      () => splitwiseStepTime(full, { ...sel, tensorParallel: 3 }),
      /no rows for llama2-70b\/h100-80gb\/tp3; available: /,
    );
  });

  it("keys prefill by prompt_size × batch_size and clamps/extrapolates at the ends", () => {
    const text = [
      "model,hardware,prompt_size,batch_size,token_size,peak_power,average_power,prompt_time,token_time,e2e_time,tensor_parallel",
      "m,h,100,1,1,1,1,10,2,0,2",
      "m,h,100,2,1,1,1,30,4,0,2",
      "m,h,100,2,1,1,1,50,6,0,2",
    ].join("\n");
    const curves = parseSplitwiseCurves(text, { model: "m", hardware: "h", tensorParallel: 2 });
    assert.deepEqual([...curves.prefill.xs], [100, 200]);
    assert.deepEqual([...curves.prefill.ys], [10, 40]); // repeated rows averaged
    assert.equal(interpolateCurve(curves.prefill, 150), 25);
    assert.equal(interpolateCurve(curves.prefill, 10), 10); // below: first value
    assert.equal(interpolateCurve(curves.prefill, 300), 70); // above: last slope
    assert.equal(interpolateCurve(curves.decode, 3), 8); // (1 → 2, 2 → 5) extrapolated
  });

  it("rejects unknown profiles and malformed CSV with a clear error", () => {
    assert.throws(
      () => splitwiseStepTime(csv, { ...sel, tensorParallel: 3 }),
      /no rows for llama2-70b\/h100-80gb\/tp3; available: /,
    );
    assert.throws(() => splitwiseStepTime("a,b\n1,2", sel), EngineConfigError);
    assert.throws(() => splitwiseStepTime("", sel), EngineConfigError);
  });
});
