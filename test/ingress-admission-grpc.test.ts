// gRPC sluice.v1.Admission on `sluice ingress`: Check runs the same L1 decision as the HTTP path and
// shares its in-flight count; Release frees the slot exactly once per request id.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { LaunchedIngress } from "@sluice/ingress";
import { Admission, callUnary, grpcClientConstructor, Reason } from "@sluice/proto";
import { launch, registerEngine, startCluster, type TestCluster, until } from "./ingress-helpers.js";

const AdmissionClient = grpcClientConstructor(Admission);
let cluster: TestCluster;
let ingress: LaunchedIngress;
let client: InstanceType<typeof AdmissionClient>;

before(async () => {
  cluster = await startCluster();
  await registerEngine(cluster, {
    workerId: "e1",
    model: "m",
    url: "http://127.0.0.1:1",
    kvTotalBlocks: 1000,
  });
  await cluster.etcd
    .put(`${cluster.prefix}/policies/_default`)
    .value(JSON.stringify({ ingress: { maxInflight: 3 } }));
  ingress = await launch(cluster);
  const { credentials } = await import("@grpc/grpc-js");
  client = new AdmissionClient(ingress.grpcTarget, credentials.createInsecure());
  await until("engine visible", async () => {
    const models = (await (await fetch(`${ingress.url}/v1/models`)).json()) as { data: unknown[] };
    return models.data.length === 1;
  });
});

after(async () => {
  client?.close();
  await ingress?.stop();
  await cluster?.close();
});

const check = (requestId: string, requestClass = "critical") =>
  callUnary(
    client,
    client.check,
    { requestId, model: "m", requestClass, promptBytes: 400, maxTokens: 64 },
    { timeoutMs: 5_000 },
  );

describe("gRPC Admission", () => {
  it("admits up to the class's share of the limit, then rejects with the numbers", async () => {
    // An anonymous caller cannot raise itself to critical: it runs as standard (share 0.9 × 3 = 2).
    const first = await check("g1");
    assert.equal(first.admitted, true);
    assert.equal(first.requestClass, "standard");
    assert.equal(first.chargedKvBlocks, Math.ceil((100 + 64) / 16));
    assert.equal((await check("g2")).admitted, true);
    const third = await check("g3");
    assert.equal(third.admitted, false);
    assert.equal(third.rejection?.reason, Reason.INFLIGHT_LIMIT);
    assert.equal(third.rejection?.limitValue, 2);
    assert.ok((third.rejection?.retryAfterMs ?? 0) >= 100);
    assert.equal(ingress.ledger.total().requests, 2);
  });

  it("releases exactly once per request id", async () => {
    const release = (requestId: string) =>
      callUnary(client, client.release, { requestId }, { timeoutMs: 5_000 });
    assert.equal((await release("g1")).released, true);
    assert.equal((await release("g1")).released, false);
    assert.equal((await release("never")).released, false);
    assert.equal((await release("g2")).released, true);
    assert.equal(ingress.ledger.total().requests, 0);
    const c = ingress.ledger.counters();
    assert.equal(c.admitted, c.completed + c.failed + c.cancelled);
  });

  it("refuses calls without request id or model", async () => {
    await assert.rejects(
      callUnary(client, client.check, { requestId: "", model: "m" }, { timeoutMs: 5_000 }),
      /request_id and model are required/,
    );
  });
});
