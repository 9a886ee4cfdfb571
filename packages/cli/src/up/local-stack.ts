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
    const waits: Promise<InstanceRecord>[] = [];
    for (let i = 0; i < c.engines; i++) {
      const id = `engine-${i}`;
      waits.push(
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
        ]),
      );
    }
    if (waits.length > 0)
      this.say(`starting ${waits.length} process(es) and waiting for their etcd registrations ...`);
    const records = await abortable(Promise.all(waits), signal);
    for (const r of records) {
      if (r.role === "mock-engine") state.engine.push({ id: r.id, url: r.url, metrics: r.metrics });
    }
    return state;
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
