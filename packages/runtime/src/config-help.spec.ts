import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { commonSchema } from "./config-common.js";
import { renderHelp, renderMarkdown } from "./config-help.js";
import { defineSchema, envVarName } from "./config-schema.js";

describe("renderHelp", () => {
  it("lists usage and every setting with flag, env var, type, default and description", () => {
    const text = renderHelp(commonSchema, { command: "sluice router", summary: "Routes requests." });
    assert.match(text, /^Usage: sluice router \[options\]\n/);
    assert.ok(text.includes("Routes requests."));
    assert.ok(text.includes("--config <file>"));
    for (const [name, setting] of Object.entries(commonSchema)) {
      assert.ok(text.includes(`--${name}`), name);
      assert.ok(text.includes(`env ${envVarName(name)} · ${setting.type} · default `), name);
      assert.ok(text.includes(setting.description), name);
    }
    assert.ok(text.includes("default 5s"), "durations are shown with their unit");
    assert.ok(text.includes("default <hostname>-<pid>-<random>"), "computed defaults show their defaultText");
  });

  it("shows boolean negation and masks secret defaults", () => {
    const s = defineSchema({
      "shadow-mode": { type: "boolean", default: false, description: "Shadow." },
      "api-token": { type: "string", default: "hunter2", secret: true, description: "Token." },
    });
    const text = renderHelp(s, { command: "x" });
    assert.ok(text.includes("--shadow-mode, --no-shadow-mode"));
    assert.ok(!text.includes("hunter2"));
  });
});

describe("renderMarkdown", () => {
  it("renders one table row per setting and escapes pipes", () => {
    const s = defineSchema({
      mode: { type: "enum", values: ["a", "b"], default: "a", description: "A | B choice." },
      "lease-ttl": { type: "duration", defaultMs: 5000, description: "TTL." },
    });
    const md = renderMarkdown(s, "Settings");
    const lines = md.trim().split("\n");
    assert.equal(lines[0], "## Settings");
    assert.equal(lines.filter((l) => l.startsWith("| `--")).length, 2);
    assert.ok(
      md.includes("| `--mode` | `SLUICE_MODE` | enum | `a` | A \\| B choice. Accepts one of a, b. |"),
    );
    assert.ok(md.includes("`5s`"));
  });
});
