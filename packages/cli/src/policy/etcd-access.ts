// One short-lived etcd client per `sluice policy` run. The first call doubles as the connect check:
// if etcd does not answer within the deadline the command ends with exit 3 naming the endpoints,
// instead of waiting for gRPC's own backoff.

import { createEtcdClient, type EtcdSecurity } from "@sluice/runtime";
import {
  type Etcd3,
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  EtcdRoleNotGrantedError,
  EtcdUserNotFoundError,
  GRPCGenericError,
  GRPCUnauthenticatedError,
  isRecoverableError,
} from "etcd3";
import { EtcdAccessDeniedError, EtcdUnreachableError } from "./errors.js";

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
  /** etcd user and TLS (from the same settings as the processes). */
  readonly security?: EtcdSecurity;
  readonly connectDeadlineMs?: number;
  readonly callDeadlineMs?: number;
}

export async function openEtcdAccess(options: OpenEtcdAccessOptions): Promise<EtcdAccess> {
  const endpoints = options.endpoints;
  const connectMs = options.connectDeadlineMs ?? DEFAULT_ETCD_CONNECT_DEADLINE_MS;
  const callMs = options.callDeadlineMs ?? DEFAULT_ETCD_CALL_DEADLINE_MS;
  const client = createEtcdClient(endpoints, connectMs, options.security);
  const user = options.security?.auth?.user;
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
      const denied = accessDenied(err, what, user);
      if (denied !== undefined) throw denied;
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
    if (err instanceof EtcdUnreachableError || err instanceof EtcdAccessDeniedError) throw err;
    // Anything else answering the status check (an HTTP server, a proxy) is not a usable etcd either.
    throw new EtcdUnreachableError(endpoints, `status check failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { client, call, close: () => client.close() };
}

/** etcd's auth and RBAC refusals, as one error saying who was refused what and how to fix it. */
function accessDenied(
  err: unknown,
  what: string,
  user: string | undefined,
): EtcdAccessDeniedError | undefined {
  const who = user === undefined ? "without credentials (no --etcd-user)" : `as user ${user}`;
  // etcd with auth enabled answers an anonymous call with INVALID_ARGUMENT "user name is empty".
  if (err instanceof Error && /user name is empty/.test(err.message)) {
    return new EtcdAccessDeniedError(
      "etcd requires authentication: give --etcd-user and its password (--etcd-password-file or SLUICE_ETCD_PASSWORD)",
      { cause: err },
    );
  }
  if (err instanceof EtcdAuthenticationFailedError || err instanceof EtcdUserNotFoundError) {
    return new EtcdAccessDeniedError(
      `etcd rejected the credentials ${who}: check --etcd-user and its password`,
      {
        cause: err,
      },
    );
  }
  if (
    err instanceof EtcdPermissionDeniedError ||
    err instanceof EtcdRoleNotGrantedError ||
    err instanceof GRPCUnauthenticatedError
  ) {
    return new EtcdAccessDeniedError(
      `etcd denied ${what} ${who}: the user needs a role with access to the key (docs/security.md, etcd RBAC)`,
      { cause: err },
    );
  }
  return undefined;
}

function isConnectFailure(err: Error): boolean {
  return (
    err instanceof GRPCGenericError &&
    /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|failed to connect|No connection established/i.test(err.message)
  );
}
