// Short-lived operator commands must fail fast with a clear message when NATS or etcd is down,
// unlike the processes, which wait and reconnect forever (`@sluice/runtime`'s connectNats).

import {
  createEtcdClient,
  type EtcdSecurity,
  type NatsAuth,
  type NatsTlsFiles,
  natsAuthenticator,
  natsTlsOptions,
} from "@sluice/runtime";
import type { Etcd3 } from "etcd3";
import { connect, type NatsConnection } from "nats";
import { SharedStateUnreachableError } from "./errors.js";

export const DEFAULT_CONNECT_DEADLINE_MS = 3_000;

async function withDeadline<T>(work: Promise<T>, deadlineMs: number, onLate: (value: T) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      reject(new Error(`no answer within ${deadlineMs} ms`));
    }, deadlineMs);
  });
  void work.then(
    (value) => {
      if (late) onLate(value);
    },
    () => undefined,
  );
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Connects to NATS or throws {@link SharedStateUnreachableError} after `deadlineMs`. Reconnects once up. */
export async function connectNatsWithDeadline(
  servers: string,
  name: string,
  deadlineMs: number = DEFAULT_CONNECT_DEADLINE_MS,
  security: { auth?: NatsAuth; tls?: NatsTlsFiles } = {},
): Promise<NatsConnection> {
  const list = servers
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  try {
    return await withDeadline(
      connect({
        servers: list,
        name,
        timeout: deadlineMs,
        maxReconnectAttempts: -1,
        waitOnFirstConnect: false,
        ...(security.auth === undefined ? {} : { authenticator: natsAuthenticator(security.auth) }),
        ...(security.tls === undefined ? {} : { tls: natsTlsOptions(security.tls) }),
      }),
      deadlineMs,
      (nc) => void nc.close(),
    );
  } catch (err) {
    throw new SharedStateUnreachableError("NATS", servers, { cause: err });
  }
}

/** An etcd client whose first read answered within `deadlineMs`, or {@link SharedStateUnreachableError}. */
export async function connectEtcdWithDeadline(
  endpoints: readonly string[],
  deadlineMs: number = DEFAULT_CONNECT_DEADLINE_MS,
  security?: EtcdSecurity,
): Promise<Etcd3> {
  const client = createEtcdClient(endpoints, deadlineMs, security);
  try {
    await withDeadline(client.maintenance.status(), deadlineMs, () => undefined);
    return client;
  } catch (err) {
    client.close();
    throw new SharedStateUnreachableError("etcd", endpoints.join(","), { cause: err });
  }
}
