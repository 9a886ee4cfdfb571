export { runCli } from "./cli.js";
export type { SluiceCommand } from "./command.js";
export { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./command.js";
