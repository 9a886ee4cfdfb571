/**
 * A `sluice` subcommand. Every process and tool of Sluice is one: the command owns its flag
 * parsing (so `sluice <name> --help` describes exactly what it accepts) and returns the exit
 * code instead of calling `process.exit`, so commands compose and test in-process.
 */
export interface SluiceCommand {
  readonly name: string;
  /** One line for `sluice --help`. */
  readonly summary: string;
  run(argv: string[]): Promise<number>;
}

/** Exit codes shared by every subcommand. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
/** Invalid flags, config or arguments: the message names the setting, the value and what is allowed. */
export const EXIT_USAGE = 2;
