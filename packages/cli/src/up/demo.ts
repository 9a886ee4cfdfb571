/**
 * The demo workload of `npm start`: Poisson arrivals of streaming chat completions, in the
 * OpenAI wire format, against the stack's entry point. A handful of shared system prompts give
 * the engines prefix-cache hits, as real chat traffic does. Prints a progress line every few
 * seconds so the person who ran `npm start` sees the stack working.
 */

export interface DemoOptions {
  /** Base URLs to send to (the ingress once it exists, else the engines), picked round-robin. */
  readonly targets: readonly string[];
  readonly model: string;
  readonly ratePerSec: number;
  /** 0 = until `signal` aborts. */
  readonly durationMs: number;
  readonly signal: AbortSignal;
  readonly report: (line: string) => void;
  readonly reportEveryMs?: number;
  readonly random?: () => number;
}

export interface DemoSummary {
  sent: number;
  completed: number;
  rejected: number;
  failed: number;
  ttftMs: number[];
}

const SYSTEM_PROMPTS = [
  "You are a concise assistant for a cloud provider's customers. Answer with short, correct steps.",
  "You are a code reviewer. Point out bugs first, then style, and keep every remark actionable.",
  "You translate technical English into plain language for operators on call at night.",
];
const TOPICS = [
  "KV cache",
  "batching",
  "retries",
  "TLS",
  "leases",
  "queues",
  "prefill",
  "streaming",
  "quotas",
];

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const random = options.random ?? Math.random;
  const summary: DemoSummary = { sent: 0, completed: 0, rejected: 0, failed: 0, ttftMs: [] };
  const inFlight = new Set<Promise<void>>();
  const startedAt = Date.now();
  let next = 0;
  const reporter = setInterval(
    () => options.report(progressLine(summary, inFlight.size, startedAt)),
    options.reportEveryMs ?? 5_000,
  );
  try {
    while (!options.signal.aborted) {
      if (options.durationMs > 0 && Date.now() - startedAt >= options.durationMs) break;
      const target = options.targets[next++ % options.targets.length];
      if (target === undefined) break;
      const body = {
        model: options.model,
        stream: true,
        max_tokens: 16 + Math.floor(random() * 48),
        messages: [
          { role: "system", content: SYSTEM_PROMPTS[Math.floor(random() * SYSTEM_PROMPTS.length)] },
          {
            role: "user",
            content: `Explain ${TOPICS[Math.floor(random() * TOPICS.length)]} in one paragraph. #${summary.sent}`,
          },
        ],
      };
      summary.sent += 1;
      const p = sendOne(target, body, summary, options.signal).finally(() => inFlight.delete(p));
      inFlight.add(p);
      // Exponential inter-arrival times: a Poisson process at the requested rate.
      await sleep((-Math.log(1 - random()) / options.ratePerSec) * 1000, options.signal);
    }
    await Promise.allSettled(inFlight);
  } finally {
    clearInterval(reporter);
  }
  options.report(progressLine(summary, 0, startedAt));
  return summary;
}

async function sendOne(
  target: string,
  body: object,
  summary: DemoSummary,
  signal: AbortSignal,
): Promise<void> {
  const started = performance.now();
  try {
    const res = await fetch(`${target}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
    if (res.status === 429 || res.status === 503 || res.status === 529) {
      summary.rejected += 1;
      await res.body?.cancel();
      return;
    }
    if (!res.ok || res.body === null) {
      summary.failed += 1;
      await res.body?.cancel();
      return;
    }
    let first = true;
    for await (const _chunk of res.body) {
      if (first) {
        summary.ttftMs.push(performance.now() - started);
        first = false;
      }
    }
    summary.completed += 1;
  } catch {
    // Aborted by Ctrl-C or a connection failure: either way not a completion.
    if (!signal.aborted) summary.failed += 1;
  }
}

function progressLine(s: DemoSummary, inFlight: number, startedAt: number): string {
  const elapsedSec = (Date.now() - startedAt) / 1000;
  const sorted = [...s.ttftMs].sort((a, b) => a - b);
  const pct = (q: number) =>
    sorted.length === 0
      ? "-"
      : `${Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0)}ms`;
  return (
    `demo ${elapsedSec.toFixed(0)}s: ${s.sent} sent, ${s.completed} completed, ${s.rejected} rejected, ` +
    `${s.failed} failed, ${inFlight} in flight; TTFT p50 ${pct(0.5)} p99 ${pct(0.99)}`
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
