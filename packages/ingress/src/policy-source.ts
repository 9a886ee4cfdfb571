// Policies from etcd (`{prefix}/policies/{model or _default}`, proto3 JSON of `sluice.v1.Policy`),
// watched so a new revision applies at once. An invalid document is refused: the last good policy of
// that key stays in force and the refusal is logged (DESIGN §3). Parsing and defaults are the
// runtime's and core's (`parsePolicyText` → `withPolicyDefaults`).

import type { ResolvedPolicy } from "@sluice/core";
import { parsePolicyText } from "@sluice/runtime";
import type { Etcd3 } from "etcd3";
import { type PrefixView, type PrefixViewLogger, watchPrefixView } from "./etcd-prefix-view.js";

export const DEFAULT_POLICY_KEY = "_default";

/** The policy deciding a model's requests, with the etcd revision it came from (0 = built in). */
export interface PolicyInForce {
  readonly policy: ResolvedPolicy;
  readonly revision: number;
}

export interface PolicySource {
  /** The policy of `model`, else `_default`, else the fallback. */
  policyFor(model: string): PolicyInForce;
  close(): Promise<void>;
}

/** A fixed policy (tests, and processes started without etcd policies). */
export function staticPolicySource(policy: ResolvedPolicy): PolicySource {
  const inForce = { policy, revision: 0 };
  return { policyFor: () => inForce, close: async () => {} };
}

export interface EtcdPolicySourceOptions {
  etcd: Etcd3;
  prefix: string;
  /** Applied when etcd holds no policy for the model and no `_default` (the ingress's flags). */
  fallback: ResolvedPolicy;
  logger: PrefixViewLogger & { info(fields: object, message: string): void };
}

export async function watchEtcdPolicies(options: EtcdPolicySourceOptions): Promise<PolicySource> {
  const lastGood = new Map<string, PolicyInForce>();
  const fallback: PolicyInForce = { policy: options.fallback, revision: 0 };
  const view: PrefixView<PolicyInForce> = await watchPrefixView({
    etcd: options.etcd,
    prefix: `${options.prefix}/policies/`,
    parse(key, value, revision) {
      try {
        const inForce = { policy: parsePolicyText(value, { model: key }).resolved, revision };
        lastGood.set(key, inForce);
        options.logger.info({ policy: key, revision }, "policy applied");
        return inForce;
      } catch (error) {
        options.logger.warn(
          { err: error, policy: key, revision },
          "policy rejected; keeping the last good one",
        );
        return lastGood.get(key);
      }
    },
    logger: options.logger,
  });
  return {
    policyFor(model) {
      return view.entries.get(model) ?? view.entries.get(DEFAULT_POLICY_KEY) ?? fallback;
    },
    close: () => view.close(),
  };
}
