import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { SecretFileError } from "./errors.js";
import { checkNatsAuth, describeNatsAuth, natsAuthenticator } from "./nats-auth.js";

const dir = mkdtempSync(join(tmpdir(), "sluice-nats-auth-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("NATS auth", () => {
  it("re-reads a secret file at every connect, so a rotated secret is used without a restart", () => {
    const file = join(dir, "token");
    writeFileSync(file, "first\n");
    const authenticate = natsAuthenticator({ kind: "token", token: { file } });
    assert.deepEqual(authenticate(undefined), { auth_token: "first" });
    writeFileSync(file, "second\n");
    assert.deepEqual(authenticate(undefined), { auth_token: "second" });
    const password = natsAuthenticator({ kind: "user-password", user: "u", password: { value: "p" } });
    assert.deepEqual(password(undefined), { user: "u", pass: "p" });
  });

  it("reports a missing secret file by name, without content, at start-up", () => {
    assert.throws(
      () => checkNatsAuth({ kind: "creds", creds: { file: join(dir, "missing.creds") } }),
      (err: unknown) =>
        err instanceof SecretFileError &&
        /cannot read NATS creds file .*missing\.creds: ENOENT/.test(err.message),
    );
  });

  it("describes the method without any secret", () => {
    assert.equal(describeNatsAuth(undefined), "none");
    assert.equal(
      describeNatsAuth({ kind: "user-password", user: "engine", password: { value: "hunter2" } }),
      "user-password (user engine)",
    );
    assert.equal(describeNatsAuth({ kind: "nkey", seed: { value: "SU..." } }), "nkey");
  });
});
