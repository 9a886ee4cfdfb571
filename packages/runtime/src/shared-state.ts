// Start-up of the shared state for processes whose own state comes from it (router, engine-scheduler,
// aggregator): they wait for their first NATS connection and etcd lease before serving. Processes that
// must serve at once (ingress, mock-engine) use `createNatsClient` / `createEtcdSession` instead.
import {
  type EtcdSecurityConfigValues,
  etcdSecurityFromConfig,
  natsSecurityFromConfig,
  type SecurityConfigValues,
} from "./config-security.js";
import { type EtcdSession, openEtcdSession } from "./etcd.js";
import type { Logger } from "./logger.js";
import { connectNats, type NatsHandle } from "./nats.js";

/** The common settings, credentials included (a process's config has them all). */
export interface SharedStateConfig extends SecurityConfigValues, EtcdSecurityConfigValues {
  readonly id: string;
  readonly natsUrl: string;
  readonly etcdEndpoints: readonly string[];
  readonly etcdPrefix: string;
  readonly leaseTtlMs: number;
}

export interface SharedState {
  readonly nats: NatsHandle;
  readonly etcd: EtcdSession;
}

/** etcd leases are whole seconds and the runtime's keep-alive needs at least 2. */
export function leaseTtlSecOf(leaseTtlMs: number): number {
  return Math.max(2, Math.ceil(leaseTtlMs / 1000));
}

/**
 * Connects to NATS, then opens the etcd session (one lease for the process). On failure the error is
 * logged, whatever was opened is closed, and the caller gets `undefined` to turn into exit code 1.
 */
export async function openSharedState(
  role: string,
  config: SharedStateConfig,
  logger: Logger,
): Promise<SharedState | undefined> {
  let nats: NatsHandle;
  try {
    nats = await connectNats({
      servers: config.natsUrl,
      ...natsSecurityFromConfig(config),
      name: `${role}-${config.id}`,
      logger: logger.child({ component: "nats" }),
    });
  } catch (error) {
    logger.error({ err: error }, "cannot connect to NATS");
    return undefined;
  }
  try {
    const etcd = await openEtcdSession({
      endpoints: config.etcdEndpoints,
      prefix: config.etcdPrefix,
      leaseTtlSec: leaseTtlSecOf(config.leaseTtlMs),
      security: etcdSecurityFromConfig(config),
      logger: logger.child({ component: "etcd" }),
    });
    return { nats, etcd };
  } catch (error) {
    logger.error({ err: error }, "cannot open the etcd session");
    await nats.close();
    return undefined;
  }
}
