// The aggregator's per-model limits from the live policy: `ingress.kv_overcommit` and each class's
// share of the L1 limits (`ingress.class_limit_share` overrides the class's `limit_share` at L1, and
// the headroom published here is what L1 admits against). Built once per policy object, so a view
// computed every debounce costs one WeakMap lookup per model.
import {
  ClusterAggregateConfigError,
  type ClusterAggregateOptions,
  clusterAggregateOptionsWithDefaults,
  type ResolvedPolicy,
} from "@sluice/core";

export interface AggregateOptionsSource {
  /** Options for `model`: its policy's shares over `base`; `base` when the policy's cannot be used. */
  optionsFor(model: string): ClusterAggregateOptions;
}

export function aggregateOptionsFromPolicies(
  base: ClusterAggregateOptions,
  policyFor: (model: string) => ResolvedPolicy,
  onInvalid: (model: string, error: ClusterAggregateConfigError) => void = () => {},
): AggregateOptionsSource {
  const built = new WeakMap<ResolvedPolicy, ClusterAggregateOptions>();
  return {
    optionsFor(model) {
      const policy = policyFor(model);
      let options = built.get(policy);
      if (options === undefined) {
        try {
          options = clusterAggregateOptionsWithDefaults({
            ...base,
            kvOvercommit: policy.ingress.kvOvercommit,
            classes: policy.classes.map((c) => ({
              name: c.name,
              limitShare: policy.ingress.classLimitShare[c.name] ?? c.limitShare,
            })),
          });
        } catch (error) {
          if (!(error instanceof ClusterAggregateConfigError)) throw error;
          onInvalid(model, error);
          options = base;
        }
        built.set(policy, options);
      }
      return options;
    },
  };
}
