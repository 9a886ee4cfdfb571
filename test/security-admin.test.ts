// Admin endpoints (issue 9 §4): with --admin-token-file, /metrics (and any admin path but the probes)
// answers 401 without the bearer token or with a wrong one and 200 with it; /healthz and /readyz stay
// open for kubelet probes. Through a whole process (`sluice mock-engine`), as an operator configures it.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { launchMockEngine } from "@sluice/mock-engine";

const TOKEN = "admin-token-5d1e9";

async function status(url: string, token?: string): Promise<{ status: number; auth: string | null }> {
  const res = await fetch(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  await res.text();
  return { status: res.status, auth: res.headers.get("www-authenticate") };
}

describe("admin endpoints with a bearer token", () => {
  it("protects /metrics, leaves the probes open, and refuses the token as a flag", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-sec-admin-"));
    const tokenFile = join(dir, "admin-token");
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    // NATS and etcd are not needed: the engine serves at once and retries them in the background.
    const base = [
      "--port=0",
      "--admin-port=0",
      "--log-level=silent",
      "--nats-url=nats://127.0.0.1:1",
      "--etcd-endpoints=http://127.0.0.1:1",
    ];
    try {
      let stderr = "";
      const refused = await launchMockEngine({
        argv: [...base, `--admin-token=${TOKEN}`],
        env: {},
        stderr: { write: (s: string) => (stderr += s) },
      });
      assert.equal(refused, 2);
      assert.match(stderr, /SLUICE_ADMIN_TOKEN or pass --admin-token-file/);

      const launched = await launchMockEngine({
        argv: [...base, `--admin-token-file=${tokenFile}`],
        env: {},
      });
      assert.ok(typeof launched !== "number", `the engine started (exit ${String(launched)})`);
      try {
        const metrics = `${launched.adminUrl}/metrics`;
        const missing = await status(metrics);
        assert.equal(missing.status, 401);
        assert.match(missing.auth ?? "", /^Bearer/);
        assert.equal((await status(metrics, "wrong-token")).status, 401);
        assert.equal((await status(`${launched.adminUrl}/unknown`)).status, 401, "no path probing");
        assert.equal((await status(metrics, TOKEN)).status, 200);
        assert.equal((await status(`${launched.adminUrl}/healthz`)).status, 200);
        const ready = await status(`${launched.adminUrl}/readyz`);
        assert.ok(
          ready.status === 200 || ready.status === 503,
          `readyz answers without a token (${ready.status})`,
        );
      } finally {
        await launched.stop();
      }

      // Without the setting the endpoints are open, as before.
      const open = await launchMockEngine({ argv: base, env: {} });
      assert.ok(typeof open !== "number");
      try {
        assert.equal((await status(`${open.adminUrl}/metrics`)).status, 200);
      } finally {
        await open.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
