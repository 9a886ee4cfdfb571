// A NATS operator, account and users for testing decentralized (JWT) auth without `nsc`: the JWTs
// are built here in the nats-io/jwt v2 format (header `{"typ":"JWT","alg":"ed25519-nkey"}`, claims
// signed with the issuer's NKey) and the creds files are written exactly as `nsc` writes them.

import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAccount, createOperator, createUser, type KeyPair } from "nkeys.js";
import type { NatsServerAuth, NatsServerPermissions } from "./nats-server.js";

export interface TestNatsOperator {
  /** Pass as `startNats({ auth })`. */
  readonly auth: NatsServerAuth;
  /** Public key of the one application account. */
  readonly account: string;
  /** Writes a creds file (user JWT + seed) for a new user of the account into `dir`; returns its path. */
  writeUserCreds(dir: string, name: string, permissions?: NatsServerPermissions): string;
}

const UNLIMITED = { subs: -1, data: -1, payload: -1 };
const ACCOUNT_LIMITS = { ...UNLIMITED, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

export function createTestNatsOperator(): TestNatsOperator {
  const operator = createOperator();
  const account = createAccount();
  const system = createAccount();
  const operatorJwt = signJwt(operator, operator.getPublicKey(), "sluice-test-operator", {
    type: "operator",
    version: 2,
  });
  const accountJwt = (kp: KeyPair, name: string): string =>
    signJwt(operator, kp.getPublicKey(), name, { type: "account", version: 2, limits: ACCOUNT_LIMITS });
  return {
    auth: {
      operator: {
        operatorJwt,
        systemAccount: system.getPublicKey(),
        accountJwts: {
          [account.getPublicKey()]: accountJwt(account, "SLUICE"),
          [system.getPublicKey()]: accountJwt(system, "SYS"),
        },
      },
    },
    account: account.getPublicKey(),
    writeUserCreds(dir, name, permissions) {
      const user = createUser();
      const jwt = signJwt(account, user.getPublicKey(), name, {
        type: "user",
        version: 2,
        ...UNLIMITED,
        pub: permissions?.publish === undefined ? {} : { allow: permissions.publish },
        sub: permissions?.subscribe === undefined ? {} : { allow: permissions.subscribe },
      });
      const file = join(dir, `${name}.creds`);
      writeFileSync(file, credsText(jwt, new TextDecoder().decode(user.getSeed())), { mode: 0o600 });
      return file;
    },
  };
}

/** The creds file layout `nsc` writes and nats.js `credsAuthenticator` parses. */
export function credsText(userJwt: string, seed: string): string {
  return [
    "-----BEGIN NATS USER JWT-----",
    userJwt,
    "------END NATS USER JWT------",
    "",
    "************************* IMPORTANT *************************",
    "NKEY Seed printed below can be used to sign and prove identity.",
    "NKEYs are sensitive and should be treated as secrets.",
    "",
    "-----BEGIN USER NKEY SEED-----",
    seed,
    "------END USER NKEY SEED------",
    "",
    "*************************************************************",
    "",
  ].join("\n");
}

/** A JWT whose `jti` is the base32 SHA-256 of the claims, signed (ed25519) by `issuer`. */
function signJwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = {
    jti: "",
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats,
  };
  claims.jti = base32(createHash("sha256").update(JSON.stringify(claims)).digest());
  const header = base64Url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }));
  const payload = base64Url(JSON.stringify(claims));
  const signature = issuer.sign(new TextEncoder().encode(`${header}.${payload}`));
  return `${header}.${payload}.${base64Url(signature)}`;
}

function base64Url(data: string | Uint8Array): string {
  return Buffer.from(data).toString("base64url");
}

const BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}
