// The metrics seam. Libraries take the small `Metrics` interface; only the process shell builds a
// prom-client Registry. Sluice's own metrics are named `sluice_*`; the default process metrics keep their
// standard unprefixed names (`process_cpu_seconds_total`, `nodejs_*`) so stock dashboards work.

import {
  collectDefaultMetrics,
  Counter as PromCounter,
  Gauge as PromGauge,
  Histogram as PromHistogram,
  Registry,
} from "prom-client";

export const SLUICE_METRIC_PREFIX = "sluice_";

export type Labels = Readonly<Record<string, string | number>>;

export interface CounterMetric {
  inc(value?: number, labels?: Labels): void;
}
export interface GaugeMetric {
  set(value: number, labels?: Labels): void;
  inc(value?: number, labels?: Labels): void;
  dec(value?: number, labels?: Labels): void;
}
export interface HistogramMetric {
  observe(value: number, labels?: Labels): void;
}

export interface MetricDefinition {
  /** Full name with unit suffix, e.g. `sluice_ingress_rejections_total`, `sluice_route_decision_seconds`. */
  name: string;
  help: string;
  labelNames?: readonly string[];
}

/**
 * Registering the same name twice returns the same metric (two components may count into one series),
 * while reusing a name with a different type or label set throws at start-up.
 */
export interface Metrics {
  counter(def: MetricDefinition): CounterMetric;
  gauge(def: MetricDefinition): GaugeMetric;
  histogram(def: MetricDefinition & { buckets: readonly number[] }): HistogramMetric;
}

export const noopMetrics: Metrics = {
  counter: () => ({ inc() {} }),
  gauge: () => ({ set() {}, inc() {}, dec() {} }),
  histogram: () => ({ observe() {} }),
};

export interface CreateMetricsRegistryOptions {
  role: string;
  /** Version reported by `sluice_build_info`. */
  version: string;
  /** Collect nodejs_* / process_* metrics; off only in tests that count series. */
  collectDefaultMetrics?: boolean;
}

export function createMetricsRegistry(options: CreateMetricsRegistryOptions): Registry {
  const registry = new Registry();
  if (options.collectDefaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const buildInfo = new PromGauge({
    name: `${SLUICE_METRIC_PREFIX}build_info`,
    help: "Always 1; labels carry the Sluice version, the process role and the Node.js version.",
    labelNames: ["version", "role", "node_version"],
    registers: [registry],
  });
  buildInfo.set({ version: options.version, role: options.role, node_version: process.versions.node }, 1);
  return registry;
}

export interface PromMetricsOptions {
  /** Names must start with this; `""` for processes that mimic another system's names (mock-engine's `vllm:`). */
  requiredPrefix?: string;
}

export function createPromMetrics(registry: Registry, options: PromMetricsOptions = {}): Metrics {
  const prefix = options.requiredPrefix ?? SLUICE_METRIC_PREFIX;
  const check = (def: MetricDefinition, type: string) => {
    if (!def.name.startsWith(prefix)) {
      throw new Error(`metric "${def.name}" must be named ${prefix}* (see metrics.ts)`);
    }
    const existing = registry.getSingleMetric(def.name);
    if (existing === undefined) return undefined;
    const existingType = (existing as unknown as { type?: string }).type;
    const existingLabels = (existing as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    if (existingType !== type || existingLabels.join(",") !== [...(def.labelNames ?? [])].join(",")) {
      throw new Error(`metric "${def.name}" is already registered as a ${existingType} with other labels`);
    }
    return existing;
  };
  const base = (def: MetricDefinition) => ({
    name: def.name,
    help: def.help,
    labelNames: [...(def.labelNames ?? [])],
    registers: [registry],
  });
  return {
    counter(def) {
      const c = (check(def, "counter") as PromCounter | undefined) ?? new PromCounter(base(def));
      return { inc: (value = 1, labels) => (labels ? c.inc(labels, value) : c.inc(value)) };
    },
    gauge(def) {
      const g = (check(def, "gauge") as PromGauge | undefined) ?? new PromGauge(base(def));
      return {
        set: (value, labels) => (labels ? g.set(labels, value) : g.set(value)),
        inc: (value = 1, labels) => (labels ? g.inc(labels, value) : g.inc(value)),
        dec: (value = 1, labels) => (labels ? g.dec(labels, value) : g.dec(value)),
      };
    },
    histogram(def) {
      const h =
        (check(def, "histogram") as PromHistogram | undefined) ??
        new PromHistogram({ ...base(def), buckets: [...def.buckets] });
      return { observe: (value, labels) => (labels ? h.observe(labels, value) : h.observe(value)) };
    },
  };
}

export type { Registry };
