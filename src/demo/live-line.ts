/**
 * The demo's live figures while the load runs: the LSN written to the archive, MiB/s, lag behind the
 * server, segments.
 * On a terminal one line redrawn in place (ProgressLine); otherwise a plain line every two seconds.
 */
import { formatLsn } from '../lsn.js';
import { ProgressLine } from '../cli/progress.js';
import { formatBytes } from '../units.js';

export interface LiveFigures {
  /** What walstream has written into the archive (fsynced at each segment's end), or null before streaming starts. */
  writeLsn: bigint | null;
  /** The server's latest known end of WAL. */
  serverLsn: bigint;
  segments: number;
  /** WAL the load has written so far, and the target. */
  walDone: number;
  walTarget: number;
}

const MiB = 1024 * 1024;
const PLAIN_INTERVAL_MS = 2000;

export class LiveLine {
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly line: ProgressLine;
  private timer: NodeJS.Timeout | null = null;
  private last: { at: number; lsn: bigint } | null = null;

  constructor(private readonly figures: () => LiveFigures) {
    this.line = new ProgressLine(true, () => figures().writeLsn, (rate) => this.render(rate));
  }

  private render(rate: string): string {
    const f = this.figures();
    const lag = f.writeLsn === null || f.serverLsn <= f.writeLsn ? 0n : f.serverLsn - f.writeLsn;
    const written = f.writeLsn === null ? '–' : formatLsn(f.writeLsn);
    return `  archived ${written}  ${rate}  lag ${formatBytes(lag)}  ${f.segments} segments  load ${(f.walDone / MiB).toFixed(0)}/${(f.walTarget / MiB).toFixed(0)} MiB`;
  }

  /** Start drawing (terminal) or printing (otherwise). */
  begin(): void {
    if (this.tty) return this.line.begin();
    this.timer = setInterval(() => {
      const lsn = this.figures().writeLsn;
      if (lsn === null) return;
      const now = performance.now();
      const rate = this.last ? `${(Number(lsn - this.last.lsn) / MiB / ((now - this.last.at) / 1000)).toFixed(0)} MiB/s` : '– MiB/s';
      this.last = { at: now, lsn };
      process.stdout.write(this.render(rate) + '\n');
    }, PLAIN_INTERVAL_MS);
  }

  /** Clear the terminal line before other output. */
  clear(): void {
    this.line.clear();
  }

  /** Stop and clear. */
  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.line.end();
  }
}
