// The documented defaults of `sluice.v1.Policy`. Every number here is a `Default:` line of
// proto/sluice/v1/policy.proto (and so of docs/configuration.md); defaults-drift.spec.ts parses the
// proto and fails when the two disagree.

import type { ClassObjectives, ResolvedPolicy } from "./types.js";

/** The three built-in classes, highest priority first. */
export const BUILT_IN_CLASSES: readonly ClassObjectives[] = Object.freeze([
  Object.freeze({
    name: "critical",
    priority: 300,
    ttftObjectiveMs: 1000,
    itlObjectiveMs: 50,
    limitShare: 1.0,
  }),
  Object.freeze({
    name: "standard",
    priority: 200,
    ttftObjectiveMs: 2000,
    itlObjectiveMs: 100,
    limitShare: 0.9,
  }),
  Object.freeze({
    name: "sheddable",
    priority: 100,
    ttftObjectiveMs: 10000,
    itlObjectiveMs: 200,
    limitShare: 0.7,
  }),
]);

export const DEFAULT_POLICY: ResolvedPolicy = Object.freeze({
  model: "_default",
  description: "",
  classes: BUILT_IN_CLASSES,
  defaultClass: "standard",
  tenants: Object.freeze([]),
  ingress: Object.freeze({
    maxInflight: 0,
    kvOvercommit: 1.25,
    classLimitShare: Object.freeze({}),
    maxClusterLoadAgeMs: 2000,
    predictedTtftCheck: true,
  }),
  router: Object.freeze({
    busyDecodeBlockFraction: 0.95,
    busyPendingPrefillTokens: 0,
    busyPrefillBatchRatio: 4.0,
    busyTtftObjectiveFraction: 1.0,
    classMaxHeld: Object.freeze({ critical: 256, standard: 128, sheddable: 0 }),
    maxHoldMs: 1000,
    overlapScoreWeight: 1.0,
  }),
  engine: Object.freeze({ maxInflight: 0, maxQueue: 64, maxQueueMs: 0, ttftMarginMs: 50 }),
  rejection: Object.freeze({ httpStatus: 429, retryAfterMinMs: 100, retryAfterMaxMs: 30000 }),
  failMode: "static",
});
