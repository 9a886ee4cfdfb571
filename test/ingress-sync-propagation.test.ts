// `ingress.state` propagation is measured where it happens (issue 4): each snapshot carries its send
// time with sub-millisecond resolution, a peer that applies it records published → applied in
// `sluice_ingress_sync_propagation_seconds`, and the publisher records first change → sent in
// `sluice_ingress_sync_publish_delay_seconds`. Change-driven snapshots keep their minimum gap (the
// debounce). No speed is asserted here: the figures belong to bench/ingress-sync.ts.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import type { LaunchedIngress } from "@sluice/ingress";
import { IngressStateSchema } from "@sluice/proto";
import { connect, type NatsConnection } from "nats";
import {
  type FakeEngine,
  launch,
  metricValue,
  registerEngine,
  startCluster,
  startFakeEngine,
  type TestCluster,
  until,
} from "./ingress-helpers.js";

const DEBOUNCE_MS = 400;
const PROPAGATION = "sluice_ingress_sync_propagation_seconds";
const PUBLISH_DELAY = "sluice_ingress_sync_publish_delay_seconds";

let cluster: TestCluster;
let engine: FakeEngine;
let publisher: LaunchedIngress;
let peer: LaunchedIngress;
let observer: NatsConnection;
/** The publisher's snapshots as they cross the bus: send stamp (epoch ms) and seq. */
const sent: { timestampMs: number; seq: number }[] = [];
let peerOnBus = false;

before(async () => {
  cluster = await startCluster();
  // Each (streamed) answer takes ~1 s, longer than the debounce: the snapshot carrying the admission goes out
  // while the request is still in flight, so the peer sees the model (a peer applies snapshots only
  // to models it knows, and an admission and release folded into one snapshot would show none).
  engine = await startFakeEngine({ chunks: 10, chunkDelayMs: 100 });
  await registerEngine(cluster, { workerId: "engine-1", model: "fast-llm", url: engine.url });
  // A long heartbeat: every snapshot the publisher sends during the test is change-driven (or the one
  // it sends on connecting), so the debounce gap can be checked on the wire. Neither needs to have heard the
  // other before the test: a leased peer not heard from only puts an instance on its fail-static share
  // of a generous limit, and the peer takes in the publisher's model from its first snapshot with load.
  const common = [
    "--trust-class-header",
    "--max-inflight",
    "1000",
    "--state-heartbeat",
    "60s",
    "--state-debounce",
    `${DEBOUNCE_MS}ms`,
  ];
  observer = await connect({ servers: cluster.nats.url });
  observer.subscribe("sluice.v1.default.ingress.state", {
    callback: (_error, msg) => {
      const state = fromBinary(IngressStateSchema, msg.data);
      if (state.instanceId === "peer") peerOnBus = true;
      if (state.instanceId === "publisher")
        sent.push({ timestampMs: state.timestampMs, seq: Number(state.seq) });
    },
  });
  await observer.flush();
  peer = await launch(cluster, ["--id", "peer", ...common]);
  // Its connect snapshot on the bus means it has subscribed too (the runtime subscribes on connecting).
  await until("the peer is on the bus", () => peerOnBus, 15_000);
  publisher = await launch(cluster, ["--id", "publisher", ...common]);
});

after(async () => {
  await observer?.close();
  await publisher?.stop();
  await peer?.stop();
  await engine?.close();
  await cluster?.close();
});

async function count(adminUrl: string, histogram: string): Promise<number> {
  return (await metricValue(adminUrl, `${histogram}_count`)) ?? 0;
}

describe("ingress.state propagation metrics", () => {
  it("records published → applied at the peer and change → sent at the publisher", async () => {
    const appliedBefore = await count(peer.adminUrl, PROPAGATION);
    const publishedBefore = await count(publisher.adminUrl, PUBLISH_DELAY);
    const sentBefore = sent.length;
    const response = await fetch(`${publisher.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-sluice-class": "critical" },
      body: JSON.stringify({ model: "fast-llm", prompt: "hello", max_tokens: 4, stream: true }),
    });
    assert.equal(response.status, 200);
    await response.text();
    // Admitted, then released: two changes, at least one snapshot (two unless both fall in one turn).
    await until("the peer applied the publisher's change", async () => {
      return (await count(peer.adminUrl, PROPAGATION)) > appliedBefore;
    }).catch(async (error: unknown) => {
      const page = await (await fetch(`${peer.adminUrl}/metrics`)).text();
      const lines = page.split("\n").filter((l) => l.includes("_sync") || l.includes("dropped"));
      throw new Error(
        `${(error as Error).message}; the peer's sync series:\n${lines.filter((l) => !l.includes("bucket")).join("\n")}`,
        {
          cause: error,
        },
      );
    });
    await until("the publisher counted a change-driven snapshot", async () => {
      return (await count(publisher.adminUrl, PUBLISH_DELAY)) > publishedBefore;
    });
    await until("the request released its slot", () => publisher.ledger.total().requests === 0);

    const sum = (await metricValue(peer.adminUrl, `${PROPAGATION}_sum`)) ?? Number.NaN;
    assert.ok(Number.isFinite(sum) && sum >= 0, `propagation sum ${sum}`);
    // Sub-millisecond send stamps on the Unix epoch (Date.now() would give whole milliseconds).
    const stamps = sent.slice(sentBefore);
    assert.ok(stamps.length >= 1, "the observer saw the publisher's snapshot");
    for (const s of stamps)
      assert.ok(Math.abs(s.timestampMs - Date.now()) < 60_000, `stamp ${s.timestampMs}`);
    assert.ok(
      sent.some((s) => !Number.isInteger(s.timestampMs)),
      `stamps ${sent.map((s) => s.timestampMs).join(", ")}`,
    );
  });

  it("keeps the debounce gap between change-driven snapshots", async () => {
    const sentBefore = sent.length;
    // Several changes in quick succession: admissions and releases of concurrent requests.
    const answers = await Promise.all(
      Array.from({ length: 4 }, () =>
        fetch(`${publisher.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-sluice-class": "critical" },
          body: JSON.stringify({ model: "fast-llm", prompt: "hello", max_tokens: 4, stream: true }),
        }).then(async (r) => {
          await r.text();
          return r.status;
        }),
      ),
    );
    assert.deepEqual(answers, [200, 200, 200, 200]);
    await until("the requests released their slots", () => publisher.ledger.total().requests === 0);
    // Until a whole quiet period passes, so the snapshot of the last change is on the bus too.
    await until("no snapshot pending", async () => {
      const n = sent.length;
      await new Promise((r) => setTimeout(r, DEBOUNCE_MS * 2));
      return sent.length === n;
    });
    const fresh = sent.slice(sentBefore);
    assert.ok(fresh.length >= 1, "the changes were published");
    for (let k = 1; k < fresh.length; k++) {
      const gap = (fresh[k]?.timestampMs ?? 0) - (fresh[k - 1]?.timestampMs ?? 0);
      // The gap is kept on the monotonic clock; the stamps add the same monotonic time to one origin.
      assert.ok(
        gap >= DEBOUNCE_MS - 1,
        `snapshots ${fresh[k - 1]?.seq} → ${fresh[k]?.seq} only ${gap} ms apart`,
      );
    }
  });
});
