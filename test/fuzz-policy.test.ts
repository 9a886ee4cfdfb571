// Fuzz (issue 9 item 2): bad policy documents. Written behind the CLI's back into etcd under the policy
// keys (enforcing, per model, shadow) — random bytes, truncated JSON, YAML where proto3 JSON belongs,
// wrong types, out-of-range and non-finite values, unknown fields, deep nesting, near-limit sizes —
// each is refused by every watching process (router, aggregator, ingress) with a counted rejection and
// a `policy_rejected` event, the last good policy stays in force, and a valid document afterwards still
// applies. The same documents given to `sluice policy set` exit non-zero with a message and write
// nothing. Seeded (SLUICE_FUZZ_SEED replays, SLUICE_FUZZ_CASES runs more).

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type LaunchedAggregator, launchAggregator } from "@sluice/aggregator";
import { runPolicy } from "@sluice/cli";
import type { LaunchedIngress } from "@sluice/ingress";
import { type LaunchedRouter, launchRouter } from "@sluice/router";
import { policyKeys } from "@sluice/runtime";
import { connect, type NatsConnection } from "nats";
import {
  assertHealthy,
  createRng,
  deeplyNested,
  eventually,
  fuzzCaseCount,
  fuzzSeed,
  metricSum,
  type Rng,
  reportCases,
  scrape,
} from "./fuzz-helpers.js";
import { launch, startCluster, type TestCluster } from "./ingress-helpers.js";

const NS = "pfz";
const PREFIX = "/pfz/v1";
const MODEL = "pfz-llm";
const keys = policyKeys(PREFIX);

const GOOD = {
  description: "last good",
  ingress: { maxInflight: 77, kvOvercommit: 1.5 },
  router: { maxHoldMs: 250 },
  classes: [
    { name: "critical", ttftObjectiveMs: 900 },
    { name: "standard", ttftObjectiveMs: 2_500 },
  ],
};

/** A document no valid policy can be: every one must be refused. */
function badDocument(rng: Rng, index: number, forCli = false): { category: string; text: string } {
  const good = JSON.stringify(GOOD);
  const generators: (() => { category: string; text: string })[] = [
    // A control character first: neither JSON nor YAML.
    () => ({ category: "random-bytes", text: `\u0001${rng.bytes(rng.between(1, 2048)).toString("latin1")}` }),
    () => ({ category: "truncated-json", text: good.slice(0, rng.between(1, good.length - 1)) }),
    () => ({
      category: "yaml-or-scalar",
      // YAML is fine for the CLI, not in etcd (stored policies are proto3 JSON); scalars are never a policy.
      text: rng.pick([
        ...(forCli ? [] : ["ingress:\n  maxInflight: 5\n"]),
        "just a string",
        "42",
        "[]",
        "null",
        '"{}"',
        "- a\n- b\n",
      ]),
    }),
    () => {
      const wrong = rng.pick([
        { ingress: { maxInflight: "many" } },
        { ingress: { kvOvercommit: "lots" } },
        { ingress: [] },
        { classes: "critical" },
        { classes: [{ name: 5 }] },
        { classes: [{ name: "c", ttftObjectiveMs: true }] },
        { failMode: "LOOSE" },
        { router: { maxHoldMs: {} } },
        { router: { classMaxHeld: [1, 2] } },
        { engine: { maxQueue: "x" } },
        { tenants: [{ tenant: 1 }] },
        { model: 12 },
      ]);
      return { category: "wrong-type", text: JSON.stringify(wrong) };
    },
    () => {
      const out = rng.pick([
        { ingress: { kvOvercommit: -1 } },
        { ingress: { kvOvercommit: "NaN" } },
        { ingress: { kvOvercommit: "Infinity" } },
        { ingress: { maxInflight: -5 } },
        { ingress: { maxInflight: 1.5 } },
        { ingress: { maxInflight: 4_294_967_296 } },
        { classes: [{ name: "c", limitShare: -0.5 }] },
        { classes: [{ name: "c", ttftObjectiveMs: -1 }] },
        { router: { busyDecodeBlockFraction: "-Infinity" } },
        { rejection: { retryAfterMinMs: -1 } },
      ]);
      return { category: "out-of-range", text: JSON.stringify(out) };
    },
    () => ({
      category: "unknown-field",
      text: JSON.stringify({ ...GOOD, [rng.pick(["ingres", "__proto__x", "maxInflight", "x_extra"])]: 1 }),
    }),
    () => {
      const depth = rng.pick([100, 10_000, 100_000]);
      return {
        category: "deep-nesting",
        text: `{"ingress":{"classLimitShare":${deeplyNested(depth, rng.chance(0.5) ? "array" : "object")}}}`,
      };
    },
    () => ({
      category: "huge",
      text: JSON.stringify({ description: "d".repeat(rng.between(100_000, 1_000_000)), unknownHuge: 1 }),
    }),
  ];
  return (generators[index % generators.length] as () => { category: string; text: string })();
}

