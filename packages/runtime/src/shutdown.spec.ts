import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import type { ShutdownLogger } from "./shutdown.js";
import { createShutdownManager } from "./shutdown.js";

function recordingLogger() {
  const lines: { level: string; msg: string | undefined; obj: object }[] = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, msg, obj });
    };
  const logger: ShutdownLogger = {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    fatal: at("fatal"),
    child: () => logger,
  };
  return { logger, lines };
}

function setup(shutdownTimeoutMs = 2_000) {
  const { logger, lines } = recordingLogger();
  const proc = new EventEmitter();
  const exits: number[] = [];
  let exited: (code: number) => void = () => {};
  const exitedOnce = new Promise<number>((resolve) => {
    exited = resolve;
  });
  const manager = createShutdownManager({
    logger,
    shutdownTimeoutMs,
    phaseTimeoutMs: 1_000,
    processLike: proc,
    exit: (code) => {
      exits.push(code);
      exited(code);
    },
  });
  return { manager, proc, exits, exitedOnce, lines };
}

describe("shutdown manager", () => {
  it("runs the phases in order and exits 0 after a clean drain", async () => {
    const { manager, proc, exitedOnce, lines } = setup();
    const order: string[] = [];
    manager.register("close", "nats", () => {
      order.push("close");
    });
    manager.register("release", "lease", async () => {
      await new Promise((r) => setTimeout(r, 20));
      order.push("release");
    });
    manager.register("drain", "requests", async () => {
      await new Promise((r) => setTimeout(r, 50));
      order.push("drain");
    });
    manager.register("stop-accepting", "http", () => {
      order.push("stop");
    });
    manager.installSignalHandlers();
    proc.emit("SIGTERM", "SIGTERM");
    assert.equal(manager.shuttingDown, true);
    assert.equal(await exitedOnce, 0);
    assert.deepEqual(order, ["stop", "drain", "release", "close"]);
    const steps = lines
      .filter((l) => l.msg === "shutdown step done")
      .map((l) => (l.obj as { hook: string }).hook);
    assert.deepEqual(steps, ["http", "requests", "lease", "nats"]);
  });

  it("abandons draining at the bound, still releases and closes, and exits 1", async () => {
    const { manager, exitedOnce, lines } = setup(150);
    let drainSignal: AbortSignal | undefined;
    let released = false;
    manager.register("drain", "stuck", ({ signal }) => {
      drainSignal = signal;
      return new Promise(() => {});
    });
    manager.register("release", "lease", () => {
      released = true;
    });
    void manager.terminate("test");
    assert.equal(await exitedOnce, 1);
    assert.equal(drainSignal?.aborted, true);
    assert.equal(released, true);
    const outcome = await manager.shutdown("again");
    assert.deepEqual(outcome, {
      exitCode: 1,
      drainTimedOut: true,
      failedHooks: ["drain/stuck"],
      reason: "test",
    });
    assert.ok(lines.some((l) => l.level === "warn" && l.msg?.includes("bound hit")));
  });

  it("a failing hook makes the exit code 1 but does not stop later phases", async () => {
    const { manager } = setup();
    let closed = false;
    manager.register("release", "lease", () => {
      throw new Error("etcd down");
    });
    manager.register("close", "etcd", () => {
      closed = true;
    });
    const outcome = await manager.shutdown("test");
    assert.equal(outcome.exitCode, 1);
    assert.deepEqual(outcome.failedHooks, ["release/lease"]);
    assert.equal(closed, true);
  });

  it("a second signal exits 1 at once", async () => {
    const { manager, proc, exits } = setup();
    manager.register("drain", "slow", () => new Promise((r) => setTimeout(r, 300)));
    manager.installSignalHandlers();
    proc.emit("SIGINT", "SIGINT");
    proc.emit("SIGTERM", "SIGTERM");
    assert.deepEqual(exits, [1]);
    await manager.shutdown("wait for the first");
    assert.deepEqual(exits, [1], "the first shutdown does not exit a second time");
  });

  it("logs uncaught exceptions as fatal and exits 1 after cleanup; unhandled rejections are only logged", async () => {
    const { manager, proc, exitedOnce, lines } = setup();
    let closed = false;
    manager.register("close", "conn", () => {
      closed = true;
    });
    manager.installCrashGuards();
    proc.emit("unhandledRejection", new Error("late"));
    assert.equal(manager.shuttingDown, false);
    assert.ok(lines.some((l) => l.level === "error" && l.msg === "unhandled promise rejection"));
    proc.emit("uncaughtException", new Error("bug"));
    assert.equal(await exitedOnce, 1);
    assert.equal(closed, true);
    assert.ok(lines.some((l) => l.level === "fatal"));
  });

  it("refuses duplicate hooks and can unregister one", async () => {
    const { manager } = setup();
    let ran = false;
    const remove = manager.register("drain", "x", () => {
      ran = true;
    });
    assert.throws(() => manager.register("drain", "x", () => {}), /already registered/);
    remove();
    await manager.shutdown("t");
    assert.equal(ran, false);
  });

  it("an uncaught exception during a signal-initiated shutdown still exits 1", async () => {
    const { manager, proc, exitedOnce } = setup();
    manager.register("drain", "work", () => new Promise((r) => setTimeout(r, 50)));
    manager.installSignalHandlers();
    manager.installCrashGuards();
    proc.emit("SIGTERM", "SIGTERM");
    proc.emit("uncaughtException", new Error("bug while draining"));
    assert.equal(await exitedOnce, 1);
  });
});
