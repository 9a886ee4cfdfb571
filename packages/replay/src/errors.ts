// Errors of `sluice replay`. One class per failure kind, `name` set, the original error kept as `cause`.

/** Invalid flags or options; the CLI turns it into exit code 2. */
export class ReplayUsageError extends Error {
  override readonly name = "ReplayUsageError";
}
