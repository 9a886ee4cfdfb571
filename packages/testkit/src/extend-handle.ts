import type { ServerHandle } from "./managed-server.js";

/**
 * Adds read-only address fields to a handle without copying it: spreading would freeze the
 * live `pid`/`running` getters at their current values.
 */
export function extendHandle<T extends object>(handle: ServerHandle, extra: T): ServerHandle & Readonly<T> {
  const extended = Object.create(handle) as ServerHandle & T;
  for (const [key, value] of Object.entries(extra)) {
    Object.defineProperty(extended, key, { value, enumerable: true });
  }
  return extended;
}
