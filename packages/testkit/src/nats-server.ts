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
  if ((options.allowExternal ?? true) && externalUrl !== undefined && externalUrl !== "") {
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
        "-a",
        host,
        "-p",
        String(p.port),
        "-m",
        String(p.monitorPort),
        ...((options.jetstream ?? true) ? ["-js", "-sd", join(dataDir, "jetstream")] : []),
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
