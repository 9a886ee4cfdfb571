import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { extendHandle } from "./extend-handle.js";
import { probeHttp } from "./http-probe.js";
import {
  DEFAULT_HOST,
  externalHandle,
  launchServer,
  type ServerHandle,
  type ServerLaunchOptions,
} from "./managed-server.js";
import { freePort } from "./ports.js";

export const NATS_URL_ENV = "SLUICE_TEST_NATS_URL";

export interface NatsServerOptions extends ServerLaunchOptions {
  /** Client port. Default: a free port. */
  readonly port?: number;
  /** HTTP monitoring port (`/healthz`, `/varz`). Default: a free port. */
  readonly monitorPort?: number;
  /** Enable JetStream (store under the data dir). Default true. */
  readonly jetstream?: boolean;
  /** Extra command-line arguments, appended last. */
  readonly extraArgs?: readonly string[];
  /** Client authentication (written to a config file in the data dir). Default: none. */
  readonly auth?: NatsServerAuth;
  /** TLS on the client port (the monitoring port stays plain HTTP for the readiness probe). */
  readonly tls?: NatsServerTls;
}

/** What a user may publish / subscribe to (NATS subject patterns); omitted: everything. */
export interface NatsServerPermissions {
  readonly publish?: readonly string[];
  readonly subscribe?: readonly string[];
}

export type NatsServerUser = (
  | { readonly user: string; readonly password: string }
  /** Public NKey (`U…`) of a user that proves itself with the seed. */
  | { readonly nkey: string }
) & { readonly permissions?: NatsServerPermissions };

export type NatsServerAuth =
  | { readonly token: string }
  | { readonly users: readonly NatsServerUser[] }
  /** Operator (JWT) mode with a memory resolver; see nats-operator.ts. JetStream defaults to off. */
  | {
      readonly operator: {
        readonly operatorJwt: string;
        readonly systemAccount?: string;
        /** Account public key → account JWT. */
        readonly accountJwts: Readonly<Record<string, string>>;
      };
    };

export interface NatsServerTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA for verifying client certificates; with `verifyClients`, a client certificate is required. */
  readonly caFile?: string;
  readonly verifyClients?: boolean;
}

export interface NatsServer extends ServerHandle {
  /** `nats://host:port`, ready for `connect({ servers })`. */
  readonly url: string;
  readonly port: number;
  /** `http://host:monitorPort`, or undefined for an external server. */
  readonly monitorUrl: string | undefined;
}

interface NatsPorts {
  readonly port: number;
  readonly monitorPort: number;
}

const PROBE_TIMEOUT_MS = 1_000;

/**
 * Starts a real `nats-server` (JetStream on) on free ports and resolves once `/healthz` answers
 * 200. With `SLUICE_TEST_NATS_URL` set, returns a handle for that server instead.
 */
export async function startNats(options: NatsServerOptions = {}): Promise<NatsServer> {
  const env = options.env ?? process.env;
  const externalUrl = env[NATS_URL_ENV];
  // A server with auth or TLS must be configured by us, so those options never use an external one.
  const mayUseExternal =
    (options.allowExternal ?? true) && options.auth === undefined && options.tls === undefined;
  if (mayUseExternal && externalUrl !== undefined && externalUrl !== "") {
    const port = Number(new URL(externalUrl.split(",")[0]!.trim()).port || 4222);
    return extendHandle(externalHandle(NATS_URL_ENV, externalUrl), {
      url: externalUrl,
      port,
      monitorUrl: undefined,
    });
  }
  const host = options.host ?? DEFAULT_HOST;
  const { handle, ports } = await launchServer<NatsPorts>({
    binary: options.binary ?? "nats-server",
    envOverrideName: NATS_URL_ENV,
    options,
    portsArePicked: options.port === undefined && options.monitorPort === undefined,
    pickPorts: async () => ({
      port: options.port ?? (await freePort(host)),
      monitorPort: options.monitorPort ?? (await freePort(host)),
    }),
    plan: (p, dataDir) => ({
      args: [
        ...configFileArgs(options, dataDir),
        "-a",
        host,
        "-p",
        String(p.port),
        "-m",
        String(p.monitorPort),
        ...((options.jetstream ?? !(options.auth !== undefined && "operator" in options.auth))
          ? ["-js", "-sd", join(dataDir, "jetstream")]
          : []),
        ...(options.extraArgs ?? []),
      ],
      probeReady: async () =>
        (await probeHttp(`http://${host}:${p.monitorPort}/healthz`, PROBE_TIMEOUT_MS))?.status === 200,
    }),
  });
  return extendHandle(handle, {
    url: `nats://${host}:${ports.port}`,
    port: ports.port,
    monitorUrl: `http://${host}:${ports.monitorPort}`,
  });
}

/** `-c <file>` with the auth and TLS blocks, or nothing when neither is asked for. */
function configFileArgs(options: NatsServerOptions, dataDir: string): string[] {
  if (options.auth === undefined && options.tls === undefined) return [];
  const file = join(dataDir, "nats-server.conf");
  writeFileSync(file, renderNatsConfig(options.auth, options.tls), { mode: 0o600 });
  return ["-c", file];
}

/** nats-server's config syntax accepts JSON values, so every string is JSON-quoted. */
export function renderNatsConfig(auth: NatsServerAuth | undefined, tls: NatsServerTls | undefined): string {
  const q = (v: string): string => JSON.stringify(v);
  const list = (vs: readonly string[]): string => `[${vs.map(q).join(", ")}]`;
  const lines: string[] = [];
  if (auth !== undefined && "token" in auth) lines.push(`authorization { token: ${q(auth.token)} }`);
  if (auth !== undefined && "users" in auth) {
    const users = auth.users.map((u) => {
      const id = "nkey" in u ? `nkey: ${q(u.nkey)}` : `user: ${q(u.user)}, password: ${q(u.password)}`;
      const perms = u.permissions;
      const permText =
        perms === undefined
          ? ""
          : `, permissions: { ${[
              perms.publish === undefined ? "" : `publish: ${list(perms.publish)}`,
              perms.subscribe === undefined ? "" : `subscribe: ${list(perms.subscribe)}`,
            ]
              .filter((x) => x !== "")
              .join(", ")} }`;
      return `  { ${id}${permText} }`;
    });
    lines.push("authorization {", "  users: [", users.join(",\n"), "  ]", "}");
  }
  if (auth !== undefined && "operator" in auth) {
    const op = auth.operator;
    lines.push(`operator: ${q(op.operatorJwt)}`);
    if (op.systemAccount !== undefined) lines.push(`system_account: ${q(op.systemAccount)}`);
    lines.push("resolver: MEMORY", "resolver_preload: {");
    for (const [account, jwt] of Object.entries(op.accountJwts)) lines.push(`  ${account}: ${q(jwt)}`);
    lines.push("}");
  }
  if (tls !== undefined) {
    lines.push(
      "tls {",
      `  cert_file: ${q(tls.certFile)}`,
      `  key_file: ${q(tls.keyFile)}`,
      ...(tls.caFile === undefined ? [] : [`  ca_file: ${q(tls.caFile)}`]),
      `  verify: ${tls.verifyClients === true ? "true" : "false"}`,
      "  timeout: 5",
      "}",
    );
  }
  return `${lines.join("\n")}\n`;
}
