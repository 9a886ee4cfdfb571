// Keeps DEFAULT_POLICY and the `Default:` lines of proto/sluice/v1/policy.proto (from which
// docs/configuration.md is generated) from drifting apart: every documented default is parsed and
// compared with the code, and every field on either side must exist on the other.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { DEFAULT_POLICY } from "./defaults.js";
import { withPolicyDefaults } from "./with-defaults.js";

interface ProtoField {
  message: string;
  field: string; // lowerCamelCase, as in proto3 JSON
  defaultText: string;
}

const PROTO = new URL("../../../../proto/sluice/v1/policy.proto", import.meta.url);

/** Fields that exist only in the TS policy, with why. */
const TS_ONLY = new Set([
  "ingress.predictedTtftCheck", // simulator switch; not on the wire yet
]);

function camel(snake: string): string {
  return snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function parseProto(text: string): ProtoField[] {
  const out: ProtoField[] = [];
  let message: string | undefined;
  let defaultText: string | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const open = /^message (\w+) \{$/.exec(line);
    if (open) {
      message = open[1];
      defaultText = undefined;
      continue;
    }
    if (line === "}") {
      message = undefined;
      continue;
    }
    const def = /^\/\/.*\bDefault: (.*?)\.?$/.exec(line);
    if (def) {
      defaultText = def[1];
      continue;
    }
    const field = /^(?:repeated |optional )?(?:map<[^>]+>|[\w.]+) (\w+) = \d+;$/.exec(line);
    if (field && message !== undefined) {
      assert.ok(defaultText !== undefined, `${message}.${field[1]} has no Default: line`);
      out.push({ message, field: camel(field[1]!), defaultText });
      defaultText = undefined;
    }
  }
  return out;
}

const SECTIONS: Record<string, string | undefined> = {
  Policy: "",
  IngressPolicy: "ingress",
  RouterPolicy: "router",
  EnginePolicy: "engine",
  RejectionPolicy: "rejection",
};

const ENUMS: Record<string, unknown> = {
  FAIL_MODE_STATIC: "static",
  HTTP_REJECT_STATUS_TOO_MANY_REQUESTS: 429,
};

/** Parses "critical 1000, standard 2000, sheddable 10000" into a record. */
function perClass(text: string): Record<string, number> | undefined {
  const m = text.match(/^(?:[a-z]+ [\d.]+(?:, |$))+$/);
  if (!m) return undefined;
  return Object.fromEntries(
    text.split(", ").map((part) => {
      const [name, value] = part.split(" ");
      return [name!, Number(value)];
    }),
  );
}

/** The value a documented default text stands for; undefined for "required" / "see the section". */
function expected(text: string): { value: unknown } | undefined {
  if (text === "required" || text.startsWith("see ")) return undefined;
  if (text.startsWith("none")) return { value: "none" };
  const quoted = /^"(.*)"$/.exec(text);
  if (quoted) return { value: quoted[1] };
  if (/^-?\d+(\.\d+)?$/.test(text)) return { value: Number(text) };
  if (text === "true" || text === "false") return { value: text === "true" };
  const enumName = /^([A-Z_]+)(?: \(\d+\))?$/.exec(text);
  if (enumName) {
    assert.ok(enumName[1]! in ENUMS, `unmapped enum default ${text}`);
    return { value: ENUMS[enumName[1]!] };
  }
  const classes = perClass(text);
  if (classes) return { value: classes };
  return { value: text };
}

function isEmpty(v: unknown): boolean {
  return Array.isArray(v)
    ? v.length === 0
    : typeof v === "object" && v !== null && Object.keys(v).length === 0;
}

describe("DEFAULT_POLICY vs policy.proto", () => {
  const fields = parseProto(readFileSync(PROTO, "utf8"));

  it("parses every documented field", () => {
    assert.ok(fields.length >= 30, `only ${fields.length} fields parsed`);
  });

  it("matches every Default: line", () => {
    const root = DEFAULT_POLICY as unknown as Record<string, Record<string, unknown>>;
    const tenant = withPolicyDefaults({ tenants: [{ tenant: "t" }] }).tenants[0] as unknown as Record<
      string,
      unknown
    >;
    for (const f of fields) {
      const where = `${f.message}.${f.field} (Default: ${f.defaultText})`;
      const want = expected(f.defaultText);
      if (f.message === "ClassPolicy") {
        const cls = DEFAULT_POLICY.classes as unknown as Record<string, unknown>[];
        assert.ok(f.field in cls[0]!, `${where}: no such ClassObjectives field`);
        if (want === undefined) continue;
        const got = Object.fromEntries(cls.map((c) => [c.name, c[f.field]]));
        assert.deepEqual(got, want.value, where);
        continue;
      }
      if (f.message === "TenantPolicy") {
        assert.ok(f.field in tenant, `${where}: no such TenantMapping field`);
        if (want === undefined) continue;
        if (f.defaultText === "the policy's default_class") {
          assert.equal(tenant[f.field], DEFAULT_POLICY.defaultClass, where);
        } else if (want.value === "none") {
          assert.ok(isEmpty(tenant[f.field]), where);
        } else {
          assert.deepEqual(tenant[f.field], want.value, where);
        }
        continue;
      }
      const section = SECTIONS[f.message];
      assert.ok(section !== undefined, `${where}: message not mapped to a ResolvedPolicy section`);
      const holder = section === "" ? root : root[section]!;
      assert.ok(
        f.field in holder,
        `${where}: no such field in ResolvedPolicy${section ? `.${section}` : ""}`,
      );
      if (want === undefined) continue;
      const got = holder[f.field];
      if (f.field === "classes") {
        assert.deepEqual(
          DEFAULT_POLICY.classes.map((c) => c.name),
          f.defaultText.split(", "),
          where,
        );
      } else if (want.value === "none") {
        assert.ok(isEmpty(got), `${where}: got ${JSON.stringify(got)}`);
      } else {
        assert.deepEqual(got, want.value, where);
      }
    }
  });

  it("has no field the proto does not document (except the listed TS-only ones)", () => {
    const documented = new Set(
      fields.map((f) => {
        const section = SECTIONS[f.message];
        if (f.message === "ClassPolicy") return `classes[].${f.field}`;
        if (f.message === "TenantPolicy") return `tenants[].${f.field}`;
        return section ? `${section}.${f.field}` : f.field;
      }),
    );
    const ours: string[] = [];
    for (const [key, value] of Object.entries(DEFAULT_POLICY)) {
      if (key === "classes")
        for (const k of Object.keys(DEFAULT_POLICY.classes[0]!)) ours.push(`classes[].${k}`);
      if (key !== "classes" && key !== "tenants" && typeof value === "object" && !Array.isArray(value)) {
        for (const k of Object.keys(value as object)) ours.push(`${key}.${k}`);
      } else {
        ours.push(key);
      }
    }
    const tenant = withPolicyDefaults({ tenants: [{ tenant: "t" }] }).tenants[0]!;
    for (const k of Object.keys(tenant)) ours.push(`tenants[].${k}`);
    const undocumented = ours.filter((k) => !documented.has(k) && !TS_ONLY.has(k));
    assert.deepEqual(undocumented, []);
  });
});
