/** A server binary could not be found; the message says how to install it. */
export class ServerNotInstalledError extends Error {
  override readonly name = "ServerNotInstalledError";
  constructor(
    readonly binary: string,
    readonly envOverride: string,
    options?: ErrorOptions,
  ) {
    super(
      `${binary} was not found on PATH. Install it with \`apt-get install nats-server etcd-server\` ` +
        `(Debian/Ubuntu), or point ${envOverride} at a running server.`,
      options,
    );
  }
}

/** A server process exited before it became ready, or did not become ready in time. */
export class ServerStartError extends Error {
  override readonly name = "ServerStartError";
  constructor(
    message: string,
    /** Last lines the server wrote to stdout/stderr, for the test log. */
    readonly logTail: string,
    options?: ErrorOptions,
  ) {
    super(logTail.length > 0 ? `${message}\n--- server log tail ---\n${logTail}` : message, options);
  }
}

/** The operation needs a server this process started (e.g. restart of an external server). */
export class UnsupportedOnExternalServerError extends Error {
  override readonly name = "UnsupportedOnExternalServerError";
}
