// Named readiness checks behind /readyz. A process registers one per dependency it cannot serve without
// (NATS connected, etcd lease held, policy loaded); /readyz is 200 only when all pass.

/** `true`/`false`, or a result with a short reason shown in the /readyz body. */
export type ReadinessResult = boolean | { ready: boolean; detail?: string };
export type ReadinessCheck = () => ReadinessResult | Promise<ReadinessResult>;

export interface ReadinessReport {
  ready: boolean;
  /** Failing checks with their reason; passing ones are listed by name only. */
  failing: { name: string; detail?: string }[];
  passing: string[];
}

export interface Readiness {
  /** Adds a check; returns a function removing it. A name may be registered once. */
  register(name: string, check: ReadinessCheck): () => void;
  evaluate(): Promise<ReadinessReport>;
}

/** A check that has not answered within this bound counts as failing: /readyz must answer a probe fast. */
export const DEFAULT_READINESS_CHECK_TIMEOUT_MS = 1_000;

export function createReadiness(checkTimeoutMs = DEFAULT_READINESS_CHECK_TIMEOUT_MS): Readiness {
  const checks = new Map<string, ReadinessCheck>();
  return {
    register(name, check) {
      if (checks.has(name)) throw new Error(`readiness check "${name}" is already registered`);
      checks.set(name, check);
      return () => {
        if (checks.get(name) === check) checks.delete(name);
      };
    },
    async evaluate() {
      const results = await Promise.all(
        [...checks].map(async ([name, check]) => ({ name, result: await runCheck(check, checkTimeoutMs) })),
      );
      const report: ReadinessReport = { ready: true, failing: [], passing: [] };
      for (const { name, result } of results) {
        if (result.ready) report.passing.push(name);
        else {
          report.ready = false;
          report.failing.push(result.detail === undefined ? { name } : { name, detail: result.detail });
        }
      }
      return report;
    },
  };
}

async function runCheck(
  check: ReadinessCheck,
  timeoutMs: number,
): Promise<{ ready: boolean; detail?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ ready: false; detail: string }>((resolve) => {
    timer = setTimeout(
      () => resolve({ ready: false, detail: `check did not answer within ${timeoutMs}ms` }),
      timeoutMs,
    );
  });
  try {
    const result = await Promise.race([Promise.resolve().then(check), timeout]);
    return typeof result === "boolean" ? { ready: result } : result;
  } catch (err) {
    return { ready: false, detail: `check threw: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    clearTimeout(timer);
  }
}
