// Settings for authenticating to NATS and etcd and for protecting the admin endpoints, and their
// translation into client options. Secrets come from files (`…-file`, preferred: a mounted Secret is
// rotated in place and a path in a config dump reveals nothing) or from env vars / config files; an
// inline secret is never accepted as a flag (`noFlag`), since command lines are world-readable.

import { defineSchema } from "./config-schema.js";
import { ConfigError, SecretFileError } from "./errors.js";
import { type EtcdSecurity, etcdClientSecurityOptions } from "./etcd-auth.js";
import { checkNatsAuth, type NatsAuth, type NatsTlsFiles } from "./nats-auth.js";
import { readSecret, type SecretValue } from "./secret-value.js";

const RE_READ = "Re-read at every (re)connect, so a rotated file is used without a restart.";

export const securitySchema = defineSchema({
  "nats-user": {
    type: "string",
    default: "",
    description:
      "NATS user for user/password auth; the password comes from --nats-password-file or SLUICE_NATS_PASSWORD.",
  },
  "nats-password": {
    type: "string",
    default: "",
    secret: true,
    noFlag: true,
    description: "NATS password (with --nats-user). Prefer --nats-password-file.",
  },
  "nats-password-file": {
    type: "string",
    default: "",
    description: `File holding the NATS password (trailing newline ignored). ${RE_READ}`,
  },
  "nats-token": {
    type: "string",
    default: "",
    secret: true,
    noFlag: true,
    description: "NATS auth token. Prefer --nats-token-file.",
  },
  "nats-token-file": {
    type: "string",
    default: "",
    description: `File holding the NATS auth token. ${RE_READ}`,
  },
  "nats-nkey-seed-file": {
    type: "string",
    default: "",
    description: `File holding the NKey user seed (SU…) for NATS NKey auth. ${RE_READ}`,
  },
  "nats-creds": {
    type: "string",
    default: "",
    description: `NATS credentials file (user JWT + NKey seed, as nsc writes it) for JWT auth. ${RE_READ}`,
  },
  "nats-tls-ca": {
    type: "string",
    default: "",
    description:
      "PEM CA bundle that signed the NATS server certificate. Any --nats-tls-* setting makes TLS required.",
  },
  "nats-tls-cert": {
    type: "string",
    default: "",
    description: "PEM client certificate for NATS mutual TLS (with --nats-tls-key).",
  },
  "nats-tls-key": {
    type: "string",
    default: "",
    description: "PEM private key of --nats-tls-cert.",
  },
  "etcd-user": {
    type: "string",
    default: "",
    description:
      "etcd user (etcd auth/RBAC); the password comes from --etcd-password-file or SLUICE_ETCD_PASSWORD.",
  },
  "etcd-password": {
    type: "string",
    default: "",
    secret: true,
    noFlag: true,
    description: "etcd password (with --etcd-user). Prefer --etcd-password-file.",
  },
  "etcd-password-file": {
    type: "string",
    default: "",
    description: "File holding the etcd password (trailing newline ignored); read at start-up.",
  },
  "etcd-tls-ca": {
    type: "string",
    default: "",
    description:
      "PEM CA bundle that signed the etcd server certificate; turns TLS on (endpoints must be https://).",
  },
  "etcd-tls-cert": {
    type: "string",
    default: "",
    description: "PEM client certificate for etcd mutual TLS (--client-cert-auth; with --etcd-tls-key).",
  },
  "etcd-tls-key": {
    type: "string",
    default: "",
    description: "PEM private key of --etcd-tls-cert.",
  },
  "admin-token": {
    type: "string",
    default: "",
    secret: true,
    noFlag: true,
    description: "Bearer token for the admin server's /metrics. Prefer --admin-token-file.",
  },
  "admin-token-file": {
    type: "string",
    default: "",
    description:
      "File holding a bearer token that /metrics (every admin endpoint but the /healthz and /readyz probes) then requires; read at start-up. Empty: open.",
  },
});

/** The parsed values of `securitySchema` (what `ConfigValues` gives). */
export interface SecurityConfigValues {
  readonly natsUser: string;
  readonly natsPassword: string;
  readonly natsPasswordFile: string;
  readonly natsToken: string;
  readonly natsTokenFile: string;
  readonly natsNkeySeedFile: string;
  readonly natsCreds: string;
  readonly natsTlsCa: string;
  readonly natsTlsCert: string;
  readonly natsTlsKey: string;
}

export interface EtcdSecurityConfigValues {
  readonly etcdEndpoints: readonly string[];
  readonly etcdUser: string;
  readonly etcdPassword: string;
  readonly etcdPasswordFile: string;
  readonly etcdTlsCa: string;
  readonly etcdTlsCert: string;
  readonly etcdTlsKey: string;
}

export interface AdminSecurityConfigValues {
  readonly adminToken: string;
  readonly adminTokenFile: string;
}

