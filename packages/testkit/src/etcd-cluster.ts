import "./dispose.js";
import { ServerStartError } from "./errors.js";
import { type EtcdServer, startEtcd } from "./etcd-server.js";
import { DEFAULT_HOST, type ServerLaunchOptions } from "./managed-server.js";
import { freePort } from "./ports.js";

export interface EtcdClusterOptions
  extends Pick<ServerLaunchOptions, "host" | "binary" | "env" | "readyTimeoutMs" | "stopTimeoutMs"> {
  /** Number of members. Default 3 (the smallest cluster that survives losing one). */
  readonly members?: number;
  /**
   * Raft heartbeat. Default 100 ms: longer than a single test member's, so a busy 2-core machine
   * does not trigger spurious elections among members starved of CPU.
   */
  readonly heartbeatIntervalMs?: number;
  /** Raft election timeout. Default 1000 ms (≥ 5 × heartbeat per etcd's own check). */
  readonly electionTimeoutMs?: number;
}

export interface EtcdCluster extends AsyncDisposable {
  /** Every member, each with its own lifecycle (kill one to lose a member, start() to rejoin it). */
  readonly members: readonly EtcdServer[];
  /** Client URLs of every member, ready for `new Etcd3({ hosts })` or `--etcd-endpoints`. */
  readonly endpoints: readonly string[];
  /** Index in `members` of the current raft leader, asked of the running members; undefined if none answers. */
  leaderIndex(): Promise<number | undefined>;
  /** Stops every member and removes their temp dirs. Idempotent. */
  dispose(): Promise<void>;
}

export const DEFAULT_ETCD_CLUSTER_MEMBERS = 3;
export const DEFAULT_ETCD_CLUSTER_HEARTBEAT_INTERVAL_MS = 100;
export const DEFAULT_ETCD_CLUSTER_ELECTION_TIMEOUT_MS = 1_000;
const START_ATTEMPTS = 3;
const STATUS_TIMEOUT_MS = 1_000;

interface MemberPorts {
  readonly clientPort: number;
  readonly peerPort: number;
}

/**
 * Starts a real multi-member etcd cluster on free ports (each member in its own temp dir) and
 * resolves once every member reports a leader. Never uses an external server: the point is to
 * stop members. Built on `startEtcd`: the cluster flags are appended and override its
 * single-member ones (etcd takes the last value of a repeated flag).
 */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const count = options.members ?? DEFAULT_ETCD_CLUSTER_MEMBERS;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`members must be an integer >= 1, got ${count}`);
  }
  const host = options.host ?? DEFAULT_HOST;
  const heartbeat = options.heartbeatIntervalMs ?? DEFAULT_ETCD_CLUSTER_HEARTBEAT_INTERVAL_MS;
  const election = options.electionTimeoutMs ?? DEFAULT_ETCD_CLUSTER_ELECTION_TIMEOUT_MS;

  for (let attempt = 1; ; attempt++) {
    // Every member must know every peer URL before any starts, so ports are picked up front; a port
    // taken in between fails the start, and the whole cluster is tried again on fresh ports.
    const ports: MemberPorts[] = [];
    for (let i = 0; i < count; i++) {
      ports.push({ clientPort: await freePort(host), peerPort: await freePort(host) });
    }
    const token = `sluice-test-${process.pid}-${Date.now()}`;
    const initialCluster = ports.map((p, i) => `m${i}=http://${host}:${p.peerPort}`).join(",");
    const started = await Promise.allSettled(
      ports.map((p, i) =>
        startEtcd({
          host,
          ...(options.binary !== undefined ? { binary: options.binary } : {}),
          ...(options.env !== undefined ? { env: options.env } : {}),
          ...(options.readyTimeoutMs !== undefined ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
          ...(options.stopTimeoutMs !== undefined ? { stopTimeoutMs: options.stopTimeoutMs } : {}),
          allowExternal: false,
          clientPort: p.clientPort,
          peerPort: p.peerPort,
          heartbeatIntervalMs: heartbeat,
          electionTimeoutMs: election,
          extraArgs: [
            "--name",
            `m${i}`,
            "--initial-cluster",
            initialCluster,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            token,
          ],
        }),
      ),
    );
    const members = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const failure = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure === undefined) return clusterHandle(members);
    await Promise.allSettled(members.map((m) => m.dispose()));
    const clash =
      failure.reason instanceof ServerStartError && /address already in use/i.test(failure.reason.logTail);
    if (!clash || attempt >= START_ATTEMPTS) throw failure.reason;
  }
}

function clusterHandle(members: readonly EtcdServer[]): EtcdCluster {
  let disposed: Promise<void> | undefined;
  const dispose = (): Promise<void> => {
    disposed ??= Promise.allSettled(members.map((m) => m.dispose())).then(() => undefined);
    return disposed;
  };
  return {
    members,
    endpoints: members.map((m) => m.clientUrl),
    leaderIndex: async () => {
      for (const member of members) {
        if (!member.running) continue;
        const status = await memberStatus(member.clientUrl);
        if (status === undefined) continue;
        for (const [i, candidate] of members.entries()) {
          if (!candidate.running) continue;
          const own = await memberStatus(candidate.clientUrl);
          if (own !== undefined && own.memberId === status.leader) return i;
        }
      }
      return undefined;
    },
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}

/** Member id and leader id from etcd's JSON gateway; undefined when the member does not answer. */
async function memberStatus(clientUrl: string): Promise<{ memberId: string; leader: string } | undefined> {
  try {
    const res = await fetch(`${clientUrl}/v3/maintenance/status`, {
      method: "POST",
      body: "{}",
      signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
    });
    if (res.status !== 200) return undefined;
    const body = (await res.json()) as { header?: { member_id?: string }; leader?: string };
    const memberId = body.header?.member_id;
    const leader = body.leader;
    return memberId !== undefined && leader !== undefined && leader !== "0"
      ? { memberId, leader }
      : undefined;
  } catch {
    return undefined;
  }
}
