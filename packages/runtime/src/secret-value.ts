// A secret (password, token, NKey seed, creds) given inline or as a file path. Files are preferred in
// deployments: a Kubernetes Secret mounted as a file is rotated in place, and a path in a config dump
// reveals nothing. Inline values come only from env vars or config files, never from flags (see
// `noFlag` in config-schema.ts).

import { readFileSync } from "node:fs";
import { SecretFileError } from "./errors.js";

export type SecretValue = { readonly value: string } | { readonly file: string };

/**
 * The secret's text. A file's trailing newline (as `echo` and editors leave it) is dropped, since no
 * password, token or seed ends in one. @throws SecretFileError naming the file, never the content.
 */
export function readSecret(secret: SecretValue, what: string): string {
  if ("value" in secret) return secret.value;
  let text: string;
  try {
    text = readFileSync(secret.file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new SecretFileError(`cannot read ${what} file ${secret.file}: ${code}`, { cause: err });
  }
  const trimmed = text.replace(/\r?\n$/, "");
  if (trimmed.trim() === "") throw new SecretFileError(`${what} file ${secret.file} is empty`);
  return trimmed;
}

/** Where the secret comes from, safe to log: `file /run/secrets/nats-token` or `inline value`. */
export function describeSecret(secret: SecretValue): string {
  return "file" in secret ? `file ${secret.file}` : "inline value";
}
