// NATS subject names of DESIGN §3, in one place so publishers and subscribers cannot drift apart.

export const SUBJECT_ROOT = "sluice.v1";
export const DEFAULT_NAMESPACE = "default";

/** A subject token (namespace, worker id, level, outcome) that would change the subject's shape. */
export class SubjectTokenError extends Error {
  override readonly name = "SubjectTokenError";
}

// NATS splits on "." and treats "*" / ">" as wildcards; whitespace is not allowed in subjects.
const FORBIDDEN = /[.*>\s]/;

/** Returns `token` if it is usable as one subject token, else throws {@link SubjectTokenError}. */
export function subjectToken(token: string, what: string): string {
  if (token.length === 0 || FORBIDDEN.test(token)) {
    throw new SubjectTokenError(
      `${what} ${JSON.stringify(token)} cannot be a NATS subject token: it must be non-empty and contain no ".", "*", ">" or whitespace`,
    );
  }
  return token;
}

export interface Subjects {
  /** `sluice.v1.{namespace}` */
  readonly prefix: string;
  /** Everything in the namespace: `….>` */
  readonly all: string;
  /** Observed load snapshots of one engine. */
  engineLoad(workerId: string): string;
  /** KV cache events of one engine. */
  engineKv(workerId: string): string;
  /** Load snapshots of every engine: `….engine.*.load` */
  readonly allEngineLoad: string;
  /** KV events of every engine: `….engine.*.kv` */
  readonly allEngineKv: string;
  readonly ingressState: string;
  readonly routerSync: string;
  readonly clusterLoad: string;
  /** Decision events of one level and outcome. */
  events(level: string, outcome: string): string;
  /** Subscription filter over decision events; omitted parts match any token. */
  eventsFilter(filter?: { level?: string; outcome?: string }): string;
}

/** Subject builders for `namespace` (validated once here, so builders never produce a bad subject). */
export function subjects(namespace: string = DEFAULT_NAMESPACE): Subjects {
  const prefix = `${SUBJECT_ROOT}.${subjectToken(namespace, "namespace")}`;
  return {
    prefix,
    all: `${prefix}.>`,
    engineLoad: (workerId) => `${prefix}.engine.${subjectToken(workerId, "worker id")}.load`,
    engineKv: (workerId) => `${prefix}.engine.${subjectToken(workerId, "worker id")}.kv`,
    allEngineLoad: `${prefix}.engine.*.load`,
    allEngineKv: `${prefix}.engine.*.kv`,
    ingressState: `${prefix}.ingress.state`,
    routerSync: `${prefix}.router.sync`,
    clusterLoad: `${prefix}.cluster.load`,
    events: (level, outcome) =>
      `${prefix}.events.${subjectToken(level, "event level")}.${subjectToken(outcome, "event outcome")}`,
    eventsFilter: (filter = {}) =>
      `${prefix}.events.${filter.level === undefined ? "*" : subjectToken(filter.level, "event level")}.${
        filter.outcome === undefined ? "*" : subjectToken(filter.outcome, "event outcome")
      }`,
  };
}

/** The worker id in an `….engine.{worker}.{load|kv}` subject, or undefined for any other subject. */
export function workerIdOfSubject(subject: string, s: Subjects): string | undefined {
  const head = `${s.prefix}.engine.`;
  if (!subject.startsWith(head)) return undefined;
  const parts = subject.slice(head.length).split(".");
  return parts.length === 2 && (parts[1] === "load" || parts[1] === "kv") ? parts[0] : undefined;
}
