/**
 * When `sluice up` starts a process it sets SLUICE_PARENT_PID. If `up` itself dies without a
 * chance to clean up (SIGKILL, OOM), its children notice within a second and stop gracefully,
 * so a local stack never leaves processes behind.
 */
export function watchParent(env: NodeJS.ProcessEnv, pollMs = 1000): void {
  const raw = env.SLUICE_PARENT_PID;
  if (raw === undefined || raw === "") return;
  const parentPid = Number(raw);
  if (!Number.isInteger(parentPid) || parentPid <= 1) return;
  const timer = setInterval(() => {
    if (isAlive(parentPid)) return;
    clearInterval(timer);
    process.kill(process.pid, "SIGTERM");
  }, pollMs);
  timer.unref();
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM means it exists but belongs to someone else: still alive.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
