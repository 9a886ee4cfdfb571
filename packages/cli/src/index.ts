export { runCli } from "./cli.js";
export type { SluiceCommand } from "./command.js";
export { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./command.js";
export { EXIT_UNREACHABLE, SharedStateUnreachableError } from "./events/errors.js";
export type { EventsIo } from "./events/events-command.js";
export { eventsCommand, runEvents } from "./events/events-command.js";
export type { StatusIo } from "./status/status-command.js";
export { runStatus, statusCommand } from "./status/status-command.js";
export type { StatusReport } from "./status/status-report.js";
