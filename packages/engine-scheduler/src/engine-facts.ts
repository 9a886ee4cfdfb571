// Engine facts from the engine's own Prometheus `/metrics`: what the engine says is running, waiting
// and how full its KV cache is. These are the engine's observation and are kept beside (never mixed
// into) the sidecar's own exact counts: the sidecar knows what it sent, the engine knows what it is
// doing with it (preemptions, requests sent around the sidecar). vLLM names are read as-is; SGLang's
// are mapped onto them.
import { Agent as HttpAgent, get as httpGet } from "node:http";
import { Agent as HttpsAgent, get as httpsGet } from "node:https";

/** One scrape, engine's view. `undefined` fields were not exported by this engine. */
export interface EngineFacts {
  running: number | undefined;
  waiting: number | undefined;
  /** KV cache usage in [0, 1]. */
  kvUsage: number | undefined;
  preemptionsTotal: number | undefined;
}

const NAMES: Readonly<Record<keyof EngineFacts, readonly string[]>> = {
  running: ["vllm:num_requests_running", "sglang:num_running_reqs"],
  waiting: ["vllm:num_requests_waiting", "sglang:num_queue_reqs"],
  // vLLM < 0.10 exported gpu_cache_usage_perc; SGLang's token_usage is the same fraction.
  kvUsage: ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"],
  preemptionsTotal: ["vllm:num_preemptions_total", "vllm:num_preemptions"],
};

const WANTED = new Set(Object.values(NAMES).flat());

/**
 * Reads the facts from Prometheus text exposition. Series of one name are summed over their labels
 * (one engine may report per model or per data-parallel rank); KV usage is averaged instead. Runs on
 * the sidecar's event loop every scrape, so it only looks closer at lines of the names it wants (an
 * engine exports hundreds of histogram series it does not need).
 */
export function parseEngineMetrics(text: string): EngineFacts {
  const sums = new Map<string, { sum: number; n: number }>();
  for (const rawLine of text.split("\n")) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) continue;
    const nameEnd = line.search(/[{\s]/);
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (!WANTED.has(name)) continue;
    const afterLabels =
      line[nameEnd] === "{" ? line.slice(line.indexOf("}", nameEnd) + 1) : line.slice(nameEnd);
    const value = Number(afterLabels.trim().split(/\s+/)[0]);
    if (!Number.isFinite(value)) continue;
    const s = sums.get(name) ?? { sum: 0, n: 0 };
    s.sum += value;
    s.n += 1;
    sums.set(name, s);
  }
  const pick = (key: keyof EngineFacts, average = false): number | undefined => {
    for (const name of NAMES[key]) {
      const s = sums.get(name);
      if (s !== undefined) return average ? s.sum / s.n : s.sum;
    }
    return undefined;
  };
  const kv = pick("kvUsage", true);
  return {
    running: pick("running"),
    waiting: pick("waiting"),
    kvUsage: kv === undefined ? undefined : Math.min(1, Math.max(0, kv)),
    preemptionsTotal: pick("preemptionsTotal"),
  };
}

export interface EngineScraperOptions {
  /** `{engine}/metrics`. */
  url: string;
  intervalMs: number;
  /** Consecutive failures before the engine counts as down. */
  failuresBeforeDown: number;
  onFacts(facts: EngineFacts): void;
  /** Up/down transitions (first success → up; `failuresBeforeDown` failures in a row → down). */
  onHealth(up: boolean, error: Error | undefined): void;
}

export interface EngineScraper {
  readonly up: boolean;
  readonly last: EngineFacts | undefined;
  /** Scrapes now (also what the timer does); resolves when done, never rejects. */
  scrapeNow(): Promise<void>;
  /** An upstream call could not connect: count it as a failed scrape at once. */
  reportFailure(error: Error): void;
  close(): void;
}

export function startEngineScraper(options: EngineScraperOptions): EngineScraper {
  let up = false;
  let failures = 0;
  let last: EngineFacts | undefined;
  let inFlight: Promise<void> | undefined;
  let closed = false;

  const fail = (error: Error) => {
    failures++;
    if (failures >= options.failuresBeforeDown && (up || failures === options.failuresBeforeDown)) {
      up = false;
      options.onHealth(false, error);
    }
  };

  // node:http on one kept-alive connection rather than `fetch`: undici costs the sidecar's event loop
  // ~1 ms of CPU a scrape (and a fresh connection each time), twice a second, in the middle of the
  // requests it proxies (issue 6).
  const timeoutMs = Math.max(1_000, options.intervalMs * 2);
  let target: { url: URL; get: typeof httpGet; agent: HttpAgent } | undefined;
  const getText = (retryStale = true): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      if (target === undefined) {
        const url = new URL(options.url);
        if (url.protocol !== "http:" && url.protocol !== "https:")
          throw new Error(`${options.url} is not an http(s) URL`);
        const https = url.protocol === "https:";
        target = {
          url,
          get: https ? httpsGet : httpGet,
          agent: https
            ? new HttpsAgent({ keepAlive: true, maxSockets: 1 })
            : new HttpAgent({ keepAlive: true, maxSockets: 1 }),
        };
      }
      const req = target.get(target.url, { agent: target.agent }, (res) => {
        const status = res.statusCode ?? 0;
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => {
          clearTimeout(timer);
          if (status >= 200 && status < 300) resolve(text);
          else reject(new Error(`GET ${options.url} answered ${status}`));
        });
        res.on("error", (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
      const timer = setTimeout(
        () => req.destroy(new Error(`GET ${options.url} did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      req.on("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        // The engine closed the idle kept-alive connection as this scrape reused it: not a failure
        // of the engine, so once on a fresh connection (the pattern the Node.js docs give).
        if (retryStale && req.reusedSocket && error.code === "ECONNRESET") resolve(getText(false));
        else reject(error);
      });
    });

  const scrape = async () => {
    try {
      const text = await getText();
      if (closed) return;
      last = parseEngineMetrics(text);
      failures = 0;
      options.onFacts(last);
      if (!up) {
        up = true;
        options.onHealth(true, undefined);
      }
    } catch (error) {
      if (!closed) fail(error instanceof Error ? error : new Error(String(error)));
    }
  };
  const scrapeNow = () => {
    inFlight ??= scrape().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
  const timer = setInterval(() => void scrapeNow(), options.intervalMs);
  timer.unref();
  void scrapeNow();

  return {
    get up() {
      return up;
    },
    get last() {
      return last;
    },
    scrapeNow,
    reportFailure(error) {
      // One refused connection is decisive: a live engine accepts connections.
      failures = Math.max(failures, options.failuresBeforeDown - 1);
      fail(error);
    },
    close() {
      closed = true;
      clearInterval(timer);
      target?.agent.destroy();
    },
  };
}
