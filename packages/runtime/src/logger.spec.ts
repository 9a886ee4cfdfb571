import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import type { Logger } from "./logger.js";
import { createLogger, noopLogger } from "./logger.js";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line));
      cb();
    },
  });
  return { lines, destination };
}

describe("createLogger", () => {
  it("writes JSON with role, id and a textual level, and honours the level", () => {
    const { lines, destination } = capture();
    const log = createLogger({ role: "router", id: "r1", level: "info", destination });
    log.debug({ n: 1 }, "hidden");
    log.info({ n: 2 }, "shown");
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.role, "router");
    assert.equal(lines[0]?.id, "r1");
    assert.equal(lines[0]?.level, "info");
    assert.equal(lines[0]?.msg, "shown");
    assert.equal(lines[0]?.n, 2);
  });

  it("redacts secrets at the top level, one level down and in headers", () => {
    const { lines, destination } = capture();
    const log = createLogger({ role: "ingress", id: "i1", level: "info", destination });
    log.info(
      {
        password: "p1",
        token: "t1",
        req: { headers: { authorization: "Bearer abc", cookie: "c=1", "x-api-key": "k" } },
        nats: { password: "p2", user: "u" },
        headers: { authorization: "Basic x" },
      },
      "secrets",
    );
    const text = JSON.stringify(lines[0]);
    for (const secret of ["p1", "t1", "Bearer abc", "c=1", '"k"', "p2", "Basic x"]) {
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    }
    assert.ok(text.includes('"user":"u"'));
  });

  it("is usable through the small Logger interface, children included", () => {
    const { lines, destination } = capture();
    const log: Logger = createLogger({ role: "x", id: "y", level: "debug", destination });
    log.child({ component: "etcd" }).warn({ attempt: 2 }, "retrying");
    assert.equal(lines[0]?.component, "etcd");
    assert.equal(lines[0]?.level, "warn");
    noopLogger.child({}).error({}, "dropped");
  });
});
