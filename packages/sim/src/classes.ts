// Request classes and the objectives the simulator judges them by. The objectives are core's policy
// defaults (`DEFAULT_POLICY.classes` in @sluice/core, drift-checked against the proto), so the simulator,
// the processes and the sluice-* policies it runs all judge a request by the same numbers.

import { DEFAULT_POLICY } from "@sluice/core";
import { SimUsageError } from "./errors.js";
import type { Rng } from "./rng.js";

export const REQUEST_CLASSES = ["critical", "standard", "sheddable"] as const;
export type RequestClass = (typeof REQUEST_CLASSES)[number];

export interface ClassObjectives {
  /** Time to first token objective, ms from arrival at the ingress. */
  ttftObjectiveMs: number;
  /** Objective for the request's mean inter-token latency, ms. */
  meanItlObjectiveMs: number;
}

function objectivesFromPolicy(): Readonly<Record<RequestClass, Readonly<ClassObjectives>>> {
  const out = {} as Record<RequestClass, Readonly<ClassObjectives>>;
  for (const name of REQUEST_CLASSES) {
    const c = DEFAULT_POLICY.classes.find((k) => k.name === name);
    // A core policy without one of the built-in classes is a programming error, not a user error.
    if (c === undefined) throw new Error(`core DEFAULT_POLICY has no class ${name}`);
    out[name] = Object.freeze({ ttftObjectiveMs: c.ttftObjectiveMs, meanItlObjectiveMs: c.itlObjectiveMs });
  }
  return Object.freeze(out);
}

/** Core's `DEFAULT_POLICY` objectives: critical 1 s / 50 ms, standard 2 s / 100 ms, sheddable 10 s / 200 ms. */
export const DEFAULT_CLASS_OBJECTIVES: Readonly<Record<RequestClass, Readonly<ClassObjectives>>> =
  objectivesFromPolicy();

/** Share of requests per class; sums to 1. */
export type ClassMix = Readonly<Record<RequestClass, number>>;

export const DEFAULT_CLASS_MIX: ClassMix = Object.freeze({ critical: 0, standard: 1, sheddable: 0 });

function isRequestClass(name: string): name is RequestClass {
  return (REQUEST_CLASSES as readonly string[]).includes(name);
}

/** Parses `critical=0.2,standard=0.6,sheddable=0.2`; omitted classes get 0; must sum to 1 (±1e-6). */
export function parseClassMix(text: string): ClassMix {
  const mix: Record<RequestClass, number> = { critical: 0, standard: 0, sheddable: 0 };
  for (const part of text.split(",")) {
    const [name, value, extra] = part.split("=").map((s) => s.trim());
    if (name === undefined || value === undefined || extra !== undefined || !isRequestClass(name)) {
      throw new SimUsageError(
        `--class-mix: "${part}" is not CLASS=SHARE with CLASS one of ${REQUEST_CLASSES.join(", ")}`,
      );
    }
    const share = Number(value);
    if (value === "" || !Number.isFinite(share) || share < 0 || share > 1) {
      throw new SimUsageError(`--class-mix: share of ${name} must be a number in [0, 1], got "${value}"`);
    }
    mix[name] = share;
  }
  const sum = mix.critical + mix.standard + mix.sheddable;
  if (Math.abs(sum - 1) > 1e-6) throw new SimUsageError(`--class-mix: shares must sum to 1, got ${sum}`);
  return mix;
}

/** Draws a class from `mix` with one call to `rng`. */
export function sampleClass(mix: ClassMix, rng: Rng): RequestClass {
  const u = rng();
  if (u < mix.critical) return "critical";
  if (u < mix.critical + mix.standard) return "standard";
  return mix.sheddable > 0 ? "sheddable" : "standard";
}
