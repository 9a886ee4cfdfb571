// L3 (engine-scheduler) decision cost with a 256-deep queue: p50 / p99 of one arrival decision
// (`offer`), of one release decision (`nextAdmission`, ITL guard evaluated) and of a full
// `reevaluate` pass over the queue. Target (DESIGN §1): p99 < 50 µs per decision.
// Run: node --conditions=sluice-src --import tsx bench/l3-decision.ts [--ops N]
// (plain `node --import tsx bench/l3-decision.ts` works too after `npx tsc -b`, from packages/core/dist).
import { parseArgs } from "node:util";
import { createEngineDecision, DEFAULT_ENGINE_DECISION_OPTIONS, type EngineDecision } from "@sluice/core";
import { machineDescription, measuredAt, writeResultsSection } from "./results-section.js";

/** The built-in classes (critical, standard, sheddable) that the decision defaults to. */
const BUILT_IN_CLASSES = DEFAULT_ENGINE_DECISION_OPTIONS.classes;

const { values } = parseArgs({
  options: { ops: { type: "string", default: "200000" }, depth: { type: "string", default: "256" } },
});
const ops = Number(values.ops);
const depth = Number(values.depth);
if (!(Number.isInteger(ops) && ops > 0 && Number.isInteger(depth) && depth > 0)) {
  console.error("--ops and --depth must be positive integers");
  process.exit(2);
}

let seed = 12345;
const rnd = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const classNames = BUILT_IN_CLASSES.map((c) => c.name);
const randomClass = () => classNames[Math.floor(rnd() * classNames.length)]!;

/**
 * A decision whose engine is full (so the queue stays put) with `depth` requests queued, models warmed
 * with observations so the fits are live, and objectives loose enough that nothing is rejected.
 */
function setup(): { d: EngineDecision; nowMs: number } {
  const d = createEngineDecision({
    engine: { maxInflight: 64, maxQueue: depth * 2, maxQueueMs: 0, ttftMarginMs: 50 },
    engineMaxNumSeqs: 64,
    engineKvTotalTokens: 1 << 20,
    classes: BUILT_IN_CLASSES.map((c) => ({ ...c, ttftObjectiveMs: 1e9 })),
  });
  let nowMs = 0;
  for (let i = 0; i < 64; i++) {
    d.offer(
      { id: `run${i}`, className: randomClass(), promptTokens: 1000 + Math.floor(rnd() * 3000) },
      nowMs,
    );
    d.nextAdmission(nowMs, { kvUsage: 0.3 });
    // Running requests are past their prefill (a steady decode batch): without a first token the
    // ITL guard would rightly hold every newcomer behind ~160k tokens of pending prefill.
    d.onFirstToken(`run${i}`, nowMs);
  }
  for (let i = 0; i < 500; i++) {
    d.models.observePrefill({
      aheadTokens: rnd() * 8000,
      uncachedTokens: 500 + rnd() * 3000,
      elapsedMs: 50 + rnd() * 200,
    });
    d.models.observeDecode({ gapMs: 10 + rnd() * 10, batchSize: 1 + Math.floor(rnd() * 64), kvUsage: rnd() });
  }
  for (let i = 0; i < depth; i++) {
    nowMs += 1;
    const r = d.offer(
      { id: `q${i}`, className: randomClass(), promptTokens: 100 + Math.floor(rnd() * 4000) },
      nowMs,
    );
    if (!r.admit) throw new Error(`setup: q${i} rejected (${r.rejection.reason})`);
  }
  return { d, nowMs };
}

function quantiles(samples: Float64Array): { p50: number; p99: number } {
  samples.sort();
  return {
    p50: samples[Math.floor(samples.length * 0.5)]!,
    p99: samples[Math.floor(samples.length * 0.99)]!,
  };
}

const toUs = (ns: number) => ns / 1000;

