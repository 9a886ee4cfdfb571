// What a process does around its live policies besides applying them (DESIGN §3): publishes the
// `policy_rejected` event when the watcher ignores an invalid stored document, logs and exports when
// each revision took effect (what `bench/policy-propagation.ts` measures against real processes), and
// counts and reports shadow verdicts. Publishing is best effort: a closed NATS connection never fails
// a decision or a policy swap.
import { type ShadowComparison, shadowDecisionEvent } from "@sluice/core";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import { policyRejectedMessage } from "./policy-events.js";
import type { PolicyApplied, PolicyRejected } from "./policy-watch.js";
import type { Subjects } from "./subjects.js";

export const SHADOW_DECISIONS_METRIC = "sluice_shadow_decisions_total";
export const POLICY_APPLIED_TIMESTAMP_METRIC = "sluice_policy_applied_timestamp_seconds";
export const SHADOW_OUTCOME = "shadow";

export interface PolicyReportingDeps {
  /** Level in event subjects and labels: `router`, `engine`, `aggregator`. */
  readonly level: string;
  readonly instanceId: string;
  readonly subjects: Subjects;
  publish(subject: string, data: Uint8Array): void;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Epoch ms with sub-ms precision (one clock for all processes of a host). Default timeOrigin + now. */
  readonly nowMs?: () => number;
}

export interface ShadowReport {
  readonly requestId: string;
  readonly requestClass: string;
  readonly model: string;
  readonly comparison: ShadowComparison;
  readonly enforcedRevision: number;
  readonly shadowRevision: number;
}

export interface PolicyReporting {
  /** Pass as `watchPolicies({ onApplied })` (after the process has switched to the new policy). */
  applied(change: PolicyApplied): void;
  /** Pass as `watchPolicies({ onRejected })`. */
  rejected(rejection: PolicyRejected): void;
  /** Counts every shadow evaluation; publishes an event on `events.{level}.shadow` when they disagree. */
  shadow(report: ShadowReport): void;
}

const encoder = new TextEncoder();

export function createPolicyReporting(deps: PolicyReportingDeps): PolicyReporting {
  const nowMs = deps.nowMs ?? (() => performance.timeOrigin + performance.now());
  const appliedAt = deps.metrics.gauge({
    name: POLICY_APPLIED_TIMESTAMP_METRIC,
    help: "When the policy revision in force per policy key took effect in this process (Unix seconds).",
    labelNames: ["model", "kind"],
  });
  const shadowDecisions = deps.metrics.counter({
    name: SHADOW_DECISIONS_METRIC,
    help: "Requests judged by a shadow policy beside the enforcing one, by both verdicts (admit/hold/reject).",
    labelNames: ["level", "enforced", "shadow"],
  });
  const publish = (subject: string, data: Uint8Array, what: string) => {
    try {
      deps.publish(subject, data);
    } catch (error) {
      deps.logger.debug({ err: error, subject }, `could not publish the ${what} event`);
    }
  };
  const shadowSubject = deps.subjects.events(deps.level, SHADOW_OUTCOME);

  return {
    applied(change) {
      const at = nowMs();
      appliedAt.set(at / 1000, { model: change.model, kind: change.kind });
      deps.logger.info(
        {
          key: change.key,
          model: change.model,
          kind: change.kind,
          revision: change.revision,
          deleted: change.policy === undefined,
          appliedAtMs: at,
        },
        "policy in force",
      );
    },
    rejected(rejection) {
      const message = policyRejectedMessage(rejection, {
        subjects: deps.subjects,
        level: deps.level,
        instanceId: deps.instanceId,
        nowMs: Date.now(),
      });
      publish(message.subject, message.data, "policy_rejected");
    },
    shadow(report) {
      const { comparison } = report;
      shadowDecisions.inc(1, {
        level: deps.level,
        enforced: comparison.enforced.outcome,
        shadow: comparison.shadow.outcome,
      });
      if (!comparison.disagree) return;
      const event = shadowDecisionEvent({
        level: deps.level,
        instanceId: deps.instanceId,
        requestId: report.requestId,
        requestClass: report.requestClass,
        model: report.model,
        comparison,
        enforcedRevision: report.enforcedRevision,
        shadowRevision: report.shadowRevision,
        timestampMs: Date.now(),
      });
      publish(shadowSubject, encoder.encode(JSON.stringify(event)), "shadow");
    },
  };
}
