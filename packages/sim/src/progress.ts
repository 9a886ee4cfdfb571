// A one-line progress bar on stderr, redrawn at most every 100 ms of wall time. Only stderr, so `--json`
// on stdout stays parseable.

export interface ProgressSink {
  write(chunk: string): unknown;
}

export interface ProgressBar {
  update(fraction: number, label: string): void;
  done(): void;
}

const WIDTH = 30;
const REDRAW_MS = 100;

export function createProgressBar(sink: ProgressSink, now: () => number = Date.now): ProgressBar {
  let lastDraw = Number.NEGATIVE_INFINITY;
  let drawn = false;
  return {
    update(fraction: number, label: string): void {
      const t = now();
      if (t - lastDraw < REDRAW_MS) return;
      lastDraw = t;
      const f = Math.min(1, Math.max(0, fraction));
      const filled = Math.round(f * WIDTH);
      sink.write(
        `\r[${"#".repeat(filled)}${".".repeat(WIDTH - filled)}] ${(f * 100).toFixed(0).padStart(3)}% ${label}\x1b[K`,
      );
      drawn = true;
    },
    done(): void {
      if (drawn) sink.write("\r\x1b[K");
      drawn = false;
    },
  };
}

/** A bar that draws nothing (stderr is not a terminal and --progress was not given). */
export const SILENT_PROGRESS: ProgressBar = Object.freeze({ update() {}, done() {} });
