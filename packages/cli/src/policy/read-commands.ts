// `sluice policy get | validate | diff | history`: commands that only read.

import { formatPolicyIssue } from "@sluice/runtime";
import { defineSubcommand, indent, print, readPolicyFile, withEtcd } from "./context.js";
import { diffPolicies, renderDiff } from "./diff.js";
import { PolicyCommandError } from "./errors.js";
import { type KeyHistory, readHistory } from "./history.js";
import { diffSchema, getSchema, historySchema, validateSchema } from "./schema.js";
import { checkStored, effectiveOf, readStored, type StoredPolicy, storedJson } from "./stored-policy.js";

const DEFAULT = "_default";

function describeStored(label: string, s: StoredPolicy | undefined): string[] {
  if (s === undefined) return [`${label}: none`];
  const head = `${label}: ${s.key} at revision ${s.revision} (version ${s.version}, created at revision ${s.createRevision})`;
  if (s.error !== undefined) {
    return [
      head,
      "  INVALID: processes ignore it and keep their last good revision:",
      ...s.error.issues.map((i) => `    ${formatPolicyIssue(i)}`),
      ...indent(s.value.trimEnd(), "  | "),
    ];
  }
  return [head, ...indent(JSON.stringify(s.parsed?.json, null, 2))];
}

export const getCommand = defineSubcommand({
  name: "get",
  summary: "Show a model's stored policy (with revision), its shadow policy and the effective policy",
  description:
    "Shows the stored policy document of --model with its etcd revision, the stored shadow candidate, and the effective policy " +
    "(every default applied) that a process starting now would enforce: the model's own, else _default, else the built-in defaults.",
  schema: getSchema,
  run: async (v) =>
    withEtcd(v, async (etcd, keys) => {
      const own = await readStored(etcd, keys.enforcing(v.model), v.model);
      const fallback =
        v.model === DEFAULT ? undefined : await readStored(etcd, keys.enforcing(DEFAULT), DEFAULT);
      const shadow = await readStored(etcd, keys.shadow(v.model), v.model);
      const effective = effectiveOf(own, fallback);
      print(v, { model: v.model, stored: storedJson(own), shadow: storedJson(shadow), effective }, () => [
        `policy of ${v.model}`,
        ...describeStored("stored", own),
        ...describeStored("shadow", shadow),
        `effective: ${
          effective.source === "built-in"
            ? "built-in defaults (nothing valid stored)"
            : `${effective.key} at revision ${effective.revision}`
        }`,
        ...indent(JSON.stringify(effective.policy, null, 2)),
      ]);
      return 0;
    }),
});

export const validateCommand = defineSubcommand({
  name: "validate",
  summary: "Check a policy file without touching etcd",
  description:
    "Validates a policy file (YAML or JSON) exactly as `sluice policy set` and every process would: field names, types, enum names, ranges and class references. Prints the effective policy.",
  schema: validateSchema,
  run: async (v) => {
    const parsed = readPolicyFile(v.file, v.model);
    print(v, { valid: true, model: v.model, document: parsed.json, effective: parsed.resolved }, () => [
      `${v.file}: valid policy for ${v.model}`,
      "effective:",
      ...indent(JSON.stringify(parsed.resolved, null, 2)),
    ]);
    return 0;
  },
});

export const diffCommand = defineSubcommand({
  name: "diff",
  summary: "Field-level diff between the stored policy and a file",
  description:
    "Compares the stored policy of --model with a policy file, one line per field: `+` only in the file, `-` only stored, `~` changed (stored -> file). " +
    "With --effective, compares the policies with every default applied, so a field written out at its default value is no change.",
  schema: diffSchema,
  run: async (v) => {
    const file = readPolicyFile(v.file, v.model);
    return withEtcd(v, async (etcd, keys) => {
      const stored = await readStored(etcd, keys.enforcing(v.model), v.model);
      let before: unknown = {};
      if (stored?.parsed !== undefined) before = v.effective ? stored.parsed.resolved : stored.parsed.json;
      else if (stored !== undefined) {
        if (v.effective) {
          throw new PolicyCommandError(
            `the stored policy ${stored.key} (revision ${stored.revision}) is invalid, so it has no effective form: ${stored.error?.message}`,
          );
        }
        before = storedJsonValue(stored);
      } else if (v.effective) {
        before = effectiveOf(undefined, undefined).policy;
      }
      const after = v.effective ? file.resolved : file.json;
      const changes = diffPolicies(before, after);
      print(
        v,
        {
          model: v.model,
          key: keys.enforcing(v.model),
          storedRevision: stored?.revision ?? null,
          storedValid: stored === undefined ? null : stored.error === undefined,
          effective: v.effective,
          changes,
        },
        () => [
          `--- stored ${keys.enforcing(v.model)}${stored === undefined ? " (absent)" : ` (revision ${stored.revision}${stored.error === undefined ? "" : ", INVALID"})`}`,
          `+++ file ${v.file}${v.effective ? " (effective policies compared)" : ""}`,
          ...(changes.length === 0 ? ["(no differences)"] : renderDiff(changes)),
        ],
      );
      return 0;
    });
  },
});

function storedJsonValue(s: StoredPolicy): unknown {
  try {
    return JSON.parse(s.value) as unknown;
  } catch {
    throw new PolicyCommandError(
      `the stored policy ${s.key} (revision ${s.revision}) is not JSON; nothing to diff against`,
    );
  }
}

function historyEndText(h: KeyHistory): string {
  switch (h.end) {
    case "created":
      return "(oldest shown: the write that created the key; revisions of an earlier, deleted key are not followed)";
    case "compacted":
      return "(older revisions were removed by etcd compaction; history cannot go further back)";
    case "limit":
      return "(more revisions exist; raise --limit to see them)";
    case "absent":
      return "(the key does not exist now: it was never written or was deleted)";
  }
}

export const historyCommand = defineSubcommand({
  name: "history",
  summary: "List the etcd revisions of a model's policy, newest first",
  description:
    "Lists earlier values of the policy key by walking etcd's history (get at mod_revision - 1, …) back to the key's creation. " +
    "etcd keeps only history newer than its last compaction, so older revisions may be gone; the output says where it stopped. " +
    "Use a listed revision with `sluice policy rollback --to REV`.",
  schema: historySchema,
  run: async (v) =>
    withEtcd(v, async (etcd, keys) => {
      const key = keys.enforcing(v.model);
      const history = await readHistory(etcd, key, v.limit);
      const checked = history.revisions.map((r) => checkStored(key, v.model, r));
      print(
        v,
        { model: v.model, key, end: history.end, revisions: checked.map((c) => storedJson(c)) },
        () => [
          `history of ${key}`,
          ...checked.map((c) => {
            const what = c.error === undefined ? summary(c) : `INVALID: ${c.error.message}`;
            return `revision ${String(c.revision).padStart(8)}  version ${String(c.version).padStart(4)}  ${what}`;
          }),
          historyEndText(history),
        ],
      );
      return 0;
    }),
});

function summary(s: StoredPolicy): string {
  const json = s.parsed?.json ?? {};
  const text = JSON.stringify(json);
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}
