// One short-lived etcd client per `sluice policy` run. The first call doubles as the connect check:
// if etcd does not answer within the deadline the command ends with exit 3 naming the endpoints,
// instead of waiting for gRPC's own backoff.

import { createEtcdClient } from "@sluice/runtime";
import { type Etcd3, GRPCGenericError, isRecoverableError } from "etcd3";
import { EtcdUnreachableError } from "./errors.js";

/** Deadline for the first answer from etcd. */
export const DEFAULT_ETCD_CONNECT_DEADLINE_MS = 3_000;
/** Deadline for each later call (etcd is known to be up by then). */
export const DEFAULT_ETCD_CALL_DEADLINE_MS = 10_000;

export interface EtcdAccess {
  readonly client: Etcd3;
  /** Runs one etcd call under the deadline; connection failures become EtcdUnreachableError. */
  call<T>(what: string, run: () => Promise<T>): Promise<T>;
  close(): void;
}

export interface OpenEtcdAccessOptions {
  readonly endpoints: readonly string[];
  readonly connectDeadlineMs?: number;
  readonly callDeadlineMs?: number;
}

export async function openEtcdAccess(options: OpenEtcdAccessOptions): Promise<EtcdAccess> {
  const endpoints = options.endpoints;
  const connectMs = options.connectDeadlineMs ?? DEFAULT_ETCD_CONNECT_DEADLINE_MS;
  const callMs = options.callDeadlineMs ?? DEFAULT_ETCD_CALL_DEADLINE_MS;
  const client = createEtcdClient(endpoints, connectMs);
  let connected = false;

  const call = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    const limitMs = connected ? callMs : connectMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new EtcdUnreachableError(endpoints, `no answer to ${what} within ${limitMs} ms`)),
        limitMs,
      );
    });
    try {
      const result = await Promise.race([run(), deadline]);
      connected = true;
      return result;
    } catch (err) {
      if (err instanceof EtcdUnreachableError) throw err;
      if (err instanceof Error && (isRecoverableError(err) || isConnectFailure(err))) {
        throw new EtcdUnreachableError(endpoints, `${what} failed: ${err.message}`, { cause: err });
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };

  try {
    await call("a status check", () => client.maintenance.status());
  } catch (err) {
    client.close();
    if (err instanceof EtcdUnreachableError) throw err;
    // Anything else answering the status check (an HTTP server, a proxy) is not a usable etcd either.
    throw new EtcdUnreachableError(endpoints, `status check failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { client, call, close: () => client.close() };
}

function isConnectFailure(err: Error): boolean {
  return (
    err instanceof GRPCGenericError &&
    /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|failed to connect|No connection established/i.test(err.message)
  );
}
