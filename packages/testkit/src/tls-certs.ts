// Throw-away TLS material for tests: a CA, a server certificate for 127.0.0.1/localhost and a client
// certificate, all signed by that CA, made with the `openssl` CLI (EC P-256 keys: fast to generate).

import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ServerNotInstalledError } from "./errors.js";

const run = promisify(execFile);

export interface TestCertificates extends AsyncDisposable {
  readonly dir: string;
  readonly caFile: string;
  /** Server certificate valid for 127.0.0.1, ::1 and localhost. */
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** Client certificate (CN `sluice-client`, clientAuth usage) for mutual TLS. */
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** Removes the directory. Idempotent. */
  dispose(): Promise<void>;
}

export interface TestCertificatesOptions {
  /** Days the certificates are valid. Default 2. */
  readonly validDays?: number;
  /** Binary name or path. Default `openssl`. */
  readonly openssl?: string;
}

/** Generates a CA and a server and a client certificate in a fresh temp dir. */
export async function createTestCertificates(
  options: TestCertificatesOptions = {},
): Promise<TestCertificates> {
  const openssl = options.openssl ?? "openssl";
  const days = String(options.validDays ?? 2);
  const dir = mkdtempSync(join(tmpdir(), "sluice-tls-"));
  const file = (name: string): string => join(dir, name);
  const exec = async (args: readonly string[]): Promise<void> => {
    try {
      await run(openssl, args, { cwd: dir });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        throw new ServerNotInstalledError(openssl, "(none)", { cause: err });
      }
      const stderr = (err as { stderr?: string }).stderr ?? "";
      throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`, { cause: err });
    }
  };
  const key = (name: string) =>
    exec(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", file(name)]);
  const signed = async (name: string, subject: string, extensions: string): Promise<void> => {
    await key(`${name}-key.pem`);
    await exec([
      "req",
      "-new",
      "-key",
      file(`${name}-key.pem`),
      "-subj",
      subject,
      "-out",
      file(`${name}.csr`),
    ]);
    writeFileSync(file(`${name}.ext`), extensions);
    await exec([
      "x509",
      "-req",
      "-in",
      file(`${name}.csr`),
      "-CA",
      file("ca.pem"),
      "-CAkey",
      file("ca-key.pem"),
      "-CAcreateserial",
      "-days",
      days,
      "-sha256",
      "-extfile",
      file(`${name}.ext`),
      "-out",
      file(`${name}.pem`),
    ]);
  };
  try {
    await key("ca-key.pem");
    await exec([
      "req",
      "-x509",
      "-new",
      "-key",
      file("ca-key.pem"),
      "-subj",
      "/CN=sluice-test-ca",
      "-days",
      days,
      "-sha256",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-out",
      file("ca.pem"),
    ]);
    await signed(
      "server",
      "/CN=localhost",
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n",
    );
    await signed(
      "client",
      "/CN=sluice-client",
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let disposed = false;
  const dispose = async (): Promise<void> => {
    if (disposed) return;
    disposed = true;
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    dir,
    caFile: file("ca.pem"),
    serverCertFile: file("server.pem"),
    serverKeyFile: file("server-key.pem"),
    clientCertFile: file("client.pem"),
    clientKeyFile: file("client-key.pem"),
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}
