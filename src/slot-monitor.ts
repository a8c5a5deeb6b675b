/**
 * The guard for the primary's disk: every interval, a short SQL connection reads what the slot holds
 * back on the server (slot-probe.ts). Over the limit it warns (once a minute) and, only when told to
 * ('release'), advances the slot to the server's position so the server may remove that WAL: the
 * archive then has a gap, which the Archiver records as a marker when it next starts streaming.
 */
import type { ConnectionTarget } from './conninfo.js';
import { PgError } from './errors.js';
import { formatLsn } from './lsn.js';
import { formatBytes } from './units.js';
import { advanceSlot, probeSlot, type SlotReport } from './slot-probe.js';

export interface SlotMonitorOptions {
  slot: string;
  /** The server to ask: the archiver's current target. */
  target: () => ConnectionTarget;
  intervalMs: number;
  /** Bytes the slot may hold back before the guard acts (undefined: only measure). */
  maxRetained?: bigint;
  /** Over the limit: 'warn' (default) only warns; 'release' advances the slot, leaving a gap. */
  onLimit?: 'warn' | 'release';
  /** Bounds each connection and query (ms). */
  timeoutMs: number;
  log: (level: 'info' | 'warn' | 'debug', message: string) => void;
  /** Each successful check. */
  checked: (report: SlotReport) => void;
  /** The slot was advanced from `fromLsn` to `toLsn` (release). */
  released: (fromLsn: bigint, toLsn: bigint) => void;
  /**
   * Run `release` only while no connection is choosing its start or streaming, and hold the next one
   * until it is done; returns null (skipped: the next check tries again) when one is.
   */
  whenIdle: (release: () => Promise<void>) => Promise<void> | null;
  /** A one-line reason the archive is behind, for the warning (the archiver's last error). */
  reason: () => string | null;
}

/** Warnings that would repeat (over the limit, a failing check) are logged at most this often. */
const WARN_INTERVAL_MS = 60_000;

/** Checks a slot every interval until stop(); see the module comment. */
export class SlotMonitor {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private readonly warnedAt = new Map<string, number>();

  constructor(private readonly options: SlotMonitorOptions) {}

  /** Check now, then every intervalMs. */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Stop checking; resolves once a check in progress has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.checkOnce().finally(() => { this.running = null; this.schedule(this.options.intervalMs); });
    }, ms);
    this.timer.unref();
  }

  /** Log a warning of kind `key` at most once a minute; debug otherwise. */
  private warnSometimes(key: string, message: string): void {
    const last = this.warnedAt.get(key) ?? -Infinity;
    if (Date.now() - last >= WARN_INTERVAL_MS) {
      this.warnedAt.set(key, Date.now());
      this.options.log('warn', `${message} (this warning repeats once a minute)`);
    } else {
      this.options.log('debug', message);
    }
  }

  /** One check: measure, and act on the limit. Never throws. */
  async checkOnce(): Promise<void> {
    const { slot, target, timeoutMs } = this.options;
    let report: SlotReport;
    try {
      report = await probeSlot(target(), slot, timeoutMs);
    } catch (err) {
      this.warnSometimes('probe', `could not check replication slot "${slot}": ${(err as Error).message}`);
      return;
    }
    this.warnedAt.delete('probe');
    this.options.checked(report);
    const limit = this.options.maxRetained;
    if (limit === undefined || report.retainedBytes === null || report.retainedBytes <= limit) {
      this.warnedAt.delete('limit');
      return;
    }
    const reason = this.options.reason();
    this.warnSometimes('limit', `replication slot "${slot}" holds back ${formatBytes(report.retainedBytes)} of WAL on the server ` +
      `(restart_lsn ${formatLsn(report.restartLsn!)}, server at ${formatLsn(report.serverLsn)}), over --max-slot-retained ${formatBytes(limit)}` +
      (reason ? `; walstream is behind: ${reason}` : '') +
      (this.options.onLimit === 'release' ? '' : '; --on-slot-limit=release would release it (leaving a gap in the archive)'));
    if (this.options.onLimit === 'release') await this.options.whenIdle(() => this.release(report));
  }

  private async release(report: SlotReport): Promise<void> {
    const { slot } = this.options;
    try {
      const to = await advanceSlot(this.options.target(), slot, report.serverLsn, this.options.timeoutMs);
      this.options.log('warn', `released replication slot "${slot}": advanced it from ${formatLsn(report.restartLsn!)} to ${formatLsn(to)} (--on-slot-limit=release); the server may now remove that WAL, and the archive will have a gap there`);
      this.options.released(report.restartLsn!, to);
    } catch (err) {
      // 55006: walstream's own stream holds the slot right now; the next check tries again.
      const active = err instanceof PgError && err.code === '55006';
      this.warnSometimes('release', `could not release replication slot "${slot}"${active ? ' while it is in use' : ''}: ${(err as Error).message}`);
    }
  }
}
