// Envoy's global rate limit API on `sluice ingress` (envoy.service.ratelimit.v3.RateLimitService/
// ShouldRateLimit), called by a grpc-js client built from OUR generated Envoy descriptors, as Envoy's
// ratelimit filter would call it: OK under the limit, OVER_LIMIT with retry-after headers and the
// OpenAI-shaped body when full, class ordering and tenants from descriptor entries, hits_addend,
// malformed requests answered INVALID_ARGUMENT without taking a slot, held slots released when their
// hold time ends and on shutdown. Real nats-server and etcd.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { credentials } from "@grpc/grpc-js";
import type { LaunchedIngress } from "@sluice/ingress";
import {
  callUnary,
  grpcClientConstructor,
  type RateLimitResponse,
  RateLimitResponse_Code,
  RateLimitService,
} from "@sluice/proto";
import { connect, type NatsConnection } from "nats";
import {
  launch,
  metricValue,
  registerEngine,
  startCluster,
  type TestCluster,
  until,
} from "./ingress-helpers.js";

const RlsClient = grpcClientConstructor(RateLimitService);
type Client = InstanceType<typeof RlsClient>;

let cluster: TestCluster;
let ingress: LaunchedIngress;
let client: Client;
let nc: NatsConnection;
const events: { outcome?: string; reason?: string; tenant?: string; requestClass?: string }[] = [];

// Limit 20: sheddable may fill 14 (0.7), standard 18 (0.9), critical 20 (1.0).
const POLICY = {
  ingress: { maxInflight: 20 },
  tenants: [
    { tenant: "acme", requestClass: "critical" },
    { tenant: "capped", maxInflight: 2 },
  ],
  rejection: { retryAfterMinMs: 100, retryAfterMaxMs: 5000 },
};

before(async () => {
  cluster = await startCluster();
  await registerEngine(cluster, { workerId: "e1", model: "m", url: "http://127.0.0.1:1" });
  await cluster.etcd.put(`${cluster.prefix}/policies/_default`).value(JSON.stringify(POLICY));
  // A hold far longer than the test: slots stay until shutdown (expiry has its own instance below).
  ingress = await launch(cluster, ["--rls-slot-hold", "10m"]);
  client = new RlsClient(ingress.grpcTarget, credentials.createInsecure());
  nc = await connect({ servers: cluster.nats.url });
  const sub = nc.subscribe("sluice.v1.default.events.ingress.*");
  void (async () => {
    for await (const m of sub) events.push(JSON.parse(new TextDecoder().decode(m.data)));
  })();
  await until("engine visible", async () => {
    const models = (await (await fetch(`${ingress.url}/v1/models`)).json()) as { data: unknown[] };
    return models.data.length === 1;
  });
});

after(async () => {
  client?.close();
  await nc?.close();
  await ingress?.stop();
  await cluster?.close();
});

function ask(
  entries: Record<string, string>,
  options: { hits?: number; descriptors?: number; to?: Client } = {},
): Promise<RateLimitResponse> {
  const to = options.to ?? client;
  const all = Object.entries(entries).map(([key, value]) => ({ key, value }));
  // Split the entries over `descriptors` descriptors, as several rate limit actions would.
  const n = options.descriptors ?? 1;
  const descriptors = Array.from({ length: n }, (_, i) => ({ entries: all.filter((_, j) => j % n === i) }));
  return callUnary(
    to,
    to.shouldRateLimit,
    { domain: "sluice", descriptors, hitsAddend: options.hits ?? 0 },
    { timeoutMs: 5_000 },
  );
}

function headers(r: RateLimitResponse): Record<string, string> {
  return Object.fromEntries(r.responseHeadersToAdd.map((h) => [h.key, h.value]));
}

function assertOverLimit(r: RateLimitResponse, reason: string, requestClass: string): void {
  assert.equal(r.overallCode, RateLimitResponse_Code.OVER_LIMIT);
  const h = headers(r);
  assert.equal(h["x-sluice-reason"], reason);
  assert.equal(h["x-sluice-class"], requestClass);
  const ms = Number(h["retry-after-ms"]);
  assert.ok(ms >= 100 && ms <= 5000, `retry-after-ms ${ms} within the policy's clamp`);
  assert.equal(h["retry-after"], String(Math.max(1, Math.ceil(ms / 1000))));
  for (const s of r.statuses) assert.equal(s.code, RateLimitResponse_Code.OVER_LIMIT);
  const body = JSON.parse(new TextDecoder().decode(r.rawBody)) as {
    error: { type: string; code: string };
    sluice: { reason: string; class: string; retry_after_ms: number };
  };
  assert.equal(body.error.type, "rate_limit_error");
  assert.equal(body.sluice.reason, reason);
  assert.equal(body.sluice.retry_after_ms, ms);
}

const inflight = () => ingress.ledger.total().requests;

