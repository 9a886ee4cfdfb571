// How a process authenticates to etcd (user/password, then etcd's RBAC decides per key range) and
// checks it over TLS (a CA, optionally a client certificate for etcd's --client-cert-auth). etcd3
// takes static values, so files are read when the client is created (at start-up).

import { readFileSync } from "node:fs";
import type { IOptions } from "etcd3";
import { SecretFileError } from "./errors.js";
import { readSecret, type SecretValue } from "./secret-value.js";

export interface EtcdAuth {
  readonly user: string;
  readonly password: SecretValue;
}

/** PEM files. The CA is required: with TLS, etcd's certificate is checked against it. */
export interface EtcdTlsFiles {
  readonly caFile: string;
  /** Client certificate for mutual TLS (with `keyFile`). */
  readonly certFile?: string;
  readonly keyFile?: string;
}

export interface EtcdSecurity {
  readonly auth?: EtcdAuth;
  readonly tls?: EtcdTlsFiles;
}

/** The etcd3 `auth` / `credentials` options, files read now. @throws SecretFileError, RangeError */
export function etcdClientSecurityOptions(security: EtcdSecurity): Pick<IOptions, "auth" | "credentials"> {
  const out: Pick<IOptions, "auth" | "credentials"> = {};
  if (security.auth !== undefined) {
    out.auth = {
      username: security.auth.user,
      password: readSecret(security.auth.password, "etcd password"),
    };
  }
  const tls = security.tls;
  if (tls !== undefined) {
    if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
      throw new RangeError("etcd TLS client certificate and key must be given together");
    }
    out.credentials = {
      rootCertificate: readPem(tls.caFile, "etcd TLS CA"),
      ...(tls.certFile === undefined ? {} : { certChain: readPem(tls.certFile, "etcd TLS certificate") }),
      ...(tls.keyFile === undefined ? {} : { privateKey: readPem(tls.keyFile, "etcd TLS key") }),
    };
  }
  return out;
}

/** For the start-up log line; never a secret. */
export function describeEtcdSecurity(security: EtcdSecurity | undefined): string {
  const auth = security?.auth === undefined ? "no auth" : `user ${security.auth.user}`;
  const tls =
    security?.tls === undefined ? "no TLS" : security.tls.certFile === undefined ? "TLS" : "mutual TLS";
  return `${auth}, ${tls}`;
}

function readPem(file: string, what: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new SecretFileError(`cannot read ${what} file ${file}: ${code}`, { cause: err });
  }
  if (!pem.includes("-----BEGIN ")) throw new SecretFileError(`${what} file ${file} is not PEM`);
  return pem;
}
