// Turns on etcd's auth for a test server: roles with key-range permissions, users, a root user, then
// `auth enable`, through etcd's JSON gateway (/v3/auth/*) so the test kit needs no etcd client.

import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

export interface EtcdRolePermission {
  /** Key, or key prefix when `prefix` is true. */
  readonly key: string;
  readonly prefix?: boolean;
  readonly type: "read" | "write" | "readwrite";
}

export interface EtcdServerAuth {
  /** Password of the `root` user (role `root`: everything, including user and role admin). */
  readonly rootPassword: string;
  readonly roles?: readonly { readonly name: string; readonly permissions: readonly EtcdRolePermission[] }[];
  readonly users?: readonly {
    readonly name: string;
    readonly password: string;
    readonly roles: readonly string[];
  }[];
}

interface GatewayTls {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile?: string;
}

const PERM_TYPE = { read: "READ", write: "WRITE", readwrite: "READWRITE" } as const;

export async function enableEtcdAuth(
  clientUrl: string,
  auth: EtcdServerAuth,
  tls?: GatewayTls,
): Promise<void> {
  const post = (path: string, body: object): Promise<void> => gatewayPost(clientUrl, path, body, tls);
  for (const role of auth.roles ?? []) {
    await post("/v3/auth/role/add", { name: role.name });
    for (const perm of role.permissions) {
      await post("/v3/auth/role/grant", {
        name: role.name,
        perm: { permType: PERM_TYPE[perm.type], key: b64(perm.key), range_end: b64(rangeEnd(perm)) },
      });
    }
  }
  for (const user of auth.users ?? []) {
    await post("/v3/auth/user/add", { name: user.name, password: user.password });
    for (const role of user.roles) await post("/v3/auth/user/grant", { user: user.name, role });
  }
  await post("/v3/auth/user/add", { name: "root", password: auth.rootPassword });
  await post("/v3/auth/role/add", { name: "root" }).catch((err: unknown) => {
    if (!/already exists/.test(String(err))) throw err;
  });
  await post("/v3/auth/user/grant", { user: "root", role: "root" });
  await post("/v3/auth/enable", {});
}

/** etcd's range end for a prefix: the prefix with its last byte incremented; "" for a single key. */
function rangeEnd(perm: EtcdRolePermission): string {
  if (perm.prefix !== true) return "";
  const bytes = Buffer.from(perm.key);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if ((bytes[i] as number) < 0xff) {
      bytes[i] = (bytes[i] as number) + 1;
      return bytes.subarray(0, i + 1).toString("latin1");
    }
  }
  return "\0";
}

function b64(text: string): string {
  return Buffer.from(text, "latin1").toString("base64");
}

function gatewayPost(base: string, path: string, body: object, tls: GatewayTls | undefined): Promise<void> {
  const url = new URL(path, base);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const options = {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      timeout: 10_000,
      ...(url.protocol === "https:" && tls !== undefined
        ? {
            cert: readFileSync(tls.certFile),
            key: readFileSync(tls.keyFile),
            ...(tls.caFile === undefined ? {} : { ca: readFileSync(tls.caFile) }),
          }
        : {}),
    };
    const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode === 200) resolve();
        else reject(new Error(`etcd ${path} answered ${res.statusCode}: ${text}`));
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`etcd ${path} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}
