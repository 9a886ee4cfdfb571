// Where policies live in etcd: `{prefix}/policies/{model or _default}` (enforcing) and
// `{prefix}/policies/_shadow/{model or _default}` (a candidate evaluated beside it, never enforced).
// The shadow keys sit under the policies prefix so one watch sees both.

import { DEFAULT_KEY_PREFIX, keySegment, sluiceKeys } from "./keys.js";

/** Segment below `policies/` that holds shadow candidates; not a valid model name for a policy. */
export const SHADOW_POLICY_SEGMENT = "_shadow";

export type PolicyKind = "enforcing" | "shadow";

export interface PolicyKeyRef {
  readonly kind: PolicyKind;
  /** A model, or `_default`. */
  readonly model: string;
}

export interface PolicyKeys {
  /** `{prefix}/policies/`: watch this to see enforcing and shadow policies. */
  readonly policies: string;
  /** `{prefix}/policies/{model}` */
  enforcing(model: string): string;
  /** `{prefix}/policies/_shadow/{model}` */
  shadow(model: string): string;
  key(ref: PolicyKeyRef): string;
  /** The policy a key holds, or undefined for keys that are not policies (e.g. deeper paths). */
  parse(key: string): PolicyKeyRef | undefined;
}

export function policyKeys(prefix: string = DEFAULT_KEY_PREFIX): PolicyKeys {
  const keys = sluiceKeys(prefix);
  const policies = keys.policies;
  const shadowDir = `${policies}${SHADOW_POLICY_SEGMENT}/`;
  const enforcing = (model: string): string => {
    if (model === SHADOW_POLICY_SEGMENT) {
      throw new RangeError(
        `"${SHADOW_POLICY_SEGMENT}" is reserved for shadow policies and cannot be a model name`,
      );
    }
    return keys.policy(model);
  };
  const shadow = (model: string): string => `${shadowDir}${keySegment(model, "model")}`;
  return {
    policies,
    enforcing,
    shadow,
    key: (ref) => (ref.kind === "shadow" ? shadow(ref.model) : enforcing(ref.model)),
    parse: (key) => {
      if (!key.startsWith(policies)) return undefined;
      const rest = key.slice(policies.length);
      if (rest.startsWith(shadowDir.slice(policies.length))) {
        const model = rest.slice(shadowDir.length - policies.length);
        return isSegment(model) ? { kind: "shadow", model } : undefined;
      }
      return isSegment(rest) && rest !== SHADOW_POLICY_SEGMENT
        ? { kind: "enforcing", model: rest }
        : undefined;
    },
  };
}

function isSegment(s: string): boolean {
  return s.length > 0 && !s.includes("/") && !/\s/.test(s);
}
