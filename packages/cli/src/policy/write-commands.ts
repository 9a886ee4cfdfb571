// `sluice policy set | rollback | shadow`: commands that write. Nothing is written unless it passes
// the same validation every process applies, so a refused document never reaches etcd this way.

import { formatPolicyIssue, type ParsedPolicy, serializePolicy } from "@sluice/runtime";
import { defineSubcommand, print, readPolicyFile, withEtcd } from "./context.js";
import { PolicyCommandError, PolicyUsageError } from "./errors.js";
import type { EtcdAccess } from "./etcd-access.js";
import { readAt } from "./history.js";
import { rollbackSchema, setSchema, shadowSchema } from "./schema.js";
import { checkStored, storedJson } from "./stored-policy.js";

async function put(etcd: EtcdAccess, key: string, value: string): Promise<number> {
  const res = await etcd.call(`a write of ${key}`, () => etcd.client.put(key).value(value).exec());
  return Number(res.header.revision);
}

export const setCommand = defineSubcommand({
  name: "set",
  summary: "Validate a policy file and store it as a model's policy",
  description:
    "Validates the policy file (YAML or JSON); if it is invalid, prints every problem with its field path and exits 2 without writing. " +
    "Otherwise stores it as proto3 JSON at {prefix}/policies/{model} and prints the new etcd revision. Processes apply it at once.",
  schema: setSchema,
  run: async (v) => {
    const parsed = readPolicyFile(v.file, v.model);
    return withEtcd(v, async (etcd, keys) => {
      const key = keys.enforcing(v.model);
      const revision = await put(etcd, key, serializePolicy(parsed));
      print(v, { model: v.model, key, revision }, () => [`stored ${key} at revision ${revision}`]);
      return 0;
    });
  },
});

export const rollbackCommand = defineSubcommand({
  name: "rollback",
  summary: "Write back the value a model's policy had at an earlier etcd revision",
  description:
    "Reads the policy key as of --to REV (see `sluice policy history`), validates that value and writes it as the current policy. " +
    "Fails with exit 1 if the key did not exist at REV or etcd has compacted that revision away.",
  schema: rollbackSchema,
  run: async (v) => {
    if (v.to <= 0)
      throw new PolicyUsageError("--to REV is required: an etcd revision from `sluice policy history`");
    return withEtcd(v, async (etcd, keys) => {
      const key = keys.enforcing(v.model);
      const old = await readAt(etcd, key, v.to);
      if (old === undefined) throw new PolicyCommandError(`${key} did not exist at revision ${v.to}`);
      const checked = checkStored(key, v.model, old);
      if (checked.parsed === undefined) {
        throw new PolicyUsageError(
          `the value of ${key} at revision ${old.revision} is not a valid policy; not restored:`,
          checked.error?.issues.map(formatPolicyIssue) ?? [],
        );
      }
      const parsed: ParsedPolicy = checked.parsed;
      const revision = await put(etcd, key, serializePolicy(parsed));
      print(v, { model: v.model, key, restoredRevision: old.revision, revision }, () => [
        `restored ${key} to its value of revision ${old.revision}; stored at revision ${revision}`,
      ]);
      return 0;
    });
  },
});

export const shadowCommand = defineSubcommand({
  name: "shadow",
  summary: "Store, show or clear a model's shadow (candidate) policy",
  description:
    "Stores a validated candidate policy at {prefix}/policies/_shadow/{model}. Processes evaluate it beside the enforcing policy and report " +
    "its would-be decisions without enforcing them. Without -f, shows the stored candidate; --clear removes it.",
  schema: shadowSchema,
  run: async (v) => {
    if (v.clear && v.file !== "") throw new PolicyUsageError("give either -f FILE or --clear, not both");
    const parsed = v.file === "" ? undefined : readPolicyFile(v.file, v.model);
    return withEtcd(v, async (etcd, keys) => {
      const key = keys.shadow(v.model);
      if (v.clear) {
        const res = await etcd.call(`a delete of ${key}`, () => etcd.client.delete().key(key).exec());
        const deleted = Number(res.deleted) > 0;
        const revision = Number(res.header.revision);
        print(v, { model: v.model, key, deleted, revision }, () => [
          deleted ? `removed ${key} at revision ${revision}` : `${key} was not set; nothing removed`,
        ]);
        return 0;
      }
      if (parsed !== undefined) {
        const revision = await put(etcd, key, serializePolicy(parsed));
        print(v, { model: v.model, key, revision }, () => [
          `stored shadow policy ${key} at revision ${revision}`,
        ]);
        return 0;
      }
      const current = await readAt(etcd, key, undefined);
      print(
        v,
        {
          model: v.model,
          shadow: storedJson(current === undefined ? undefined : checkStored(key, v.model, current)),
        },
        () =>
          current === undefined
            ? [`no shadow policy for ${v.model} (${key})`]
            : [`shadow policy ${key} at revision ${current.revision}`, current.value.trimEnd()],
      );
      return 0;
    });
  },
});
