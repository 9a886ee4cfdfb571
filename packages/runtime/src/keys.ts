// etcd key layout of DESIGN §3. Builders validate segments so a stray "/" in an id cannot make
// one key a prefix of another's subtree.

export const DEFAULT_KEY_PREFIX = "/sluice/v1";

/** A key segment (role, id, model, election name) that would change the key's shape. */
export class KeySegmentError extends Error {
  override readonly name = "KeySegmentError";
}

/** Returns `segment` if usable as one key segment, else throws {@link KeySegmentError}. */
export function keySegment(segment: string, what: string): string {
  if (segment.length === 0 || segment.includes("/") || /\s/.test(segment)) {
    throw new KeySegmentError(
      `${what} ${JSON.stringify(segment)} cannot be an etcd key segment: it must be non-empty and contain no "/" or whitespace`,
    );
  }
  return segment;
}

/** Normalises a prefix to start with "/" and have no trailing "/". */
export function normalizeKeyPrefix(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, "");
  if (trimmed.length === 0) throw new KeySegmentError(`key prefix ${JSON.stringify(prefix)} is empty`);
  return trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
}

export interface SluiceKeys {
  readonly prefix: string;
  /** `{prefix}/instances/{role}/{id}` */
  instance(role: string, id: string): string;
  /** `{prefix}/instances/` or `{prefix}/instances/{role}/`, for watching. */
  instances(role?: string): string;
  /** `{prefix}/engines/{workerId}` */
  engine(workerId: string): string;
  readonly engines: string;
  /** `{prefix}/policies/{model}`; `_default` for the fallback policy. */
  policy(model: string): string;
  readonly policies: string;
  /** `{prefix}/elections/{name}` (candidates live below it). */
  election(name: string): string;
}

export const DEFAULT_POLICY_KEY = "_default";

export function sluiceKeys(prefix: string = DEFAULT_KEY_PREFIX): SluiceKeys {
  const p = normalizeKeyPrefix(prefix);
  return {
    prefix: p,
    instance: (role, id) => `${p}/instances/${keySegment(role, "role")}/${keySegment(id, "instance id")}`,
    instances: (role) =>
      role === undefined ? `${p}/instances/` : `${p}/instances/${keySegment(role, "role")}/`,
    engine: (workerId) => `${p}/engines/${keySegment(workerId, "worker id")}`,
    engines: `${p}/engines/`,
    policy: (model) => `${p}/policies/${keySegment(model, "model")}`,
    policies: `${p}/policies/`,
    election: (name) => `${p}/elections/${keySegment(name, "election name")}`,
  };
}
