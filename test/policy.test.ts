// Live policies against real etcd and NATS: a watcher in one session applies what another session
// writes; model over _default over built-in; an invalid document written behind the CLI's back is
// ignored (last good stays), reported through onRejected, published as a policy_rejected event on
// NATS and counted.

import { strict as assert } from "node:assert";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  BUILT_IN_POLICY,
  createEtcdClient,
  type Labels,
  type Metrics,
  type PolicyApplied,
  type PolicyRejected,
  type PolicyRejectedEvent,
  type PolicyWatcher,
  parsePolicyText,
  policyKeys,
  policyRejectedMessage,
  serializePolicy,
  subjects,
  watchPolicies,
} from "@sluice/runtime";
import { type EtcdServer, type NatsServer, startEtcd, startNats } from "@sluice/testkit";
import type { Etcd3 } from "etcd3";
import { connect, type NatsConnection } from "nats";

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Records counter and gauge values by name and labels. */
function recordingMetrics() {
  const values = new Map<string, number>();
  const id = (name: string, labels: Labels = {}) => `${name}${JSON.stringify(labels)}`;
  const metrics: Metrics = {
    counter: (def) => ({
      inc: (v = 1, labels) => values.set(id(def.name, labels), (values.get(id(def.name, labels)) ?? 0) + v),
    }),
    gauge: (def) => ({
      set: (v, labels) => values.set(id(def.name, labels), v),
      inc: () => undefined,
      dec: () => undefined,
    }),
    histogram: () => ({ observe: () => undefined }),
  };
  return { metrics, get: (name: string, labels: Labels) => values.get(id(name, labels)) };
}

const PREFIX = "/policy-test/v1";
const keys = policyKeys(PREFIX);
const NAMESPACE = "policytest";

let etcdServer: EtcdServer;
let natsServer: NatsServer;
let writer: Etcd3;
let watcherClient: Etcd3;
let nc: NatsConnection;

before(async () => {
  [etcdServer, natsServer] = await Promise.all([startEtcd(), startNats()]);
  writer = createEtcdClient(etcdServer.endpoints, 2_000);
  watcherClient = createEtcdClient(etcdServer.endpoints, 2_000);
  nc = await connect({ servers: natsServer.url });
});

after(async () => {
  await nc?.drain();
  writer?.close();
  watcherClient?.close();
  await Promise.all([etcdServer?.stop(), natsServer?.stop()]);
});

async function store(model: string, yaml: string): Promise<number> {
  const res = await writer
    .put(keys.enforcing(model))
    .value(serializePolicy(parsePolicyText(yaml, { model })))
    .exec();
  return Number(res.header.revision);
}

