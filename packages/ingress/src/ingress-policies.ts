// Policies of the ingress: the runtime's `watchPolicies` (one watch of `{prefix}/policies/`, enforcing
// and `_shadow/` candidates, invalid documents refused with the last good one kept and reported via
// `onRejected`), with the ingress's flags standing in for the built-in defaults. The watch is started
// in the background and retried while etcd is unreachable, so the ingress serves at once on its flags
// during an etcd outage at start-up (DESIGN §9).

import type { ResolvedPolicy } from "@sluice/core";
import {
  DEFAULT_POLICY_KEY,
  type EffectivePolicy,
  type Logger,
  type PolicyWatcher,
  type WatchPoliciesOptions,
  watchPolicies,
} from "@sluice/runtime";

/** The policy deciding a model's requests, with the etcd revision it came from (0 = the flags). */
export interface PolicyInForce {
  readonly policy: ResolvedPolicy;
  readonly revision: number;
}

export interface PolicySource {
  /** The policy of `model`, else `_default`, else the fallback. Allocates nothing. */
  policyFor(model: string): PolicyInForce;
  /** The shadow candidate of `model` (else `_shadow/_default`), undefined when none is stored. */
  shadowFor(model: string): PolicyInForce | undefined;
  close(): Promise<void>;
}

/** A fixed policy and no shadow (tests, and processes started without etcd policies). */
export function staticPolicySource(policy: ResolvedPolicy): PolicySource {
  const inForce = { policy, revision: 0 };
  return { policyFor: () => inForce, shadowFor: () => undefined, close: async () => {} };
}

export interface IngressPolicySource extends PolicySource {
  /** Resolves once the first snapshot of the policies is in force. Rejects with `signal.reason`. */
  ready(signal?: AbortSignal): Promise<void>;
}

export interface IngressPoliciesOptions extends Omit<WatchPoliciesOptions, "logger"> {
  /** In force where etcd holds no policy for the model and no `_default` (the ingress's flags). */
  readonly fallback: ResolvedPolicy;
  readonly logger: Logger;
  /** First delay between attempts to start the watch while etcd is unreachable. Default 500 ms. */
  readonly startRetryDelayMs?: number;
  /** The start delay doubles up to this. Default 5000 ms. */
  readonly maxStartRetryDelayMs?: number;
}

export const DEFAULT_POLICY_START_RETRY_DELAY_MS = 500;
export const DEFAULT_MAX_POLICY_START_RETRY_DELAY_MS = 5_000;

const keyOf = (model: string) => (model === "" ? DEFAULT_POLICY_KEY : model);

export function startIngressPolicies(options: IngressPoliciesOptions): IngressPolicySource {
  const { fallback: fallbackPolicy, logger, startRetryDelayMs, maxStartRetryDelayMs, ...watch } = options;
  const firstDelayMs = startRetryDelayMs ?? DEFAULT_POLICY_START_RETRY_DELAY_MS;
  const maxDelayMs = Math.max(firstDelayMs, maxStartRetryDelayMs ?? DEFAULT_MAX_POLICY_START_RETRY_DELAY_MS);
  const fallback: EffectivePolicy = Object.freeze({
    policy: fallbackPolicy,
    source: "built-in",
    key: undefined,
    revision: 0,
  });
  let watcher: PolicyWatcher | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let resolveStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    resolveStarted = resolve;
  });

  const attempt = (failures: number): void => {
    retry = undefined;
    if (closed) return;
    watchPolicies({ ...watch, logger }).then(
      (w) => {
        if (closed) {
          void w.close();
          return;
        }
        watcher = w;
        resolveStarted();
      },
      (error: unknown) => {
        if (closed) return;
        const delayMs = Math.min(maxDelayMs, firstDelayMs * 2 ** Math.min(failures, 20));
        logger.warn(
          { err: error, retryInMs: delayMs },
          "cannot read policies; serving on the flags, retrying",
        );
        retry = setTimeout(() => attempt(failures + 1), delayMs);
        retry.unref();
      },
    );
  };
  attempt(0);

  return {
    policyFor(model) {
      const inForce = watcher?.current(keyOf(model));
      return inForce === undefined || inForce.source === "built-in" ? fallback : inForce;
    },
    shadowFor: (model) => watcher?.shadow(keyOf(model)),
    ready(signal) {
      if (signal === undefined) return started;
      signal.throwIfAborted();
      return new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        void started.then(() => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    },
    async close() {
      closed = true;
      if (retry !== undefined) clearTimeout(retry);
      await watcher?.close();
    },
  };
}
