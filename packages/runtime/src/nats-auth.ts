// How a process proves who it is to NATS, and how it checks the server: one of user/password, token,
// NKey seed or a creds file (user JWT + seed, decentralized auth), plus optional TLS. Secrets are read
// at every (re)connect through nats.js's function-valued authenticators, so a rotated Secret file is
// used at the next reconnect without a restart; TLS files are likewise re-read by nats.js per connect.

import {
  type Authenticator,
  credsAuthenticator,
  nkeyAuthenticator,
  type TlsOptions,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from "nats";
import { readSecret, type SecretValue } from "./secret-value.js";

export type NatsAuth =
  | { readonly kind: "user-password"; readonly user: string; readonly password: SecretValue }
  | { readonly kind: "token"; readonly token: SecretValue }
  /** An NKey user seed (`SU…`); the server knows the public key (`authorization { users: [{ nkey }] }`). */
  | { readonly kind: "nkey"; readonly seed: SecretValue }
  /** A creds file as `nsc` writes it: the user JWT and its NKey seed (operator/JWT mode). */
  | { readonly kind: "creds"; readonly creds: SecretValue };

/** PEM files; nats.js reads them at every connect. Any of them turns TLS on and makes it required. */
export interface NatsTlsFiles {
  /** CA bundle that signed the server certificate; default: Node's public roots. */
  readonly caFile?: string;
  /** Client certificate for mutual TLS (with `keyFile`). */
  readonly certFile?: string;
  readonly keyFile?: string;
}

const encoder = new TextEncoder();

/** The secret an auth method carries, and what to call it in errors. */
function secretOf(auth: NatsAuth): { secret: SecretValue; what: string } {
  switch (auth.kind) {
    case "user-password":
      return { secret: auth.password, what: "NATS password" };
    case "token":
      return { secret: auth.token, what: "NATS token" };
    case "nkey":
      return { secret: auth.seed, what: "NATS NKey seed" };
    case "creds":
      return { secret: auth.creds, what: "NATS creds" };
  }
}

/** The nats.js authenticator for `auth`; each call re-reads file-held secrets. */
export function natsAuthenticator(auth: NatsAuth): Authenticator {
  const { secret, what } = secretOf(auth);
  const read = (): string => readSecret(secret, what);
  switch (auth.kind) {
    case "user-password":
      return usernamePasswordAuthenticator(auth.user, read);
    case "token":
      return tokenAuthenticator(read);
    case "nkey":
      return nkeyAuthenticator(() => encoder.encode(read().trim()));
    case "creds":
      return credsAuthenticator(() => encoder.encode(read()));
  }
}

/** Reads the secret once, so a missing or empty file is reported at start-up rather than at connect. */
export function checkNatsAuth(auth: NatsAuth): void {
  const { secret, what } = secretOf(auth);
  readSecret(secret, what);
}

export function natsTlsOptions(tls: NatsTlsFiles): TlsOptions {
  return {
    ...(tls.caFile ? { caFile: tls.caFile } : {}),
    ...(tls.certFile ? { certFile: tls.certFile } : {}),
    ...(tls.keyFile ? { keyFile: tls.keyFile } : {}),
  };
}

/** For the start-up log line: the method, and for user/password the user name; never a secret. */
export function describeNatsAuth(auth: NatsAuth | undefined): string {
  if (auth === undefined) return "none";
  return auth.kind === "user-password" ? `user-password (user ${auth.user})` : auth.kind;
}