describe("watchPolicies", () => {
  let watcher: PolicyWatcher;
  const applied: PolicyApplied[] = [];
  const rejected: PolicyRejected[] = [];
  const events: PolicyRejectedEvent[] = [];
  const recorded = recordingMetrics();

  before(async () => {
    const sub = nc.subscribe(subjects(NAMESPACE).eventsFilter({ outcome: "policy_rejected" }));
    void (async () => {
      for await (const m of sub)
        events.push(JSON.parse(new TextDecoder().decode(m.data)) as PolicyRejectedEvent);
    })();
    await nc.flush();
    watcher = await watchPolicies({
      client: watcherClient,
      prefix: PREFIX,
      metrics: recorded.metrics,
      onApplied: (change) => applied.push(change),
      onRejected: (rejection) => {
        rejected.push(rejection);
        // What a process does: publish the event on NATS.
        const msg = policyRejectedMessage(rejection, {
          subjects: subjects(NAMESPACE),
          level: "ingress",
          instanceId: "test-1",
          nowMs: Date.now(),
        });
        nc.publish(msg.subject, msg.data);
      },
    });
  });

  after(async () => {
    await watcher?.close();
  });

  it("starts on the built-in defaults when nothing is stored", () => {
    assert.equal(watcher.current("llama"), BUILT_IN_POLICY);
    assert.equal(watcher.current("llama").policy.ingress.kvOvercommit, 1.25);
    assert.equal(watcher.shadow("llama"), undefined);
  });

  it("applies _default, then a model's own policy over it", async () => {
    const defaultRev = await store("_default", "ingress: {kvOvercommit: 1.1}");
    await until("_default applied", () => watcher.current("llama").revision === defaultRev);
    assert.equal(watcher.current("llama").source, "default");
    assert.equal(watcher.current("other").policy.ingress.kvOvercommit, 1.1);

    const llamaRev = await store("llama", "ingress: {kvOvercommit: 2}\nfailMode: FAIL_MODE_CLOSED");
    await until("llama applied", () => watcher.current("llama").revision === llamaRev);
    const llama = watcher.current("llama");
    assert.equal(llama.source, "model");
    assert.equal(llama.key, keys.enforcing("llama"));
    assert.equal(llama.policy.ingress.kvOvercommit, 2);
    assert.equal(llama.policy.failMode, "closed");
    // The hot-path read returns the same immutable object until the next change.
    assert.equal(watcher.current("llama"), llama);
    assert.ok(Object.isFrozen(llama) && Object.isFrozen(llama.policy.ingress));
    assert.equal(watcher.current("other").source, "default");
    assert.equal(recorded.get("sluice_policy_revision", { model: "llama", kind: "enforcing" }), llamaRev);
    assert.ok(applied.some((a) => a.model === "llama" && a.revision === llamaRev && a.policy !== undefined));
  });

  it("ignores an invalid stored policy: last good stays, onRejected, NATS event and metric", async () => {
    const good = watcher.current("llama");
    // Behind the CLI's back: a raw put of a document core refuses.
    const bad = await writer
      .put(keys.enforcing("llama"))
      .value(JSON.stringify({ ingress: { kvOvercommit: -3 } }))
      .exec();
    const badRev = Number(bad.header.revision);
    await until("rejection reported", () => rejected.some((r) => r.revision === badRev));
    const rejection = rejected.find((r) => r.revision === badRev);
    assert.equal(rejection?.field, "ingress.kvOvercommit");
    assert.equal(rejection?.keptRevision, good.revision);
    assert.match(
      rejection?.error.message ?? "",
      /ingress\.kvOvercommit: must be a finite number ≥ 0, got -3/,
    );
    assert.equal(watcher.current("llama"), good, "the last good policy object stays in force");
    assert.ok(watcher.revision >= badRev);
    assert.equal(recorded.get("sluice_policy_rejected_total", { model: "llama", kind: "enforcing" }), 1);

    await until("policy_rejected event on NATS", () => events.some((e) => e.revision === badRev));
    const event = events.find((e) => e.revision === badRev);
    assert.equal(event?.field, "ingress.kvOvercommit");
    assert.equal(event?.key, keys.enforcing("llama"));
    assert.equal(event?.keptRevision, good.revision);
    assert.equal(event?.level, "ingress");

    // A shape error (unknown field) is refused the same way, with its path.
    const typo = await writer.put(keys.enforcing("llama")).value('{"ingress":{"kvOvercomit":2}}').exec();
    await until("typo rejected", () => rejected.some((r) => r.revision === Number(typo.header.revision)));
    assert.equal(rejected.at(-1)?.field, "ingress.kvOvercomit");
    assert.equal(watcher.current("llama"), good);
  });

  it("falls back to _default when a model's policy is deleted", async () => {
    const del = await writer.delete().key(keys.enforcing("llama")).exec();
    await until("fallback", () => watcher.current("llama").source === "default");
    assert.equal(watcher.current("llama").policy.ingress.kvOvercommit, 1.1);
    assert.ok(
      applied.some(
        (a) => a.model === "llama" && a.policy === undefined && a.revision === Number(del.header.revision),
      ),
    );
  });

  it("keeps shadow candidates beside the enforcing policy", async () => {
    const res = await writer
      .put(keys.shadow("llama"))
      .value(serializePolicy(parsePolicyText("ingress: {kvOvercommit: 3}", { model: "llama" })))
      .exec();
    await until("shadow applied", () => watcher.shadow("llama")?.revision === Number(res.header.revision));
    assert.equal(watcher.shadow("llama")?.policy.ingress.kvOvercommit, 3);
    assert.equal(watcher.current("llama").policy.ingress.kvOvercommit, 1.1, "shadow is not enforced");
    assert.equal(watcher.shadow("other"), undefined);
    await writer.delete().key(keys.shadow("llama")).exec();
    await until("shadow cleared", () => watcher.shadow("llama") === undefined);
  });

  it("rejects an invalid document already stored when a watcher starts, using the fallback", async () => {
    const res = await writer.put(keys.enforcing("mistral")).value("{not json").exec();
    const late: PolicyRejected[] = [];
    const second = await watchPolicies({ client: writer, prefix: PREFIX, onRejected: (r) => late.push(r) });
    try {
      assert.equal(late.length, 1);
      assert.equal(late[0]?.revision, Number(res.header.revision));
      assert.equal(late[0]?.keptRevision, undefined);
      assert.equal(second.current("mistral").source, "default");
    } finally {
      await second.close();
    }
  });
});