/** The `auth` / `tls` options of `createNatsClient` / `connectNats`. @throws ConfigError */
export function natsSecurityFromConfig(c: SecurityConfigValues): { auth?: NatsAuth; tls?: NatsTlsFiles } {
  const password = secretOf("nats-password", c.natsPassword, c.natsPasswordFile);
  const token = secretOf("nats-token", c.natsToken, c.natsTokenFile);
  const methods: [string, NatsAuth | undefined][] = [
    ["--nats-user", c.natsUser === "" ? undefined : userPassword(c.natsUser, password)],
    ["--nats-token(-file)", token === undefined ? undefined : { kind: "token", token }],
    [
      "--nats-nkey-seed-file",
      c.natsNkeySeedFile === "" ? undefined : { kind: "nkey", seed: { file: c.natsNkeySeedFile } },
    ],
    ["--nats-creds", c.natsCreds === "" ? undefined : { kind: "creds", creds: { file: c.natsCreds } }],
  ];
  if (c.natsUser === "" && password !== undefined) {
    throw new ConfigError("a NATS password is set but --nats-user is not", { setting: "nats-user" });
  }
  const chosen = methods.filter(([, auth]) => auth !== undefined);
  if (chosen.length > 1) {
    throw new ConfigError(`choose one NATS auth method; got ${chosen.map(([flag]) => flag).join(" and ")}`, {
      setting: "nats-user",
    });
  }
  const out: { auth?: NatsAuth; tls?: NatsTlsFiles } = {};
  const auth = chosen[0]?.[1];
  if (auth !== undefined) {
    try {
      checkNatsAuth(auth);
    } catch (err) {
      throw asConfigError(err);
    }
    out.auth = auth;
  }
  pairCheck("nats-tls-cert", c.natsTlsCert, "nats-tls-key", c.natsTlsKey);
  if (c.natsTlsCa !== "" || c.natsTlsCert !== "") {
    out.tls = {
      ...(c.natsTlsCa === "" ? {} : { caFile: c.natsTlsCa }),
      ...(c.natsTlsCert === "" ? {} : { certFile: c.natsTlsCert, keyFile: c.natsTlsKey }),
    };
  }
  return out;
}

/** The `security` option of `createEtcdSession` / `createEtcdClient`, checked (files read once). @throws ConfigError */
export function etcdSecurityFromConfig(c: EtcdSecurityConfigValues): EtcdSecurity {
  const password = secretOf("etcd-password", c.etcdPassword, c.etcdPasswordFile);
  if (c.etcdUser === "" && password !== undefined) {
    throw new ConfigError("an etcd password is set but --etcd-user is not", { setting: "etcd-user" });
  }
  if (c.etcdUser !== "" && password === undefined) {
    throw new ConfigError(
      `--etcd-user ${c.etcdUser} needs a password: --etcd-password-file or SLUICE_ETCD_PASSWORD`,
      { setting: "etcd-password-file" },
    );
  }
  pairCheck("etcd-tls-cert", c.etcdTlsCert, "etcd-tls-key", c.etcdTlsKey);
  if (c.etcdTlsCert !== "" && c.etcdTlsCa === "") {
    throw new ConfigError("--etcd-tls-cert needs --etcd-tls-ca (the CA that signed etcd's certificate)", {
      setting: "etcd-tls-ca",
    });
  }
  if (c.etcdTlsCa !== "") {
    const plain = c.etcdEndpoints.filter((e) => !e.startsWith("https://"));
    if (plain.length > 0) {
      throw new ConfigError(
        `--etcd-tls-ca is set but these etcd endpoints are not https://: ${plain.join(", ")}`,
        { setting: "etcd-endpoints", value: plain },
      );
    }
  }
  const security: EtcdSecurity = {
    ...(c.etcdUser === "" || password === undefined ? {} : { auth: { user: c.etcdUser, password } }),
    ...(c.etcdTlsCa === ""
      ? {}
      : {
          tls: {
            caFile: c.etcdTlsCa,
            ...(c.etcdTlsCert === "" ? {} : { certFile: c.etcdTlsCert, keyFile: c.etcdTlsKey }),
          },
        }),
  };
  try {
    etcdClientSecurityOptions(security);
  } catch (err) {
    throw asConfigError(err);
  }
  return security;
}

/** The admin bearer token (read now), or undefined when the admin endpoints are open. @throws ConfigError */
export function adminTokenFromConfig(c: AdminSecurityConfigValues): string | undefined {
  const secret = secretOf("admin-token", c.adminToken, c.adminTokenFile);
  if (secret === undefined) return undefined;
  try {
    return readSecret(secret, "admin token");
  } catch (err) {
    throw asConfigError(err);
  }
}

function userPassword(user: string, password: SecretValue | undefined): NatsAuth {
  if (password === undefined) {
    throw new ConfigError(
      `--nats-user ${user} needs a password: --nats-password-file or SLUICE_NATS_PASSWORD`,
      { setting: "nats-password-file" },
    );
  }
  return { kind: "user-password", user, password };
}

/** The inline value or the file, refusing both at once (which one wins would be a guess). */
function secretOf(name: string, inline: string, file: string): SecretValue | undefined {
  if (inline !== "" && file !== "") {
    throw new ConfigError(`give either ${name} (inline) or --${name}-file, not both`, { setting: name });
  }
  if (inline !== "") return { value: inline };
  return file === "" ? undefined : { file };
}

function pairCheck(aName: string, a: string, bName: string, b: string): void {
  if ((a === "") !== (b === "")) {
    throw new ConfigError(`--${aName} and --${bName} must be given together`, {
      setting: a === "" ? aName : bName,
    });
  }
}

function asConfigError(err: unknown): unknown {
  if (err instanceof SecretFileError || err instanceof RangeError) {
    return new ConfigError(err.message, {}, { cause: err });
  }
  return err;
}
