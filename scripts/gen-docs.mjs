#!/usr/bin/env node
// Generates docs/configuration.md, the policy configuration reference, from the comments of
// `sluice.v1.Policy` and the messages it reaches, so the reference cannot drift from the
// wire type. Also enforces the comment convention of proto/sluice/v1: every field states its
// unit in a `Unit:` line, and every policy field its default in a `Default:` line.
//
// Usage: node scripts/gen-docs.mjs [--out <file>]   (default docs/configuration.md)
// Offline: reads the descriptors (with source info) from the local `buf build`.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createFileRegistry, fromBinary, ScalarType } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const PACKAGE = "sluice.v1";
const ROOT_MESSAGE = `${PACKAGE}.Policy`;

function fail(message) {
  process.stderr.write(`gen-docs: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  let out = join(root, "docs", "configuration.md");
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out" && argv[i + 1]) out = resolve(argv[++i]);
    else fail(`unknown argument ${argv[i]} (usage: gen-docs.mjs [--out <file>])`);
  }
  return { out };
}

function buildImage() {
  const buf = join(root, "node_modules", ".bin", "buf");
  const r = spawnSync(buf, ["build", "-o", "-#format=binpb"], { cwd: root, maxBuffer: 64 << 20 });
  if (r.error) fail(`cannot run ${buf} (${r.error.message}); run npm ci first`);
  if (r.status !== 0) fail(`buf build failed:\n${r.stderr.toString()}`);
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, new Uint8Array(r.stdout)));
}

// --- source comments ------------------------------------------------------------------------
// SourceCodeInfo paths: FileDescriptorProto.message_type = 4, .enum_type = 5;
// DescriptorProto.field = 2, .nested_type = 3, .enum_type = 4; EnumDescriptorProto.value = 2.
function messagePath(msg) {
  if (msg.parent) return [...messagePath(msg.parent), 3, msg.parent.proto.nestedType.indexOf(msg.proto)];
  return [4, msg.file.proto.messageType.indexOf(msg.proto)];
}
function enumPath(en) {
  if (en.parent) return [...messagePath(en.parent), 4, en.parent.proto.enumType.indexOf(en.proto)];
  return [5, en.file.proto.enumType.indexOf(en.proto)];
}
function pathOf(desc) {
  switch (desc.kind) {
    case "message":
      return messagePath(desc);
    case "enum":
      return enumPath(desc);
    case "field":
      return [...messagePath(desc.parent), 2, desc.parent.proto.field.indexOf(desc.proto)];
    case "enum_value":
      return [...enumPath(desc.parent), 2, desc.parent.proto.value.indexOf(desc.proto)];
    default:
      throw new Error(`no source path for ${desc.kind}`);
  }
}
function fileOf(desc) {
  return desc.kind === "field" || desc.kind === "enum_value" ? fileOf(desc.parent) : desc.file;
}
function commentOf(desc) {
  const path = pathOf(desc);
  const loc = fileOf(desc).proto.sourceCodeInfo?.location.find(
    (l) => l.path.length === path.length && l.path.every((p, i) => p === path[i]),
  );
  return (loc?.leadingComments ?? "")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
}

/** Splits a field comment into description, `Unit:` and `Default:` (both may share a line). */
function parseFieldComment(field) {
  const lines = commentOf(field);
  const description = [];
  let unit;
  let def;
  for (const line of lines) {
    const m = /^Unit:\s*(.*?)\.?(?:\s+Default:\s*(.*?)\.?)?$/.exec(line);
    if (m) {
      unit = m[1];
      if (m[2] !== undefined) def = m[2];
    } else description.push(line);
  }
  return { description: description.join(" "), unit, default: def };
}

// --- types ----------------------------------------------------------------------------------
const scalarNames = Object.fromEntries(
  Object.entries(ScalarType)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => [v, k.toLowerCase()]),
);
function elementType(field, kind) {
  if (kind === "scalar") return scalarNames[field.scalar];
  if (kind === "enum") return `[${field.enum.name}](#${field.enum.name.toLowerCase()})`;
  return `[${field.message.name}](#${field.message.name.toLowerCase()})`;
}
function typeOf(field) {
  switch (field.fieldKind) {
    case "list":
      return `list of ${elementType(field, field.listKind)}`;
    case "map":
      return `map&lt;${scalarNames[field.mapKey]}, ${elementType(field, field.mapKind)}&gt;`;
    default: {
      const t = elementType(field, field.fieldKind);
      return field.proto.proto3Optional ? `${t} (optional)` : t;
    }
  }
}
function fieldPath(prefix, field) {
  const base = prefix ? `${prefix}.${field.jsonName}` : field.jsonName;
  if (field.fieldKind === "list") return `${base}[]`;
  if (field.fieldKind === "map") return `${base}.<${field.mapKey === ScalarType.STRING ? "class" : "key"}>`;
  return base;
}
const cell = (text) => String(text).replaceAll("|", "\\|").replaceAll("\n", " ");

// --- checks ---------------------------------------------------------------------------------
function checkConvention(registry, policyMessages) {
  const problems = [];
  for (const file of registry.files) {
    if (file.proto.package !== PACKAGE) continue;
    const visit = (msg) => {
      for (const field of msg.fields) {
        const c = parseFieldComment(field);
        const where = `${file.name}.proto: ${msg.typeName}.${field.name}`;
        if (!c.description) problems.push(`${where} has no description`);
        if (!c.unit) problems.push(`${where} has no "Unit:" line`);
        if (policyMessages.has(msg) && field.fieldKind !== "message" && c.default === undefined)
          problems.push(`${where} is a policy field without a "Default:"`);
      }
      msg.nestedMessages.forEach(visit);
    };
    file.messages.forEach(visit);
  }
  if (problems.length > 0) fail(`proto comment convention violated:\n  ${problems.join("\n  ")}`);
}

// --- rendering ------------------------------------------------------------------------------
function collectPolicyMessages(root) {
  const seen = new Set();
  const enums = new Set();
  const visit = (msg) => {
    if (seen.has(msg)) return;
    seen.add(msg);
    for (const f of msg.fields) {
      if (f.message) visit(f.message);
      if (f.enum) enums.add(f.enum);
    }
  };
  visit(root);
  return { messages: seen, enums };
}

function renderTable(msg, prefix, lines) {
  lines.push("| field | type | default | unit | description |", "|---|---|---|---|---|");
  for (const field of msg.fields) {
    const c = parseFieldComment(field);
    const def =
      field.fieldKind === "message"
        ? `see [${field.message.name}](#${field.message.name.toLowerCase()})`
        : c.default;
    lines.push(
      `| \`${fieldPath(prefix, field)}\` | ${typeOf(field)} | ${cell(def ?? "")} | ${cell(c.unit ?? "")} | ${cell(c.description)} |`,
    );
  }
  lines.push("");
}

function render(registry) {
  const policy = registry.getMessage(ROOT_MESSAGE);
  if (!policy) fail(`${ROOT_MESSAGE} not found in proto/`);
  const { messages, enums } = collectPolicyMessages(policy);
  checkConvention(registry, messages);

  const lines = [
    "<!-- Code generated by scripts/gen-docs.mjs from proto/sluice/v1/*.proto. DO NOT EDIT. -->",
    "<!-- Regenerate with `npm run gen`; `npm run gen:check` fails when this file is stale. -->",
    "",
    "# Policy configuration reference",
    "",
    `A policy is a \`${ROOT_MESSAGE}\` message stored as proto3 JSON in etcd under`,
    "`/sluice/v1/policies/{model}` (or `_default`). JSON field names are lowerCamelCase as listed",
    "below (the proto snake_case names are accepted too); enums are written by value name;",
    "64-bit integers are strings. Unknown fields and unknown enum names make a policy invalid.",
    "",
    "An unset field takes the listed default. For plain numbers, 0 means unset; fields marked",
    "*(optional)* and map entries distinguish an explicit 0 from unset.",
    "",
  ];
  const ordered = [policy, ...[...messages].filter((m) => m !== policy)];
  // Sections are reached from Policy by the path of the field that first leads to them.
  const prefixes = new Map([[policy, ""]]);
  for (const msg of ordered) {
    for (const f of msg.fields) {
      if (f.message && !prefixes.has(f.message)) prefixes.set(f.message, fieldPath(prefixes.get(msg), f));
    }
  }
  for (const msg of ordered) {
    const prefix = prefixes.get(msg);
    lines.push(`## ${msg.name}`, "");
    const about = commentOf(msg).join(" ");
    if (about) lines.push(about, "");
    if (prefix) lines.push(`Reached at \`${prefix}\`.`, "");
    renderTable(msg, prefix, lines);
  }
  for (const en of enums) {
    lines.push(`## ${en.name}`, "");
    const about = commentOf(en).join(" ");
    if (about) lines.push(about, "");
    lines.push("| value | description |", "|---|---|");
    for (const v of en.values) lines.push(`| \`${v.name}\` | ${cell(commentOf(v).join(" "))} |`);
    lines.push("");
  }
  return `${lines.join("\n").trimEnd()}\n`;
}

const { out } = parseArgs(process.argv.slice(2));
const markdown = render(buildImage());
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, markdown);
