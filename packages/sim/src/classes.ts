// Request classes and their default objectives — the one place these policy defaults live (issue 3 §6,
// DESIGN §1). The simulator judges every request against its class's objectives.

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

/** critical 1 s / 50 ms, standard 2 s / 100 ms, sheddable 10 s / 200 ms (issue 3 §6). */
export const DEFAULT_CLASS_OBJECTIVES: Readonly<Record<RequestClass, Readonly<ClassObjectives>>> =
  Object.freeze({
    critical: Object.freeze({ ttftObjectiveMs: 1000, meanItlObjectiveMs: 50 }),
    standard: Object.freeze({ ttftObjectiveMs: 2000, meanItlObjectiveMs: 100 }),
    sheddable: Object.freeze({ ttftObjectiveMs: 10_000, meanItlObjectiveMs: 200 }),
  });

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