/** Arrival: offer one request against `depth` queued, then cancel it so the depth stays constant. */
function benchOffer(): { p50: number; p99: number } {
  const { d, nowMs } = setup();
  const samples = new Float64Array(ops);
  for (let i = 0; i < ops; i++) {
    const id = `x${i}`;
    const req = {
      id,
      className: randomClass(),
      promptTokens: 100 + Math.floor(rnd() * 4000),
      cachedTokens: 0,
    };
    const t0 = process.hrtime.bigint();
    d.offer(req, nowMs + i * 1e-3);
    samples[i] = Number(process.hrtime.bigint() - t0);
    d.cancel(id);
  }
  return quantiles(samples);
}

/** Release: a finished request frees a slot and the head is considered (ITL guard) and admitted; a new request refills the queue. */
function benchRelease(): { p50: number; p99: number } {
  const { d } = setup();
  let nowMs = 1e6;
  const running: string[] = [];
  for (let i = 0; i < 64; i++) running.push(`run${i}`);
  const samples = new Float64Array(ops);
  for (let i = 0; i < ops; i++) {
    nowMs += 1;
    const victim = running[i % running.length]!;
    d.onFinished(victim);
    const t0 = process.hrtime.bigint();
    const r = d.nextAdmission(nowMs, { kvUsage: 0.3 });
    samples[i] = Number(process.hrtime.bigint() - t0);
    if (r.kind === "admit") {
      running[i % running.length] = r.id;
      d.onFirstToken(r.id, nowMs);
    } else throw new Error(`release bench: expected an admission, got ${r.kind}`);
    d.offer({ id: `y${i}`, className: randomClass(), promptTokens: 100 + Math.floor(rnd() * 4000) }, nowMs);
  }
  return quantiles(samples);
}

/** Reevaluate: one pass over the whole queue (nothing to reject, the worst case walks everything). */
function benchReevaluate(): { p50: number; p99: number } {
  const { d, nowMs } = setup();
  const n = Math.max(1000, Math.floor(ops / 20));
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const out = d.reevaluate(nowMs + i);
    samples[i] = Number(process.hrtime.bigint() - t0);
    if (out.length !== 0) throw new Error("reevaluate bench: unexpected rejection");
  }
  return quantiles(samples);
}

// Warm-up so the JIT has optimised every path before measuring.
for (let i = 0; i < 2; i++) {
  benchOffer();
  benchRelease();
}
const offer = benchOffer();
const release = benchRelease();
const reevaluate = benchReevaluate();
const fmt = (v: number) => toUs(v).toFixed(2);
const verdict = (p99Ns: number) => (toUs(p99Ns) < 50 ? "yes" : "**no**");
const perRequest = (ns: number) => ns / depth;
const args = process.argv.slice(2).join(" ");
const markdown = `## L3 decision cost (\`bench/l3-decision.ts\`)

Command: \`node --conditions=sluice-src --import tsx bench/l3-decision.ts${args === "" ? "" : ` ${args}`}\`
(${measuredAt()}; ${machineDescription()}).

One core decision (\`createEngineDecision\`, built-in classes) with ${depth} requests queued behind a full
64-slot engine, online models warmed with 500 observations; ${ops} timed calls per operation after two
untimed warm-up passes (\`process.hrtime.bigint\` around each call). Target (DESIGN §1): p99 < 50 µs per decision.

| L3 decision (${depth} queued) | p50 µs | p99 µs | target met |
|---|---|---|---|
| arrival (\`offer\`) | ${fmt(offer.p50)} | ${fmt(offer.p99)} | ${verdict(offer.p99)} |
| release (\`nextAdmission\`, ITL guard) | ${fmt(release.p50)} | ${fmt(release.p99)} | ${verdict(release.p99)} |
| \`reevaluate\`, per queued request (one pass re-decides all ${depth}: p50 ${fmt(reevaluate.p50)} µs, p99 ${fmt(reevaluate.p99)} µs per pass) | ${fmt(perRequest(reevaluate.p50))} | ${fmt(perRequest(reevaluate.p99))} | ${verdict(perRequest(reevaluate.p99))} |
`;
console.log(markdown);
writeResultsSection("l3-decision", markdown);
