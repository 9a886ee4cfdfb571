import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { LoadedConfig } from "./config.js";
import { loadConfig } from "./config.js";
import { commonSchema } from "./config-common.js";
import type { ConfigSchema } from "./config-schema.js";
import { defineSchema, mergeSchemas } from "./config-schema.js";
import { ConfigError, ConfigSchemaError } from "./errors.js";

const schema = defineSchema({
  "nats-url": { type: "string", default: "nats://default:4222", description: "NATS URL." },
  "max-inflight": { type: "int", default: 10, min: 1, max: 1000, unit: "requests", description: "Limit." },
  "kv-overcommit": { type: "number", default: 1.25, min: 0, description: "Overcommit factor." },
  "shadow-mode": { type: "boolean", default: false, description: "Shadow." },
  "hold-timeout": { type: "duration", defaultMs: 250, minMs: 1, maxMs: 60_000, description: "Hold." },
  "reject-status": { type: "enum", values: ["429", "503", "529"], default: "429", description: "Status." },
  peers: { type: "list", default: ["a"], description: "Peers." },
});

function tmpFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "sluice-config-"));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function load<S extends ConfigSchema>(s: S, argv: string[], env: Record<string, string> = {}) {
  const r: LoadedConfig<S> = loadConfig(s, { argv, env, cwd: "/" });
  assert.equal(r.kind, "config");
  if (r.kind !== "config") throw new Error("unreachable");
  return r;
}

