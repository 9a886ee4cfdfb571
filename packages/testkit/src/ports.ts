import { createServer } from "node:net";

/**
 * Asks the kernel for a free TCP port on `host`. The port is released before it is returned, so
 * another process can take it in between; launchers retry on "address in use" for that reason.
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error(`could not read the bound address of a probe socket on ${host}`));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
