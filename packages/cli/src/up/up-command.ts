import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ConfigError, type ConfigValues, loadConfig, renderHelp } from "@sluice/runtime";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type SluiceCommand } from "../command.js";
import { runDemo } from "./demo.js";
import { LocalStack } from "./local-stack.js";
import { renderState, writeStateFile } from "./state.js";
import { upSchema } from "./up-schema.js";

export type UpConfig = ConfigValues<typeof upSchema>;

const SUMMARY =
  "Runs a local Sluice stack: nats-server and etcd (unless --nats-url/--etcd-endpoints are given), " +
  "mock engines and the Sluice processes, then a demo workload. Ctrl-C stops everything it started " +
  "and removes its temp dirs.";

export const upCommand: SluiceCommand = {
  name: "up",
  summary: "Run a local stack with a demo workload",
  run: runUp,
};

async function runUp(argv: string[]): Promise<number> {
  let config: UpConfig;
  try {
    const loaded = loadConfig(upSchema, { argv });
    if (loaded.kind === "help") {
      process.stdout.write(renderHelp(upSchema, { command: "sluice up", summary: SUMMARY }));
      return EXIT_OK;
    }
    config = loaded.values;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sluice up: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  if (config.exitAfterDemo && (!config.demo || config.demoDurationMs === 0)) {
    process.stderr.write("sluice up: --exit-after-demo needs --demo and a --demo-duration above 0\n");
    return EXIT_USAGE;
  }

  const say = (line: string) => process.stderr.write(`[sluice up] ${line}\n`);
  const ownDataDir = config.dataDir === "";
  const dataDir = ownDataDir ? mkdtempSync(join(tmpdir(), "sluice-up-")) : resolve(config.dataDir);
  mkdirSync(join(dataDir, "logs"), { recursive: true });

  // First Ctrl-C: stop gracefully. Second: the stack is torn down harder (SIGKILL after 1 s).
  const stop = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) say(`${sig}: stopping the stack ...`);
    else say(`${sig} again: killing what is left`);
    stop.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const stack = new LocalStack(config, dataDir, say);
  let exitCode = EXIT_OK;
  try {
    const state = await stack.start(stop.signal);
    process.stdout.write(`Sluice local stack is up (data and logs in ${dataDir}):\n${renderState(state)}\n`);
    if (config.stateFile !== "") writeStateFile(resolve(config.stateFile), state);
    if (config.demo) {
      const targets =
        state.ingress.length > 0 ? state.ingress.map((i) => i.url) : state.engine.map((e) => e.url);
      if (targets.length === 0) say("no ingress and no engine started: nothing to send the demo workload to");
      else {
        say(`demo workload: ${config.demoRps} req/s of streaming chat completions to ${targets.join(", ")}`);
        await runDemo({
          targets,
          model: config.model,
          ratePerSec: config.demoRps,
          durationMs: config.demoDurationMs,
          signal: stop.signal,
          report: say,
        });
      }
    }
    if (!config.exitAfterDemo && !stop.signal.aborted) {
      say("running; press Ctrl-C to stop");
      await new Promise<void>((done) => stop.signal.addEventListener("abort", () => done(), { once: true }));
    }
  } catch (err) {
    if (!stop.signal.aborted) {
      say(`failed: ${err instanceof Error ? err.message : String(err)}`);
      say(`process logs are in ${join(dataDir, "logs")}; their last lines:`);
      for (const line of logTails(join(dataDir, "logs"), 5)) process.stderr.write(`${line}\n`);
      exitCode = EXIT_FAILURE;
    }
  } finally {
    await stack.stop(() => signals > 1);
    if (config.stateFile !== "") rmSync(resolve(config.stateFile), { force: true });
    if (ownDataDir && exitCode === EXIT_OK) rmSync(dataDir, { recursive: true, force: true });
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  if (exitCode === EXIT_OK) say("stopped cleanly");
  return exitCode;
}

/** The last `count` lines of every process log, so a failed start explains itself without digging. */
function logTails(logDir: string, count: number): string[] {
  const out: string[] = [];
  for (const name of readdirSync(logDir).sort()) {
    const lines = readFileSync(join(logDir, name), "utf8").trimEnd().split("\n").slice(-count);
    out.push(`  --- ${name}`, ...lines.map((l) => `  ${l.slice(0, 500)}`));
  }
  return out;
}
