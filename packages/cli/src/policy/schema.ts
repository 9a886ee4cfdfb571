// Flags of `sluice policy <subcommand>`. etcd settings are the processes' own (same flags, same
// SLUICE_ETCD_* variables, credentials and TLS included), so an operator points the CLI where the
// processes look, and policy writes are protected by etcd's auth and RBAC (docs/security.md).

import { commonSchema, defineSchema, mergeSchemas } from "@sluice/runtime";

const etcdSchema = defineSchema({
  "etcd-endpoints": commonSchema["etcd-endpoints"],
  "etcd-prefix": commonSchema["etcd-prefix"],
  "etcd-user": commonSchema["etcd-user"],
  "etcd-password": commonSchema["etcd-password"],
  "etcd-password-file": commonSchema["etcd-password-file"],
  "etcd-tls-ca": commonSchema["etcd-tls-ca"],
  "etcd-tls-cert": commonSchema["etcd-tls-cert"],
  "etcd-tls-key": commonSchema["etcd-tls-key"],
});

const outputSchema = defineSchema({
  json: {
    type: "boolean",
    default: false,
    description: "Print one JSON document on stdout instead of text.",
  },
  model: {
    type: "string",
    default: "",
    defaultText: "the policy file's `model` field, else _default",
    // `_shadow` is the directory of shadow policies, so it cannot be a model's key.
    pattern: /(?!_shadow$)[^/\s]*/,
    patternText: "a model name without '/' or whitespace (not _shadow), or _default",
    description: "Model whose policy to use; _default is the fallback policy of every model without its own.",
  },
});

const fileSetting = {
  type: "string",
  default: "",
  defaultText: "(required)",
  description: "Policy file, YAML or JSON (proto3 JSON field names of sluice.v1.Policy). Short form: -f.",
} as const;

const base = mergeSchemas(etcdSchema, outputSchema);

export const getSchema = base;
export const setSchema = mergeSchemas(base, defineSchema({ file: fileSetting }));
export const validateSchema = mergeSchemas(outputSchema, defineSchema({ file: fileSetting }));
export const diffSchema = mergeSchemas(
  base,
  defineSchema({
    file: fileSetting,
    effective: {
      type: "boolean",
      default: false,
      description:
        "Compare the effective policies (every default applied) instead of the documents as written.",
    },
  }),
);
export const historySchema = mergeSchemas(
  base,
  defineSchema({
    limit: {
      type: "int",
      default: 20,
      min: 1,
      max: 10_000,
      unit: "revisions",
      description: "Most revisions to show, newest first.",
    },
  }),
);
export const rollbackSchema = mergeSchemas(
  base,
  defineSchema({
    to: {
      type: "int",
      default: 0,
      min: 0,
      defaultText: "(required)",
      description:
        "etcd revision whose value of the policy key is written back (see `sluice policy history`).",
    },
  }),
);
export const shadowSchema = mergeSchemas(
  base,
  defineSchema({
    file: { ...fileSetting, defaultText: "(none: show the stored shadow policy)" },
    clear: {
      type: "boolean",
      default: false,
      description: "Remove the model's shadow policy.",
    },
  }),
);
