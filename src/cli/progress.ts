/**
 * A live progress line on a terminal: redrawn with \r at most 4 times a second, cleared at the end,
 * nothing at all when stderr is not a terminal (logs and pipes stay clean).
 */

import { formatBytes } from '../units.js';

export { formatBytes };

const MiB = 1024 * 1024;

/** Draws `render(rate)` where rate is MiB/s over the last two seconds of `position()`. */
export class ProgressLine {
  private readonly tty: boolean;
  private timer: NodeJS.Timeout | null = null;
  private window: { at: number; position: bigint }[] = [];
  private width = 0;

  constructor(enabled: boolean, private readonly position: () => bigint | null, private readonly render: (rate: string) => string) {
    this.tty = enabled && Boolean(process.stderr.isTTY);
  }

  begin(): void {
    if (!this.tty || this.timer) return;
    this.timer = setInterval(() => this.draw(), 250);
    this.timer.unref();
  }

  private draw(): void {
    const position = this.position();
    if (position === null) return;
    const now = performance.now();
    this.window.push({ at: now, position });
    while (this.window.length > 1 && now - this.window[0]!.at > 2000) this.window.shift();
    const first = this.window[0]!;
    const seconds = (now - first.at) / 1000;
    const rate = seconds > 0 ? `${(Number(position - first.position) / MiB / seconds).toFixed(0)} MiB/s` : '– MiB/s';
    const line = this.render(rate);
    this.width = Math.max(this.width, line.length);
    process.stderr.write('\r' + line.padEnd(this.width));
  }

  /** Clear the line before other output (a log line), so they do not mix. */
  clear(): void {
    if (this.tty && this.width > 0) process.stderr.write('\r' + ' '.repeat(this.width) + '\r');
    this.width = 0;
  }

  /** Stop drawing and clear the line. */
  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.clear();
  }
}
