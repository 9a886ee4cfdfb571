import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadConfig } from "./config.js";
import { commonSchema } from "./config-common.js";
import { renderHelp, renderMarkdown } from "./config-help.js";
import { adminTokenFromConfig, etcdSecurityFromConfig, natsSecurityFromConfig } from "./config-security.js";
import { ConfigError } from "./errors.js";

const dir = mkdtempSync(join(tmpdir(), "sluice-config-security-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function values(argv: string[], env: Record<string, string> = {}) {
  const loaded = loadConfig(commonSchema, { argv, env });
  assert.equal(loaded.kind, "config");
  if (loaded.kind !== "config") throw new Error("unreachable");
  return loaded.values;
}

describe("security settings", () => {
  it("builds each NATS auth method from its settings", () => {
    const pw = file("pw", "secret\n");
    assert.deepEqual(natsSecurityFromConfig(values(["--nats-user=u", `--nats-password-file=${pw}`])), {
      auth: { kind: "user-password", user: "u", password: { file: pw } },
    });
    assert.deepEqual(natsSecurityFromConfig(values([], { SLUICE_NATS_TOKEN: "t" })), {
      auth: { kind: "token", token: { value: "t" } },
    });
    const seed = file("seed", "SUAAAA\n");
    assert.equal(natsSecurityFromConfig(values([`--nats-nkey-seed-file=${seed}`])).auth?.kind, "nkey");
    const creds = file("creds", "creds");
    assert.equal(natsSecurityFromConfig(values([`--nats-creds=${creds}`])).auth?.kind, "creds");
    assert.deepEqual(natsSecurityFromConfig(values([])), {});
    assert.deepEqual(natsSecurityFromConfig(values(["--nats-tls-ca=/ca.pem"])), {
      tls: { caFile: "/ca.pem" },
    });
  });

  it("refuses contradictory or incomplete NATS settings with a ConfigError naming them", () => {
    const creds = file("creds2", "creds");
    const cases: [string[], Record<string, string>, RegExp][] = [
      [["--nats-user=u"], {}, /--nats-user u needs a password/],
      [[], { SLUICE_NATS_PASSWORD: "p" }, /password is set but --nats-user is not/],
      [[`--nats-creds=${creds}`], { SLUICE_NATS_TOKEN: "t" }, /choose one NATS auth method/],
      [
        [`--nats-token-file=${creds}`],
        { SLUICE_NATS_TOKEN: "t" },
        /either nats-token \(inline\) or --nats-token-file/,
      ],
      [["--nats-tls-cert=/c.pem"], {}, /--nats-tls-cert and --nats-tls-key must be given together/],
      [["--nats-token-file=/does/not/exist"], {}, /cannot read NATS token file \/does\/not\/exist: ENOENT/],
      [[`--nats-token-file=${file("empty", "\n")}`], {}, /is empty/],
    ];
    for (const [argv, env, message] of cases) {
      assert.throws(
        () => natsSecurityFromConfig(values(argv, env)),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });

  it("builds and checks etcd security", () => {
    const pw = file("etcd-pw", "pw\n");
    const ca = file("ca.pem", "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n");
    const security = etcdSecurityFromConfig(
      values([
        "--etcd-user=u",
        `--etcd-password-file=${pw}`,
        `--etcd-tls-ca=${ca}`,
        "--etcd-endpoints=https://e:2379",
      ]),
    );
    assert.deepEqual(security, { auth: { user: "u", password: { file: pw } }, tls: { caFile: ca } });
    const cases: [string[], RegExp][] = [
      [["--etcd-user=u"], /--etcd-user u needs a password/],
      [[`--etcd-tls-ca=${ca}`], /not https:\/\/: http:\/\/127\.0\.0\.1:2379/],
      [["--etcd-tls-cert=/c", "--etcd-tls-key=/k", "--etcd-endpoints=https://e"], /needs --etcd-tls-ca/],
      [[`--etcd-tls-ca=${pw}`, "--etcd-endpoints=https://e"], /etcd TLS CA file .* is not PEM/],
    ];
    for (const [argv, message] of cases) {
      assert.throws(() => etcdSecurityFromConfig(values(argv)), message);
    }
  });

  it("reads the admin token from a file or the env, never a flag", () => {
    assert.equal(adminTokenFromConfig(values([`--admin-token-file=${file("tok", "abc\n")}`])), "abc");
    assert.equal(adminTokenFromConfig(values([], { SLUICE_ADMIN_TOKEN: "xyz" })), "xyz");
    assert.equal(adminTokenFromConfig(values([])), undefined);
    assert.throws(
      () => loadConfig(commonSchema, { argv: ["--admin-token=abc"], env: {} }),
      /--admin-token is not accepted on the command line.*SLUICE_ADMIN_TOKEN or pass --admin-token-file/,
    );
  });

  it("shows inline secrets in help and docs as env-only, never with a value", () => {
    const help = renderHelp(commonSchema, { command: "sluice x" });
    assert.match(help, /SLUICE_NATS_PASSWORD \(env or config file only\)/);
    assert.doesNotMatch(help, /--nats-password </);
    assert.match(renderMarkdown(commonSchema), /\| \(none: env or file only\) \| `SLUICE_ETCD_PASSWORD` \|/);
  });
});
