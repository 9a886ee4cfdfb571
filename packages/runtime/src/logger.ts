// The logging seam. Libraries take the small `Logger` interface; only a process's shell builds pino
// (JSON lines on stdout, base fields role/id, secrets redacted).

import type { DestinationStream, Logger as PinoLogger } from "pino";
import { pino } from "pino";
import type { LogLevel } from "./config-common.js";

/** What shared code may log through. `obj` comes first so fields stay structured (pino's convention). */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  /** A logger that adds `bindings` to every line (e.g. `{ component: "etcd" }`). */
  child(bindings: Record<string, unknown>): Logger;
}

/** The process-level logger also has `fatal`, used only by the shell's crash guards. */
export type ProcessLogger = PinoLogger;

/** Discards everything; the default for libraries whose caller passes no logger. */
export const noopLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return noopLogger;
  },
};

/**
 * Paths censored in every log line. pino's `*` matches one level, so the common places a secret ends up
 * are listed explicitly: top-level fields, one level down, and HTTP header objects.
 */
export const REDACTED_PATHS: readonly string[] = [
  ...["password", "token", "secret", "apiKey", "api_key", "accessToken", "authorization"].flatMap((k) => [
    k,
    `*.${k}`,
  ]),
  "headers.authorization",
  "headers.cookie",
  'headers["x-api-key"]',
  "*.headers.authorization",
  "*.headers.cookie",
  '*.headers["x-api-key"]',
];

export interface CreateLoggerOptions {
  role: string;
  id: string;
  level: LogLevel;
  /** Defaults to synchronous stdout so a fatal line is written before `process.exit`. */
  destination?: DestinationStream;
}

export function createLogger(options: CreateLoggerOptions): ProcessLogger {
  return pino(
    {
      level: options.level,
      base: { role: options.role, id: options.id, pid: process.pid },
      redact: { paths: [...REDACTED_PATHS], censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
