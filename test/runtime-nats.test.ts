import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create, type DescField, type DescMessage, equals } from "@bufbuild/protobuf";
import * as proto from "@sluice/proto";
import {
  ConnectionClosedError,
  connectNats,
  createNatsClient,
  type NatsStatusEvent,
  protoCodec,
  subjects,
} from "@sluice/runtime";
import { startNats } from "@sluice/testkit";

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Every message schema @sluice/proto exports, found by shape so new messages are covered too. */
function messageSchemas(): DescMessage[] {
  return (Object.values(proto) as unknown[]).filter(
    (v): v is DescMessage =>
      typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "message",
  );
}

/** A value that differs from the field's default, so a field lost on the wire fails `equals`. */
function sampleScalar(field: DescField & { fieldKind: "scalar" | "list" }): unknown {
  const scalar = field.scalar;
  if (scalar === undefined) return undefined;
  switch (scalar) {
    case 9: // STRING
      return "s-ü";
    case 12: // BYTES
      return new Uint8Array([1, 2, 3]);
    case 8: // BOOL
      return true;
    case 1: // DOUBLE
    case 2: // FLOAT
      return 1.5;
    case 3: // INT64
    case 4: // UINT64
    case 6: // FIXED64
    case 16: // SFIXED64
    case 18: // SINT64
      return field.longAsString ? "7" : 7n;
    default:
      return 7;
  }
}

/** Fills scalar, enum and (to a small depth) message fields; leaves oneofs and maps at defaults. */
function populate(schema: DescMessage, depth = 0): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  for (const field of schema.fields) {
    if (field.oneof !== undefined) continue;
    if (field.fieldKind === "scalar") init[field.localName] = sampleScalar(field);
    else if (field.fieldKind === "enum") init[field.localName] = field.enum.values.at(-1)?.number ?? 0;
    else if (field.fieldKind === "message" && depth < 2) {
      init[field.localName] = create(field.message, populate(field.message, depth + 1));
    } else if (field.fieldKind === "list" && field.listKind === "scalar") {
      init[field.localName] = [sampleScalar(field), sampleScalar(field)];
    }
  }
  return init;
}

describe("NATS", () => {
  it("reports disconnect and reconnect across a server restart", async (t) => {
    await using nats = await startNats();
    if (nats.lifecycleUnsupportedReason !== undefined) return t.skip(nats.lifecycleUnsupportedReason);
    const handle = await connectNats({ servers: nats.url, name: "runtime-test", reconnectDelayMs: 100 });
    const seen: NatsStatusEvent["type"][] = [];
    handle.onStatus((e) => seen.push(e.type));
    try {
      await until("connected event", () => seen.includes("connected"));
      await nats.restart();
      await until("reconnected", () => seen.includes("reconnected"));
      assert.ok(seen.indexOf("disconnected") < seen.indexOf("reconnected"), seen.join(","));
      assert.equal(handle.isConnected, true);

      // And the connection works again.
      const sub = handle.connection.subscribe("after.restart", { max: 1 });
      handle.connection.publish("after.restart", new Uint8Array([1]));
      for await (const msg of sub) assert.deepEqual([...msg.data], [1]);
    } finally {
      await handle.close();
    }
    assert.equal(seen.at(-1), "closed");
  });

  it("round-trips every @sluice/proto message through protoCodec over NATS", async () => {
    await using nats = await startNats();
    const handle = await connectNats({ servers: [nats.url], name: "codec-test" });
    const s = subjects("codec");
    try {
      const schemas = messageSchemas();
      assert.ok(schemas.length >= 10, `found ${schemas.length} message schemas`);
      for (const schema of schemas) {
        const codec = protoCodec(schema);
        const sent = create(schema, populate(schema));
        const subject = `${s.prefix}.roundtrip.${schema.name}`;
        const sub = handle.connection.subscribe(subject, { max: 1 });
        handle.connection.publish(subject, codec.encode(sent));
        for await (const msg of sub) {
          const received = codec.decode(msg.data);
          assert.ok(equals(schema, received, sent), `${schema.typeName} survives the round trip`);
        }
      }
    } finally {
      await handle.close();
    }
  });

  it("status iterator ends after close", async () => {
    await using nats = await startNats();
    const handle = await connectNats({ servers: nats.url, name: "iter-test" });
    const types: string[] = [];
    const done = (async () => {
      for await (const e of handle.statusEvents()) types.push(e.type);
    })();
    await sleep(50);
    await handle.close();
    await done;
    assert.equal(types.at(-1), "closed");
  });

  it("a client created while NATS is down serves at once, then connects and subscribes when it starts", async (t) => {
    await using nats = await startNats();
    if (nats.lifecycleUnsupportedReason !== undefined) return t.skip(nats.lifecycleUnsupportedReason);
    await nats.stop();
    const started = Date.now();
    const client = createNatsClient({ servers: nats.url, name: "late-start", reconnectDelayMs: 100 });
    // Returned without waiting for the server, which is down.
    assert.ok(Date.now() - started < 1_000);
    const seen: NatsStatusEvent["type"][] = [];
    client.onStatus((e) => seen.push(e.type));
    const received: number[] = [];
    client.subscribe("late.start", (msg) => received.push(msg.data[0] ?? -1));
    try {
      assert.equal(client.isConnected, false);
      assert.equal(client.connection, undefined);
      assert.equal(client.publish("late.start", new Uint8Array([1])), false, "dropped while down");
      assert.equal(client.droppedPublishes, 1);
      await until("a failed first connect", () => seen.includes("connect-failed"));

      await nats.start();
      await client.ready(AbortSignal.timeout(20_000));
      assert.equal(client.isConnected, true);
      assert.ok(seen.includes("connected"), seen.join(","));
      // The subscription made before the first connect is live: publish until it hears one.
      await until("a message through the early subscription", () => {
        client.publish("late.start", new Uint8Array([2]));
        return received.length > 0;
      });
      assert.deepEqual([...new Set(received)], [2], "nothing published while down was delivered");
    } finally {
      await client.close();
    }
    assert.equal(seen.at(-1), "closed");
  });

  it("close() during an outage returns within a second and fails pending waits", async (t) => {
    await using nats = await startNats();
    if (nats.lifecycleUnsupportedReason !== undefined) return t.skip(nats.lifecycleUnsupportedReason);

    // Never connected: ready() waiters get ConnectionClosedError.
    await nats.stop();
    const neverUp = createNatsClient({ servers: nats.url, name: "never-up" });
    const waiting = neverUp.ready();
    await sleep(200);
    let started = Date.now();
    await neverUp.close();
    assert.ok(Date.now() - started < 1_000, `close took ${Date.now() - started} ms`);
    await assert.rejects(waiting, ConnectionClosedError);
    assert.equal(neverUp.isClosed, true);
    assert.equal(neverUp.publish("x", new Uint8Array([1])), false);

    // Connected, then the server went away: close() skips the drain that could not finish.
    await nats.start();
    const wasUp = await connectNats({ servers: nats.url, name: "was-up", reconnectDelayMs: 100 });
    await nats.stop();
    await until("the disconnect", () => !wasUp.isConnected);
    started = Date.now();
    await wasUp.close();
    assert.ok(Date.now() - started < 1_000, `close took ${Date.now() - started} ms`);
    assert.equal(wasUp.connection.isClosed(), true);

    // connectNats() is bounded by its signal, and closes what it opened.
    await assert.rejects(
      connectNats({ servers: nats.url, name: "bounded", signal: AbortSignal.timeout(300) }),
      (err: Error) => err.name === "TimeoutError",
    );
  });
});
