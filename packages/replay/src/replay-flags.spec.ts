import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ReplayUsageError } from "./errors.js";
import { parseReplayFlags } from "./replay-flags.js";

describe("parseReplayFlags", () => {
  it("reads every flag, with sim's duration syntax and a target list", () => {
    const f = parseReplayFlags([
      "--trace=t.jsonl",
      "--target=http://a:1,http://b:2/v1/completions",
      "--rate-scale=2",
      "--duration=10m",
      "--speedup=5",
      "--concurrency-limit=100",
      "--seed=3",
      "--json",
    ]);
    assert.equal(f.tracePath, "t.jsonl");
    assert.deepEqual(
      f.targets.map((t) => t.href),
      ["http://a:1/", "http://b:2/v1/completions"],
    );
    assert.equal(f.rateScale, 2);
    assert.equal(f.durationMs, 600_000);
    assert.equal(f.speedupFactor, 5);
    assert.equal(f.concurrencyLimit, 100);
    assert.equal(f.seed, 3);
    assert.equal(f.json, true);
  });

  it("rejects bad values naming the flag", () => {
    const bad: [string[], RegExp][] = [
      [["--trace=t", "--target=ftp://x"], /http/],
      [["--trace=t", "--target=not a url"], /not a URL/],
      [["--trace=t", "--target=http://x", "--concurrency-limit=1.5"], /--concurrency-limit/],
      [["--trace=t", "--target=http://x", "--duration=soon"], /--duration/],
      [["--trace=t", "--target=http://x", "--nope"], /Unknown option/],
      [["--target=http://x"], /--trace FILE is required/],
    ];
    for (const [argv, message] of bad) {
      assert.throws(
        () => parseReplayFlags(argv),
        (e: unknown) => e instanceof ReplayUsageError && message.test(e.message),
      );
    }
  });
});
