import { Etcd3 } from "etcd3";

/** What a process registered at `/sluice/v1/instances/{role}/{id}`, reduced to what `up` reports. */
export interface InstanceRecord {
  readonly role: string;
  readonly id: string;
  /** Main endpoint: the HTTP API, or `grpc://…` for gRPC-only roles; "" when the role has none. */
  readonly url: string;
  /** Full URL of its Prometheus `/metrics`. */
  readonly metrics: string;
  readonly addresses: Readonly<Record<string, string>>;
}

const POLL_MS = 200;

/**
 * Finds the processes `sluice up` started through their own etcd registrations — the same
 * records every Sluice process uses to find its peers — so "started" means "registered and
 * reachable", not merely "spawned". Polling is enough here: it runs once per process at start-up.
 */
export class InstanceDiscovery {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private closed = false;

  private constructor(client: Etcd3, prefix: string) {
    this.client = client;
    this.prefix = prefix;
  }

  static async open(endpoints: readonly string[], prefix = "/sluice/v1"): Promise<InstanceDiscovery> {
    const client = new Etcd3({ hosts: [...endpoints], dialTimeout: 5_000 });
    return new InstanceDiscovery(client, prefix);
  }

  async waitFor(role: string, id: string, timeoutMs: number): Promise<InstanceRecord> {
    const key = `${this.prefix}/instances/${role}/${id}`;
    const deadline = Date.now() + timeoutMs;
    let lastError = "";
    while (!this.closed) {
      try {
        const raw = await this.client.get(key).string();
        if (raw !== null) return toRecord(role, id, raw);
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `${role} ${id} did not register at ${key} within ${timeoutMs} ms${lastError ? ` (etcd: ${lastError})` : ""}`,
        );
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    throw new Error("discovery closed");
  }

  async close(): Promise<void> {
    this.closed = true;
    this.client.close();
  }
}

function toRecord(role: string, id: string, raw: string): InstanceRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error(`registration of ${role} ${id} is not JSON: ${raw.slice(0, 200)}`);
  }
  const addresses: Record<string, string> = {};
  const given = (parsed as { addresses?: unknown }).addresses;
  if (typeof given === "object" && given !== null) {
    for (const [k, v] of Object.entries(given)) if (typeof v === "string") addresses[k] = v;
  }
  const url = addresses.http ?? (addresses.grpc !== undefined ? `grpc://${addresses.grpc}` : "");
  const admin = addresses.admin ?? "";
  return { role, id, url, metrics: admin === "" ? "" : `${admin.replace(/\/$/, "")}/metrics`, addresses };
}