describe("Envoy RateLimitService on sluice ingress", () => {
  it("answers OK under the limit and holds a slot per hit", async () => {
    const r = await ask({ model: "m", class: "sheddable", prompt_bytes: "400" }, { descriptors: 2 });
    assert.equal(r.overallCode, RateLimitResponse_Code.OK);
    assert.deepEqual(
      r.statuses.map((s) => s.code),
      [RateLimitResponse_Code.OK, RateLimitResponse_Code.OK],
    );
    assert.equal(inflight(), 1);
    assert.equal(ingress.rls.heldSlots(), 1);
  });

  it("takes the tenant from a descriptor and enforces its own in-flight limit", async () => {
    assert.equal(
      (await ask({ model: "m", tenant: "capped" }, { hits: 2 })).overallCode,
      RateLimitResponse_Code.OK,
    );
    const r = await ask({ model: "m", tenant: "capped" });
    assertOverLimit(r, "tenant_inflight", "standard");
    // Another tenant under the same load is still admitted.
    assert.equal((await ask({ model: "m", tenant: "someone" })).overallCode, RateLimitResponse_Code.OK);
    assert.equal(inflight(), 4);
    await until("tenant rejection event", () =>
      events.some((e) => e.tenant === "capped" && e.reason === "REASON_TENANT_LIMIT"),
    );
  });

  it("sheds sheddable, then standard, then critical as the same load grows", async () => {
    // 4 in flight; sheddable fills up to 14 (hits_addend 10 in one call).
    assert.equal(
      (await ask({ model: "m", class: "sheddable" }, { hits: 10 })).overallCode,
      RateLimitResponse_Code.OK,
    );
    assert.equal(inflight(), 14);
    assertOverLimit(await ask({ model: "m", class: "sheddable" }), "inflight_limit", "sheddable");
    // Standard still fits up to 18; all-or-none: 5 hits would pass 18 and take nothing.
    assertOverLimit(await ask({ model: "m" }, { hits: 5 }), "inflight_limit", "standard");
    assert.equal(inflight(), 14);
    assert.equal((await ask({ model: "m" }, { hits: 4 })).overallCode, RateLimitResponse_Code.OK);
    assertOverLimit(await ask({ model: "m" }), "inflight_limit", "standard");
    // An anonymous caller cannot raise itself to critical; an unknown class is ignored, as over HTTP.
    assertOverLimit(await ask({ model: "m", class: "critical" }), "inflight_limit", "standard");
    assertOverLimit(await ask({ model: "m", class: "gold" }), "inflight_limit", "standard");
    // The critical tenant (from its descriptor) still gets the last 2, then it is over too.
    assert.equal(
      (await ask({ model: "m", tenant: "acme" }, { hits: 2 })).overallCode,
      RateLimitResponse_Code.OK,
    );
    assertOverLimit(await ask({ model: "m", tenant: "acme" }), "inflight_limit", "critical");
    assert.equal(inflight(), 20);
  });

  it("refuses malformed requests with INVALID_ARGUMENT and takes no slot", async () => {
    const before = ingress.ledger.counters().admitted;
    const invalid = (p: Promise<unknown>, message: RegExp) =>
      assert.rejects(
        p,
        (e: { code?: number; details?: string }) => e.code === 3 && message.test(e.details ?? ""),
      );
    await invalid(
      callUnary(client, client.shouldRateLimit, { domain: "sluice", descriptors: [] }, { timeoutMs: 5_000 }),
      /no descriptors/,
    );
    await invalid(ask({ class: "critical" }), /no descriptor entry `model`/);
    await invalid(ask({ model: "m", max_tokens: "lots" }), /max_tokens/);
    await invalid(ask({ model: "m" }, { hits: 100_000 }), /hits_addend/);
    await invalid(ask({ model: "" }), /non-empty key and value/);
    assert.equal(ingress.ledger.counters().admitted, before);
    assert.equal(inflight(), 20);
    assert.ok(
      ((await metricValue(ingress.adminUrl, 'sluice_ingress_rls_calls_total{code="invalid_argument"}')) ??
        0) >= 5,
    );
    assert.equal(
      await metricValue(
        ingress.adminUrl,
        'sluice_ingress_rejected_total{model="m",class="critical",reason="inflight_limit"}',
      ),
      1,
    );
  });

  it("releases held slots when their hold time ends, and on shutdown", async () => {
    // Its own namespace and etcd prefix: no shared limit with the instance above.
    const quick = await launch(cluster, [
      "--rls-slot-hold",
      "300ms",
      "--namespace",
      "quick",
      "--etcd-prefix",
      "/sluice/quick",
    ]);
    try {
      await registerEngine(
        { ...cluster, prefix: "/sluice/quick" },
        { workerId: "q1", model: "m", url: "http://127.0.0.1:1" },
      );
      const quickClient = new RlsClient(quick.grpcTarget, credentials.createInsecure());
      try {
        await until(
          "quick ingress sees its engine",
          async () =>
            (await ask({ model: "m" }, { to: quickClient })).overallCode === RateLimitResponse_Code.OK,
        );
        await ask({ model: "m" }, { to: quickClient, hits: 3 });
        await until("held slots expire", () => quick.ledger.total().requests === 0);
        const c = quick.ledger.counters();
        assert.ok(c.admitted >= 4);
        assert.equal(c.admitted, c.completed);
        assert.equal(quick.rls.heldSlots(), 0);
      } finally {
        quickClient.close();
      }
    } finally {
      await quick.stop();
    }
    // The long-hold instance: shutdown releases its 20 slots at once, each exactly once.
    await ingress.stop();
    assert.equal(inflight(), 0);
    assert.equal(ingress.rls.heldSlots(), 0);
    const c = ingress.ledger.counters();
    assert.equal(c.admitted, 20);
    assert.equal(c.admitted, c.completed + c.failed + c.cancelled);
  });
});
