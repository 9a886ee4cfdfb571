import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type EtcdServer, type NatsServer, startEtcd, startNats } from "@sluice/testkit";
import { StackChild } from "./child.js";
import { InstanceDiscovery, type InstanceRecord } from "./discovery.js";
import { emptyState, type StackState } from "./state.js";
import type { UpConfig } from "./up-command.js";

/** How long a started process gets to drain after SIGTERM before it is killed. */
const CHILD_STOP_TIMEOUT_MS = 15_000;
const CHILD_FORCE_STOP_TIMEOUT_MS = 1_000;

/**
 * The processes of one `sluice up`: local NATS and etcd when none were given, then every Sluice
 * process, each discovered through its own etcd registration (the same mechanism the processes
 * use to find each other), so "up" means registered, not merely spawned.
 */
export class LocalStack {
  private nats: NatsServer | undefined;
  private etcd: EtcdServer | undefined;
  private discovery: InstanceDiscovery | undefined;
  private readonly children: StackChild[] = [];
  private readonly config: UpConfig;
  private readonly dataDir: string;
  private readonly say: (line: string) => void;

  constructor(config: UpConfig, dataDir: string, say: (line: string) => void) {
    this.config = config;
    this.dataDir = dataDir;
    this.say = say;
  }

  async start(signal: AbortSignal): Promise<StackState> {
    const c = this.config;
    let natsUrl = c.natsUrl;
    if (natsUrl === "") {
      this.say("starting nats-server (JetStream on) ...");
      this.nats = await startNats({ dataDir: this.subdir("nats"), allowExternal: false });
      natsUrl = this.nats.url;
    }
    let etcdEndpoints = [...c.etcdEndpoints];
    if (etcdEndpoints.length === 0) {
      this.say("starting etcd ...");
      this.etcd = await startEtcd({ dataDir: this.subdir("etcd"), allowExternal: false });
      etcdEndpoints = [...this.etcd.endpoints];
    }
    const state = emptyState(natsUrl, etcdEndpoints.join(","));
    this.discovery = await InstanceDiscovery.open(etcdEndpoints);

    const common = [
      "--nats-url",
      natsUrl,
      "--etcd-endpoints",
      etcdEndpoints.join(","),
      "--namespace",
      c.namespace,
      "--lease-ttl",
      `${c.leaseTtlMs}ms`,
      "--log-level",
      c.logLevel,
    ];
    // Wave 1: what nothing else needs in order to start. Engines behind a sidecar neither register
    // themselves nor publish load: the sidecar does both for the worker, under the same worker id
    // (so the engine's KV events and the sidecar's registration name one worker).
    const sidecars = c.engineSchedulers;
    const wave1: Promise<InstanceRecord>[] = [];
    for (let i = 0; i < c.engines; i++) {
      const id = `engine-${i}`;
      wave1.push(
        this.launch("mock-engine", id, [
          ...common,
          "--id",
          id,
          "--worker-id",
          id,
          "--port",
          "0",
          "--model",
          c.model,
          "--speedup",
          String(c.speedup),
          ...(sidecars ? ["--register-engine=false", "--publish-load=false"] : []),
        ]),
      );
    }
    for (let i = 0; i < c.aggregators; i++) {
      wave1.push(this.launch("aggregator", `aggregator-${i}`, [...common, "--id", `aggregator-${i}`]));
    }
    for (let i = 0; i < c.routers; i++) {
      wave1.push(
        this.launch("router", `router-${i}`, [...common, "--id", `router-${i}`, "--grpc-port", "0"]),
      );
    }
    this.announce(wave1.length);
    const records = await abortable(Promise.all(wave1), signal);
    const engines = records.filter((r) => r.role === "mock-engine");

    // Wave 2: one engine-scheduler per engine, pointed at that engine's URL.
    const wave2 = sidecars
      ? engines.map((engine) =>
          this.launch("engine-scheduler", `scheduler-${engine.id}`, [
            ...common,
            "--id",
            `scheduler-${engine.id}`,
            "--worker-id",
            engine.id,
            "--engine-url",
            engine.url,
            "--model",
            c.model,
            "--port",
            "0",
          ]),
        )
      : [];
    this.announce(wave2.length);
    const schedulers = await abortable(Promise.all(wave2), signal);

    // Wave 3: the front doors, once there are engines (and sidecars) for them to find.
    const wave3: Promise<InstanceRecord>[] = [];
    for (let i = 0; i < c.ingresses; i++) {
      wave3.push(this.launch("ingress", `ingress-${i}`, [...common, "--id", `ingress-${i}`, "--port", "0"]));
    }
    this.announce(wave3.length);
    const ingresses = await abortable(Promise.all(wave3), signal);
    for (const r of ingresses) state.ingress.push({ id: r.id, url: r.url, metrics: r.metrics });

    for (const r of records) {
      if (r.role === "mock-engine") state.engine.push({ id: r.id, url: r.url, metrics: r.metrics });
      if (r.role === "aggregator") state.aggregator.push({ id: r.id, metrics: r.metrics });
      if (r.role === "router") state.router.push({ id: r.id, grpc: r.url, metrics: r.metrics });
    }
    for (const [i, r] of schedulers.entries()) {
      const workerId = engines[i]?.id ?? "";
      state.engine_scheduler.push({ id: r.id, url: r.url, metrics: r.metrics, worker_id: workerId });
    }
    return state;
  }

  private announce(count: number): void {
    if (count > 0) this.say(`starting ${count} process(es) and waiting for their etcd registrations ...`);
  }

  private launch(role: string, id: string, args: string[]): Promise<InstanceRecord> {
    const discovery = this.discovery;
    if (discovery === undefined) throw new Error("discovery is not open");
    let rejectEarlyExit: (err: Error) => void = () => {};
    const earlyExit = new Promise<never>((_, reject) => {
      rejectEarlyExit = reject;
    });
    // After the registration is seen a later exit is only reported (by the callback), not thrown.
    earlyExit.catch(() => {});
    const logFile = join(this.dataDir, "logs", `${role}-${id}.log`);
    const child = new StackChild({ role, id, args, logFile }, (c, why) => {
      const msg = `${c.spec.role} ${c.spec.id} ${why}; its log: ${c.spec.logFile}`;
      this.say(msg);
      rejectEarlyExit(new Error(msg));
    });
    this.children.push(child);
    return Promise.race([discovery.waitFor(role, id, this.config.startTimeoutMs), earlyExit]);
  }

  /** Stops everything started, newest first; `force()` turns true on a second Ctrl-C. */
  async stop(force: () => boolean): Promise<void> {
    const timeout = () => (force() ? CHILD_FORCE_STOP_TIMEOUT_MS : CHILD_STOP_TIMEOUT_MS);
    await Promise.allSettled(this.children.map((c) => c.stop(timeout())));
    await this.discovery?.close();
    // etcd after the processes, so they can revoke their leases on the way out.
    await this.etcd?.dispose();
    await this.nats?.dispose();
  }

  private subdir(name: string): string {
    const dir = join(this.dataDir, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error("aborted"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    void p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
