#!/usr/bin/env node
import { runCli } from "./cli.js";

// The process exit code comes from the command; a thrown error here is a bug, reported as such.
runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `sluice: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
