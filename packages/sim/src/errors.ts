// Errors of the simulator. One class per failure kind, `name` set, the original error kept as `cause`.

/** A trace file that cannot be read as the declared format; `line` is 1-based (0 when not line-bound). */
export class TraceFormatError extends Error {
  override readonly name = "TraceFormatError";
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, message: string, options?: ErrorOptions) {
    super(line > 0 ? `${file}:${line}: ${message}` : `${file}: ${message}`, options);
    this.file = file;
    this.line = line;
  }
}

/** Invalid simulator options or command-line flags; the CLI turns it into exit code 2. */
export class SimUsageError extends Error {
  override readonly name = "SimUsageError";
}

/**
 * The event queue ran dry while a request was still in flight: an engine model had work it could never
 * schedule. A bug in the engine model or an engine configuration that cannot serve the trace.
 */
export class SimulationStalledError extends Error {
  override readonly name = "SimulationStalledError";
  readonly requestIndex: number;
  constructor(requestIndex: number, atMs: number, options?: ErrorOptions) {
    super(`simulation stalled at ${atMs.toFixed(1)} ms: request ${requestIndex} never finished`, options);
    this.requestIndex = requestIndex;
  }
}

/** Something needed the cluster's capacity, but the search did not find one (see its probes). */
export class CapacityNotFoundError extends Error {
  override readonly name = "CapacityNotFoundError";
}
