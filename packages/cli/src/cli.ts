import { readFileSync } from "node:fs";
import { EXIT_USAGE, type SluiceCommand } from "./command.js";
import { watchParent } from "./parent-watch.js";

interface CommandEntry {
  readonly summary: string;
  /** Loaded on use, so `sluice --help` and each process load only what they run. */
  load(): Promise<SluiceCommand>;
}

const COMMANDS: Record<string, CommandEntry> = {
  up: {
    summary: "Run a local stack (NATS, etcd, mock engines, …) with a demo workload",
    load: async () => (await import("./up/up-command.js")).upCommand,
  },
  ingress: {
    summary: "L1 ingress: OpenAI-compatible admission proxy, global in-flight and KV limits across frontends",
    load: async () => (await import("@sluice/ingress")).ingressCommand,
  },
  router: {
    summary: "L2 router: prefix-aware placement, predicted per-engine load, bounded hold queue (gRPC)",
    load: async () => (await import("@sluice/router")).routerCommand,
  },
  "engine-scheduler": {
    summary: "L3 sidecar in front of one engine: exact queue, predictive TTFT/ITL rejection",
    load: async () => (await import("@sluice/engine-scheduler")).engineSchedulerCommand,
  },
  aggregator: {
    summary: "Leader-elected aggregator publishing the cluster load view (cluster.load)",
    load: async () => (await import("@sluice/aggregator")).aggregatorCommand,
  },
  "mock-engine": {
    summary: "Simulated vLLM-like engine serving the OpenAI API in real time",
    load: async () => (await import("@sluice/mock-engine")).mockEngineCommand,
  },
  policy: {
    summary: "Get, set, validate, diff, roll back and shadow per-model policies in etcd",
    load: async () => (await import("./policy/policy-command.js")).policyCommand,
  },
  events: {
    summary: "Show decision events: history from JetStream (--since), then live (--follow)",
    load: async () => (await import("./events/events-command.js")).eventsCommand,
  },
  status: {
    summary: "Show instances, engines, observed and predicted load, headroom and recent rejections",
    load: async () => (await import("./status/status-command.js")).statusCommand,
  },
  sim: {
    summary: "Virtual-time cluster simulator replaying workload traces through admission policies",
    load: async () => (await import("@sluice/sim")).simCommand,
  },
  replay: {
    summary: "Real-time trace replay against a running stack, reported like the simulator",
    load: async () => (await import("@sluice/replay")).replayCommand,
  },
};

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    "Usage: sluice <command> [flags]",
    "",
    "Multi-level admission control for LLM inference clusters.",
    "",
    "Commands:",
    ...lines,
    "",
    "Run `sluice <command> --help` for a command's flags, environment variables and defaults.",
    "",
  ].join("\n");
}

export async function runCli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(usage());
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === "--version" || name === "version") {
    process.stdout.write(`sluice ${version()}\n`);
    return 0;
  }
  const entry = COMMANDS[name];
  if (entry === undefined) {
    process.stderr.write(
      `sluice: unknown command "${name}"; known commands: ${Object.keys(COMMANDS).join(", ")}\n`,
    );
    return EXIT_USAGE;
  }
  watchParent(process.env);
  const command = await entry.load();
  return command.run(rest);
}
