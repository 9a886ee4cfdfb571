import assert from "node:assert/strict";
import { request } from "node:http";
import { describe, it } from "node:test";
import { startAdminServer } from "./admin-server.js";
import { AdminServerError } from "./errors.js";
import { createMetricsRegistry } from "./metrics.js";
import { createReadiness } from "./readiness.js";

function get(url: string, method = "GET"): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

async function withServer(fn: (url: string, readiness: ReturnType<typeof createReadiness>) => Promise<void>) {
  const registry = createMetricsRegistry({ role: "test", version: "9.9.9", collectDefaultMetrics: false });
  const readiness = createReadiness(200);
  const admin = await startAdminServer({ host: "127.0.0.1", port: 0, registry, readiness });
  try {
    assert.ok(admin.address.port > 0);
    assert.equal(admin.url, `http://127.0.0.1:${admin.address.port}`);
    await fn(admin.url, readiness);
  } finally {
    await admin.close();
  }
}

describe("admin server", () => {
  it("serves /metrics, /healthz and 404 over real HTTP", async () => {
    await withServer(async (url) => {
      const metrics = await get(`${url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.type, /^text\/plain/);
      assert.match(metrics.body, /sluice_build_info\{version="9\.9\.9"/);
      assert.deepEqual(await get(`${url}/healthz`), {
        status: 200,
        type: "text/plain; charset=utf-8",
        body: "ok\n",
      });
      assert.equal((await get(`${url}/nope`)).status, 404);
      assert.equal((await get(`${url}/healthz`, "POST")).status, 405);
      const head = await get(`${url}/healthz`, "HEAD");
      assert.equal(head.status, 200);
      assert.equal(head.body, "");
    });
  });

  it("flips /readyz with its checks and names the failing ones", async () => {
    await withServer(async (url, readiness) => {
      assert.equal((await get(`${url}/readyz`)).status, 200, "no checks: ready");
      let natsConnected = false;
      readiness.register("nats", () => natsConnected);
      const unregisterLease = readiness.register("etcd-lease", async () => ({
        ready: false,
        detail: "lease lost",
      }));
      const notReady = await get(`${url}/readyz`);
      assert.equal(notReady.status, 503);
      assert.deepEqual(JSON.parse(notReady.body), {
        ready: false,
        failing: [{ name: "nats" }, { name: "etcd-lease", detail: "lease lost" }],
        passing: [],
      });
      natsConnected = true;
      unregisterLease();
      const ready = await get(`${url}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(JSON.parse(ready.body), { ready: true, failing: [], passing: ["nats"] });
    });
  });

  it("counts a throwing or hanging check as failing", async () => {
    await withServer(async (url, readiness) => {
      readiness.register("throws", () => {
        throw new Error("boom");
      });
      readiness.register("hangs", () => new Promise<boolean>(() => {}));
      const r = await get(`${url}/readyz`);
      assert.equal(r.status, 503);
      const body = JSON.parse(r.body) as { failing: { name: string; detail: string }[] };
      assert.deepEqual(
        body.failing.map((f) => f.name),
        ["throws", "hangs"],
      );
      assert.match(body.failing[0]?.detail ?? "", /boom/);
      assert.match(body.failing[1]?.detail ?? "", /did not answer within 200ms/);
    });
  });

  it("reports a port in use as AdminServerError", async () => {
    await withServer(async (url) => {
      const port = Number(new URL(url).port);
      const registry = createMetricsRegistry({ role: "t", version: "v", collectDefaultMetrics: false });
      await assert.rejects(
        startAdminServer({ host: "127.0.0.1", port, registry, readiness: createReadiness() }),
        (err: unknown) => err instanceof AdminServerError && err.message.includes(`127.0.0.1:${port}`),
      );
    });
  });

  it("requires the bearer token for /metrics and unknown paths, not for the probes", async () => {
    const registry = createMetricsRegistry({ role: "test", version: "1", collectDefaultMetrics: false });
    const admin = await startAdminServer({
      host: "127.0.0.1",
      port: 0,
      registry,
      readiness: createReadiness(200),
      bearerToken: "tok-1",
    });
    const withAuth = (path: string, authorization?: string) =>
      fetch(`${admin.url}${path}`, authorization === undefined ? {} : { headers: { authorization } }).then(
        async (r) => ({ status: r.status, body: await r.text() }),
      );
    try {
      assert.equal((await withAuth("/metrics")).status, 401);
      assert.equal((await withAuth("/metrics", "Bearer tok-2")).status, 401);
      assert.equal((await withAuth("/metrics", "Basic tok-1")).status, 401);
      assert.equal((await withAuth("/nope")).status, 401);
      assert.equal((await withAuth("/metrics", "Bearer tok-1")).status, 200);
      assert.equal((await withAuth("/metrics", "bearer  tok-1")).status, 200);
      assert.equal((await withAuth("/nope", "Bearer tok-1")).status, 404);
      assert.equal((await withAuth("/healthz")).status, 200);
      assert.equal((await withAuth("/readyz")).status, 200);
    } finally {
      await admin.close();
    }
    await assert.rejects(
      startAdminServer({
        host: "127.0.0.1",
        port: 0,
        registry,
        readiness: createReadiness(),
        bearerToken: " ",
      }),
      AdminServerError,
    );
  });
});