function expectConfigError(fn: () => unknown, ...fragments: string[]): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected ConfigError, got ${String(caught)}`);
  for (const f of fragments)
    assert.ok(caught.message.includes(f), `"${caught.message}" should mention "${f}"`);
  return caught;
}

// One row per type: default, file value, env value, flag value (all different).
const precedenceCases = [
  { name: "nats-url", key: "natsUrl", file: "nats://file:1", env: "nats://env:2", flag: "nats://flag:3" },
  { name: "max-inflight", key: "maxInflight", file: 20, env: "30", flag: "40", expect: [10, 20, 30, 40] },
  {
    name: "kv-overcommit",
    key: "kvOvercommit",
    file: 1.5,
    env: "2.5",
    flag: "3.5",
    expect: [1.25, 1.5, 2.5, 3.5],
  },
  {
    name: "shadow-mode",
    key: "shadowMode",
    file: true,
    env: "false",
    flag: "true",
    expect: [false, true, false, true],
  },
  {
    name: "hold-timeout",
    key: "holdTimeoutMs",
    file: "1s",
    env: "2s",
    flag: "0.75m",
    expect: [250, 1000, 2000, 45_000],
  },
  {
    name: "reject-status",
    key: "rejectStatus",
    file: "503",
    env: "529",
    flag: "503",
    expect: ["429", "503", "529", "503"],
  },
  {
    name: "peers",
    key: "peers",
    file: ["f1", "f2"],
    env: "e1,e2",
    flag: "x,y",
    expect: [["a"], ["f1", "f2"], ["e1", "e2"], ["x", "y"]],
  },
] as const;

describe("loadConfig precedence: flag > env > file > default", () => {
  for (const c of precedenceCases) {
    it(`${c.name}`, () => {
      const expected = "expect" in c ? c.expect : ["nats://default:4222", c.file, c.env, c.flag];
      const envVar = `SLUICE_${c.name.toUpperCase().replace(/-/g, "_")}`;
      const file = tmpFile("c.json", JSON.stringify({ [c.name]: c.file }));
      const values = (argv: string[], env: Record<string, string>) =>
        (load(schema, argv, env).values as Record<string, unknown>)[c.key];
      assert.deepEqual(values([], {}), expected[0]);
      assert.deepEqual(values(["--config", file], {}), expected[1]);
      assert.deepEqual(values(["--config", file], { [envVar]: c.env }), expected[2]);
      assert.deepEqual(values(["--config", file, `--${c.name}=${c.flag}`], { [envVar]: c.env }), expected[3]);
      const sources = load(schema, ["--config", file, `--${c.name}=${c.flag}`], { [envVar]: c.env }).sources;
      assert.deepEqual(sources[c.name], { kind: "flag", flag: `--${c.name}` });
    });
  }

  it("accepts camelCase and kebab-case keys in YAML files and SLUICE_CONFIG", () => {
    const file = tmpFile("c.yaml", "maxInflight: 7\nhold-timeout: 2s\npeers: [p, q]\n");
    const r = load(schema, [], { SLUICE_CONFIG: file });
    assert.equal(r.values.maxInflight, 7);
    assert.equal(r.values.holdTimeoutMs, 2000);
    assert.deepEqual(r.values.peers, ["p", "q"]);
    assert.equal(r.configFile, file);
  });

  it("parses flag forms: separate value, boolean negation, repeated list flags", () => {
    const r = load(schema, ["--max-inflight", "5", "--no-shadow-mode", "--peers", "a,b", "--peers=c"], {
      SLUICE_SHADOW_MODE: "true",
    });
    assert.equal(r.values.maxInflight, 5);
    assert.equal(r.values.shadowMode, false);
    assert.deepEqual(r.values.peers, ["a", "b", "c"]);
  });

  it("treats an empty env var as unset and warns about unknown SLUICE_* vars", () => {
    const r = load(schema, [], { SLUICE_MAX_INFLIGHT: "", SLUICE_SOMETHING_ELSE: "1", OTHER: "x" });
    assert.equal(r.values.maxInflight, 10);
    assert.deepEqual(r.warnings, ["ignoring unknown environment variable SLUICE_SOMETHING_ELSE"]);
  });

  it("returns help when --help or -h appears, even next to bad flags", () => {
    assert.equal(loadConfig(schema, { argv: ["--bogus", "--help"], env: {} }).kind, "help");
    assert.equal(loadConfig(schema, { argv: ["-h"], env: {} }).kind, "help");
  });
});

describe("loadConfig errors", () => {
  it("rejects an unknown flag and suggests the near name", () => {
    const err = expectConfigError(
      () => load(schema, ["--max-inflite", "3"]),
      "unknown flag --max-inflite",
      "--max-inflight",
    );
    assert.equal(err.value, "--max-inflite");
  });

  it("rejects positional arguments unless allowed", () => {
    expectConfigError(() => load(schema, ["stray"]), "unexpected argument", "stray");
    const r = loadConfig(schema, { argv: ["a", "--", "--b"], env: {}, allowPositionals: true });
    assert.ok(r.kind === "config");
    assert.deepEqual(r.positionals, ["a", "--b"]);
  });

  it("rejects a flag missing its value", () => {
    expectConfigError(() => load(schema, ["--max-inflight"]), "--max-inflight needs a value");
    expectConfigError(() => load(schema, ["--nats-url", "--max-inflight", "3"]), "--nats-url needs a value");
    assert.equal(load(schema, ["--kv-overcommit", "-0"]).values.kvOvercommit, -0);
  });

  const invalid: [string, string, string][] = [
    ["max-inflight", "2.5", "an integer between 1 and 1000"],
    ["max-inflight", "0", "between 1 and 1000"],
    ["kv-overcommit", "lots", "a number ≥ 0"],
    ["shadow-mode", "maybe", "true or false"],
    ["hold-timeout", "5", "a duration with a unit"],
    ["hold-timeout", "2m", "between 1ms and 1m"],
    ["reject-status", "500", "one of 429, 503, 529"],
  ];
  for (const [name, value, allowed] of invalid) {
    it(`names setting, value and what is allowed: --${name}=${value}`, () => {
      const err = expectConfigError(
        () => load(schema, [`--${name}=${value}`]),
        `"${name}"`,
        JSON.stringify(value),
        allowed,
      );
      assert.equal(err.setting, name);
      assert.equal(err.value, value);
      assert.deepEqual(err.source, { kind: "flag", flag: `--${name}` });
    });
  }

  it("names the env var of an invalid env value", () => {
    expectConfigError(
      () => load(schema, [], { SLUICE_HOLD_TIMEOUT: "soon" }),
      "env SLUICE_HOLD_TIMEOUT",
      '"soon"',
    );
  });

  it("validates an overridden file value too", () => {
    const file = tmpFile("c.yaml", "max-inflight: many\n");
    expectConfigError(
      () => load(schema, ["--config", file, "--max-inflight", "3"]),
      file,
      "max-inflight",
      '"many"',
    );
  });

  it("names file and field of a malformed value, YAML and JSON", () => {
    const yamlFile = tmpFile("bad.yaml", "natsUrl: nats://x:1\nholdTimeout: banana\n");
    const e1 = expectConfigError(
      () => load(schema, ["--config", yamlFile]),
      yamlFile,
      '"holdTimeout"',
      "banana",
    );
    assert.equal(e1.setting, "hold-timeout");
    const jsonFile = tmpFile("bad.json", JSON.stringify({ "shadow-mode": "perhaps" }));
    expectConfigError(() => load(schema, ["--config", jsonFile]), jsonFile, "shadow-mode", "true or false");
    const typeMismatch = tmpFile("bad2.json", JSON.stringify({ peers: [1, 2] }));
    expectConfigError(() => load(schema, ["--config", typeMismatch]), typeMismatch, "peers", "list");
  });

  it("names the file of a syntax error, an unknown key, a non-mapping and a missing file", () => {
    const syntax = tmpFile("syntax.yaml", "natsUrl: [unclosed\n");
    expectConfigError(() => load(schema, ["--config", syntax]), syntax, "not valid YAML");
    const json = tmpFile("syntax.json", "{ nope }");
    expectConfigError(() => load(schema, ["--config", json]), json, "not valid JSON");
    const unknown = tmpFile("unknown.yaml", "maxInflite: 3\n");
    expectConfigError(
      () => load(schema, ["--config", unknown]),
      unknown,
      'unknown setting "maxInflite"',
      "max-inflight",
    );
    const list = tmpFile("list.yaml", "- a\n- b\n");
    expectConfigError(() => load(schema, ["--config", list]), list, "mapping");
    expectConfigError(
      () => load(schema, ["--config", "/nonexistent/sluice.yaml"]),
      "/nonexistent/sluice.yaml",
      "ENOENT",
    );
    const twice = tmpFile("twice.yaml", "maxInflight: 3\nmax-inflight: 4\n");
    expectConfigError(() => load(schema, ["--config", twice]), "given twice");
  });

  it("resolves a relative --config against cwd", () => {
    const file = tmpFile("rel.yaml", "maxInflight: 9\n");
    const r = loadConfig(schema, { argv: ["--config", "rel.yaml"], env: {}, cwd: join(file, "..") });
    assert.ok(r.kind === "config");
    assert.equal(r.values.maxInflight, 9);
  });

  it("treats an empty config file as no settings", () => {
    const file = tmpFile("empty.yaml", "");
    assert.equal(load(schema, ["--config", file]).values.maxInflight, 10);
  });
});

describe("schema checks", () => {
  it("rejects bad names, defaults outside bounds and duplicate settings", () => {
    assert.throws(
      () => defineSchema({ natsUrl: { type: "string", default: "", description: "x" } }),
      ConfigSchemaError,
    );
    assert.throws(
      () => defineSchema({ help: { type: "boolean", default: false, description: "x" } }),
      ConfigSchemaError,
    );
    assert.throws(
      () => defineSchema({ n: { type: "int", default: 0, min: 1, description: "x" } }),
      /default 0 < min 1/,
    );
    assert.throws(
      () => defineSchema({ e: { type: "enum", values: ["a"], default: "b" as "a", description: "x" } }),
      ConfigSchemaError,
    );
    assert.throws(
      () => mergeSchemas(commonSchema, { id: { type: "string", default: "", description: "x" } }),
      /twice/,
    );
  });
});

describe("commonSchema", () => {
  it("has the documented defaults", () => {
    const v = load(commonSchema, []).values;
    assert.match(v.id, /^[A-Za-z0-9_-]+-\d+-[0-9a-f]{6}$/);
    assert.equal(v.namespace, "default");
    assert.equal(v.natsUrl, "nats://127.0.0.1:4222");
    assert.deepEqual(v.etcdEndpoints, ["http://127.0.0.1:2379"]);
    assert.equal(v.etcdPrefix, "/sluice/v1");
    assert.equal(v.leaseTtlMs, 5000);
    assert.equal(v.adminHost, "127.0.0.1");
    assert.equal(v.adminPort, 0);
    assert.equal(v.logLevel, "info");
    assert.equal(v.shutdownTimeoutMs, 10_000);
  });

  it("reads SLUICE_LOG_LEVEL and refuses a namespace that breaks NATS subjects", () => {
    assert.equal(load(commonSchema, [], { SLUICE_LOG_LEVEL: "debug" }).values.logLevel, "debug");
    expectConfigError(() => load(commonSchema, ["--namespace", "a.b"]), "namespace", "NATS subject token");
    expectConfigError(() => load(commonSchema, ["--log-level", "loud"]), "one of fatal, error");
  });
});