describe("fuzz: policies", () => {
  let cluster: TestCluster;
  let router: LaunchedRouter;
  let aggregator: LaunchedAggregator;
  let ingress: LaunchedIngress;
  let nc: NatsConnection;
  let rejectedEvents = 0;
  let dir: string;
  const seed = fuzzSeed("policy");
  const processes = () =>
    [
      ["router", router.adminUrl],
      ["aggregator", aggregator.adminUrl],
      ["ingress", ingress.adminUrl],
    ] as const;

  /** Sum over processes of a metric: one number per process. */
  const perProcess = async (name: string, ...labels: string[]) =>
    Promise.all(processes().map(async ([, url]) => metricSum(await scrape(url), name, ...labels)));

  before(async () => {
    cluster = await startCluster(PREFIX);
    dir = mkdtempSync(join(tmpdir(), "sluice-fuzz-policy-"));
    nc = await connect({ servers: cluster.nats.url });
    const sub = nc.subscribe(`sluice.v1.${NS}.events.*.policy_rejected`);
    void (async () => {
      for await (const _m of sub) rejectedEvents++;
    })();
    await nc.flush();
    // The last good policies, in force before anything bad arrives.
    await cluster.etcd.put(keys.enforcing("_default")).value(JSON.stringify(GOOD));
    await cluster.etcd.put(keys.enforcing(MODEL)).value(JSON.stringify({ ...GOOD, model: MODEL }));
    const common = [
      "--admin-port=0",
      "--log-level=silent",
      `--nats-url=${cluster.nats.url}`,
      `--etcd-endpoints=${cluster.etcdServer.endpoints.join(",")}`,
      `--etcd-prefix=${PREFIX}`,
      `--namespace=${NS}`,
    ];
    const r = await launchRouter({ argv: [...common, "--grpc-port=0", "--id=pr1"], env: {} });
    assert.ok(typeof r !== "number", "router started");
    router = r;
    const a = await launchAggregator({ argv: [...common, "--id=pagg"], env: {} });
    assert.ok(typeof a !== "number", "aggregator started");
    aggregator = a;
    ingress = await launch(cluster, ["--namespace", NS, "--id", "pingress"]);
    await eventually("every process to apply the good policies", async () =>
      (await perProcess("sluice_policy_applied_timestamp_seconds", 'kind="enforcing"')).every((v) => v > 0),
    );
  });

  after(async () => {
    await nc?.close();
    await ingress?.stop();
    await aggregator?.stop();
    await router?.stop();
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("refuses every bad stored document in every process, keeping the last good policy", async () => {
    const rng = createRng(seed);
    const total = fuzzCaseCount(32);
    const appliedBefore = await perProcess("sluice_policy_applied_timestamp_seconds");
    const eventsBefore = rejectedEvents;
    const counts: Record<string, number> = {};
    for (let i = 0; i < total; i++) {
      const doc = badDocument(rng, i);
      const key = rng.pick([keys.enforcing("_default"), keys.enforcing(MODEL), keys.shadow("_default")]);
      const before = await perProcess("sluice_policy_rejected_total");
      await cluster.etcd.put(key).value(doc.text);
      await eventually(
        `every process to refuse "${doc.category}" at ${key} (case ${i}, seed ${seed}): ${doc.text.slice(0, 80)}`,
        async () =>
          (await perProcess("sluice_policy_rejected_total")).every((v, p) => v > (before[p] as number)),
        15_000,
      );
      counts[doc.category] = (counts[doc.category] ?? 0) + 1;
    }
    reportCases("policy", "stored policies (router, aggregator, ingress)", counts);
    await eventually("policy_rejected events on NATS", () => rejectedEvents - eventsBefore >= total);
    // Nothing bad applied: the applied timestamps did not move.
    assert.deepEqual(await perProcess("sluice_policy_applied_timestamp_seconds"), appliedBefore);
    for (const [who, url] of processes()) await assertHealthy(url, who);

    // The keys hold garbage now; a valid document still applies everywhere.
    await cluster.etcd
      .put(keys.enforcing("_default"))
      .value(JSON.stringify({ ingress: { maxInflight: 78 } }));
    await eventually("every process to apply the next good policy", async () =>
      (await perProcess("sluice_policy_applied_timestamp_seconds")).every(
        (v, p) => v > (appliedBefore[p] as number),
      ),
    );
  });

  it("`sluice policy set` refuses the same documents: non-zero exit, a message, nothing written", async () => {
    const rng = createRng(seed ^ 0xc11);
    const total = Math.max(8, Math.floor(fuzzCaseCount(32) / 2));
    const counts: Record<string, number> = {};
    const key = keys.enforcing("cli-model");
    for (let i = 0; i < total; i++) {
      const doc = badDocument(rng, i, true);
      const path = join(dir, `bad-${i}.${rng.pick(["yaml", "json"])}`);
      writeFileSync(path, doc.text, "latin1");
      let stdout = "";
      let stderr = "";
      const code = await runPolicy(["set", "-f", path, "--model", "cli-model"], {
        stdout: { write: (t: string) => (stdout += t) },
        stderr: { write: (t: string) => (stderr += t) },
        env: { SLUICE_ETCD_ENDPOINTS: cluster.etcdServer.endpoints.join(","), SLUICE_ETCD_PREFIX: PREFIX },
      });
      const what = `policy set "${doc.category}" (case ${i}, seed ${seed}): ${doc.text.slice(0, 80)}`;
      assert.notEqual(code, 0, `${what}: exit code (stdout ${stdout})`);
      assert.ok(stderr.trim().length > 0, `${what}: no message`);
      assert.ok(stderr.length < 20_000, `${what}: message of ${stderr.length} characters`);
      assert.equal(await cluster.etcd.get(key).string(), null, `${what}: something was written`);
      counts[doc.category] = (counts[doc.category] ?? 0) + 1;
    }
    reportCases("policy", "sluice policy set", counts);
  });
});
