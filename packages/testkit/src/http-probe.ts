import { request } from "node:http";

export interface ProbeResponse {
  readonly status: number;
  readonly body: string;
}

/**
 * One plain HTTP GET with a hard timeout, for readiness probes. Never rejects: a server that is
 * not listening yet is the normal case while waiting, so failures resolve to `undefined`.
 */
export function probeHttp(url: string, timeoutMs: number): Promise<ProbeResponse | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { method: "GET", agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", () => resolve(undefined));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });
}
