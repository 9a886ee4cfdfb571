import { join } from "node:path";
import { type EtcdServerAuth, enableEtcdAuth } from "./etcd-auth-setup.js";
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

export const ETCD_ENDPOINTS_ENV = "SLUICE_TEST_ETCD_ENDPOINTS";

export interface EtcdServerOptions extends ServerLaunchOptions {
  /** Client port. Default: a free port. */
  readonly clientPort?: number;
  /** Peer (raft) port. Default: a free port. */
  readonly peerPort?: number;
  /**
   * Raft heartbeat. Default 50 ms: a single member elects itself after one election timeout, so
   * short values make start and restart fast.
   */
  readonly heartbeatIntervalMs?: number;
  /** Raft election timeout. Default 250 ms (must be ≥ 5 × heartbeat per etcd's own check). */
  readonly electionTimeoutMs?: number;
  /** Extra command-line arguments, appended last. */
  readonly extraArgs?: readonly string[];
  /**
   * TLS on the client port (endpoints become https://). The readiness probe then uses a separate plain
   * HTTP metrics listener (`--listen-metrics-urls`), which serves /health only.
   */
  readonly tls?: EtcdServerTls;
  /** Users, roles and `auth enable`, set up once the server is first ready (kept across restarts). */
  readonly auth?: EtcdServerAuth;
}

export interface EtcdServerTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA of client certificates; with `clientCertAuth` every client must present one it signed. */
  readonly caFile?: string;
  readonly clientCertAuth?: boolean;
}

export interface EtcdServer extends ServerHandle {
  /** Client URLs, ready for `new Etcd3({ hosts })`. */
  readonly endpoints: readonly string[];
  /** The first endpoint. */
  readonly clientUrl: string;
}

interface EtcdPorts {
  readonly clientPort: number;
  readonly peerPort: number;
  /** Plain-HTTP /health listener, only with TLS. */
  readonly metricsPort: number | undefined;
}

export const DEFAULT_ETCD_HEARTBEAT_INTERVAL_MS = 50;
export const DEFAULT_ETCD_ELECTION_TIMEOUT_MS = 250;
const PROBE_TIMEOUT_MS = 1_000;
const MEMBER_NAME = "sluice";

/**
 * Starts a real single-member `etcd` on free ports with its data in a temp dir and resolves once
 * `/health` reports healthy (a leader exists). With `SLUICE_TEST_ETCD_ENDPOINTS` set, returns a
 * handle for those endpoints instead.
 */
export async function startEtcd(options: EtcdServerOptions = {}): Promise<EtcdServer> {
  const env = options.env ?? process.env;
  const external = env[ETCD_ENDPOINTS_ENV];
  // A server with auth or TLS must be configured by us, so those options never use an external one.
  const mayUseExternal =
    (options.allowExternal ?? true) && options.auth === undefined && options.tls === undefined;
  if (mayUseExternal && external !== undefined && external !== "") {
    const endpoints = external
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e !== "");
    return extendHandle(externalHandle(ETCD_ENDPOINTS_ENV, external), {
      endpoints,
      clientUrl: endpoints[0]!,
    });
  }
  const host = options.host ?? DEFAULT_HOST;
  const heartbeat = options.heartbeatIntervalMs ?? DEFAULT_ETCD_HEARTBEAT_INTERVAL_MS;
  const election = options.electionTimeoutMs ?? DEFAULT_ETCD_ELECTION_TIMEOUT_MS;
  const { handle, ports } = await launchServer<EtcdPorts>({
    binary: options.binary ?? "etcd",
    envOverrideName: ETCD_ENDPOINTS_ENV,
    options,
    portsArePicked: options.clientPort === undefined && options.peerPort === undefined,
    pickPorts: async () => ({
      clientPort: options.clientPort ?? (await freePort(host)),
      peerPort: options.peerPort ?? (await freePort(host)),
      metricsPort: options.tls === undefined ? undefined : await freePort(host),
    }),
    plan: (p, dataDir) => {
      const clientUrl = `${options.tls === undefined ? "http" : "https"}://${host}:${p.clientPort}`;
      const healthUrl =
        p.metricsPort === undefined ? `${clientUrl}/health` : `http://${host}:${p.metricsPort}/health`;
      const peerUrl = `http://${host}:${p.peerPort}`;
      return {
        args: [
          "--name",
          MEMBER_NAME,
          "--data-dir",
          join(dataDir, "etcd"),
          "--listen-client-urls",
          clientUrl,
          "--advertise-client-urls",
          clientUrl,
          "--listen-peer-urls",
          peerUrl,
          "--initial-advertise-peer-urls",
          peerUrl,
          "--initial-cluster",
          `${MEMBER_NAME}=${peerUrl}`,
          "--heartbeat-interval",
          String(heartbeat),
          "--election-timeout",
          String(election),
          "--logger",
          "zap",
          "--log-outputs",
          "stderr",
          ...tlsArgs(options.tls, host, p.metricsPort),
          ...(options.extraArgs ?? []),
        ],
        probeReady: async () => {
          const res = await probeHttp(healthUrl, PROBE_TIMEOUT_MS);
          return res?.status === 200 && /"health"\s*:\s*"true"/.test(res.body);
        },
      };
    },
  });
  const clientUrl = `${options.tls === undefined ? "http" : "https"}://${host}:${ports.clientPort}`;
  if (options.auth !== undefined) {
    try {
      await enableEtcdAuth(clientUrl, options.auth, options.tls);
    } catch (err) {
      await handle.dispose();
      throw err;
    }
  }
  return extendHandle(handle, { endpoints: [clientUrl], clientUrl });
}

function tlsArgs(tls: EtcdServerTls | undefined, host: string, metricsPort: number | undefined): string[] {
  if (tls === undefined) return [];
  return [
    "--cert-file",
    tls.certFile,
    "--key-file",
    tls.keyFile,
    ...(tls.caFile === undefined ? [] : ["--trusted-ca-file", tls.caFile]),
    ...(tls.clientCertAuth === true ? ["--client-cert-auth"] : []),
    "--listen-metrics-urls",
    `http://${host}:${metricsPort}`,
  ];
}
