/**
 * `walstream status` as a library function: the archive's state (archive/archive-status.ts; a directory,
 * or a bucket through ArchiveReader), and with a connection the slot's (slot-probe.ts), judged against
 * thresholds into a Nagios-style verdict:
 * 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, with one message per problem naming it.
 */
import { type ArchiveReport, readArchiveReport } from './archive/archive-status.js';
import { describeGap } from './archive/gaps.js';
import type { ArchiveReader } from './archive/reader.js';
import { type ConnectionOptions, targetsFor } from './conninfo.js';
import { formatLsn } from './lsn.js';
import { type SlotReport, probeSlot } from './slot-probe.js';
import { formatBytes, formatDuration } from './units.js';

/** A threshold: over `warning` is a WARNING, over `critical` a CRITICAL (either may be absent). */
export interface Threshold {
  warning?: number;
  critical?: number;
}

export interface CheckOptions {
  /** The archive directory; or give `archive`. */
  directory?: string;
  /** The archive to check, in place of `directory` (an S3Store for a bucket). */
  archive?: ArchiveReader;
  /** Server to ask about the slot and its position (optional). */
  connection?: ConnectionOptions | string;
  /** Slot to check (with `connection`). */
  slot?: string;
  /** Seconds since WAL was last written to the archive. */
  maxAge?: Threshold;
  /** Bytes the archive is behind the server (needs `connection`). */
  maxLag?: Threshold;
  /** Bytes the slot holds back on the server (needs `connection` and `slot`). */
  maxRetained?: Threshold;
  /** Clock for ages (tests); default Date.now(). */
  now?: number;
  env?: NodeJS.ProcessEnv;
}

export type CheckLevel = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';
const EXIT: Record<CheckLevel, number> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };

export interface CheckResult {
  level: CheckLevel;
  /** Nagios exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. */
  exitCode: number;
  problems: { level: Exclude<CheckLevel, 'OK'>; message: string }[];
  archive: ArchiveReport | null;
  slot: SlotReport | null;
  /** Seconds since WAL was last written (null for an empty archive). */
  ageSeconds: number | null;
  /** Bytes between the server's position and what the archive holds (null without a connection). */
  lagBytes: bigint | null;
}

/** The verdict of several problems: CRITICAL beats UNKNOWN beats WARNING. */
function worst(levels: CheckLevel[]): CheckLevel {
  if (levels.includes('CRITICAL')) return 'CRITICAL';
  if (levels.includes('UNKNOWN')) return 'UNKNOWN';
  return levels.includes('WARNING') ? 'WARNING' : 'OK';
}

/** The level `value` reaches against `threshold`, or null when within it. */
function over(value: number, threshold: Threshold | undefined): 'WARNING' | 'CRITICAL' | null {
  if (threshold?.critical !== undefined && value > threshold.critical) return 'CRITICAL';
  if (threshold?.warning !== undefined && value > threshold.warning) return 'WARNING';
  return null;
}

const limitText = (threshold: Threshold, level: 'WARNING' | 'CRITICAL', format: (n: number) => string) =>
  format((level === 'CRITICAL' ? threshold.critical : threshold.warning)!);

/**
 * Check the archive (and, with a connection, the slot and the server's position) against the
 * thresholds. Never rejects: an unreadable archive or an unreachable server is an UNKNOWN problem.
 */
export async function checkArchive(options: CheckOptions): Promise<CheckResult> {
  const problems: CheckResult['problems'] = [];
  const problem = (level: Exclude<CheckLevel, 'OK'>, message: string) => problems.push({ level, message });
  const now = options.now ?? Date.now();
  let archive: ArchiveReport | null = null;
  const where = options.archive?.describe() ?? options.directory;
  try {
    if (options.archive === undefined && options.directory === undefined) throw new Error('no archive given (directory or archive)');
    archive = await readArchiveReport(options.archive ?? options.directory!);
  } catch (err) {
    problem('UNKNOWN', `cannot read the archive${where ? ` ${where}` : ''}: ${(err as Error).message}`);
  }
  let ageSeconds: number | null = null;
  if (archive) {
    if (archive.newest === null && archive.partials.length === 0) problem('WARNING', `the archive ${where} holds no WAL segment`);
    if (archive.lastWriteMs !== null) {
      ageSeconds = Math.max(0, (now - archive.lastWriteMs) / 1000);
      const level = over(ageSeconds, options.maxAge);
      if (level) problem(level, `stale archive: WAL last written ${formatDuration(ageSeconds)} ago, over --max-age ${limitText(options.maxAge!, level, formatDuration)}`);
    }
    for (const gap of archive.gaps) {
      const what = `${gap.missing} segment${gap.missing === 1 ? '' : 's'} missing on timeline ${gap.timeline}, ${gap.firstMissing}${gap.missing > 1 ? ` to ${gap.lastMissing}` : ''}`;
      if (gap.marker) problem('WARNING', `known gap in the archive: ${what} (recorded as ${gap.marker.fileName}: the slot was released or streaming restarted at the server's position)`);
      else problem('CRITICAL', `gap in the archive: ${what}`);
    }
    for (const marker of archive.markers) {
      if (!archive.gaps.some((g) => g.marker === marker)) problem('WARNING', `recorded gap ${marker.fileName}: WAL of ${describeGap(marker)} is missing`);
    }
    for (const p of archive.partials.filter((x) => x.belowNewest && x.timeline === archive!.newest?.timeline)) {
      problem('WARNING', `${p.fileName} is below the newest segment: its completion failed (receive resumes from it)`);
    }
  }
  let slot: SlotReport | null = null;
  let lagBytes: bigint | null = null;
  if (options.connection !== undefined) {
    try {
      const target = targetsFor(options.connection, options.env)[0]!;
      slot = await probeSlot(target, options.slot ?? '');
      const archived = [archive?.archivedLsn ?? 0n, options.slot && slot.restartLsn !== null ? slot.restartLsn : 0n].reduce((a, b) => (a > b ? a : b));
      lagBytes = slot.serverLsn > archived ? slot.serverLsn - archived : 0n;
      const lagLevel = over(Number(lagBytes), options.maxLag);
      if (lagLevel) problem(lagLevel, `archive behind the server by ${formatBytes(lagBytes)} (server at ${formatLsn(slot.serverLsn)}), over --max-lag ${limitText(options.maxLag!, lagLevel, formatBytes)}`);
      if (options.slot) checkSlot(slot, options.maxRetained, problem);
    } catch (err) {
      problem('UNKNOWN', `cannot check the server: ${(err as Error).message}`);
      slot = null;
    }
  }
  const level = worst(problems.map((p) => p.level));
  return { level, exitCode: EXIT[level], problems, archive, slot, ageSeconds, lagBytes };
}

/** The slot's own problems: missing, invalidated, not in use, holding back too much. */
function checkSlot(slot: SlotReport, maxRetained: Threshold | undefined, problem: (level: 'WARNING' | 'CRITICAL', message: string) => void): void {
  const name = `replication slot "${slot.slot}"`;
  if (!slot.exists) return problem('CRITICAL', `${name} does not exist: the server keeps no WAL for the archive (receive --create-slot makes it)`);
  if (slot.walStatus === 'lost') problem('CRITICAL', `${name} is invalidated (wal_status lost): the server removed WAL it held, the archive has a gap`);
  else if (slot.walStatus === 'unreserved') problem('WARNING', `${name} is about to lose WAL (wal_status unreserved, past max_slot_wal_keep_size)`);
  if (!slot.active) problem('WARNING', `${name} is not in use: no walstream receive is streaming from it`);
  if (slot.retainedBytes !== null) {
    const level = over(Number(slot.retainedBytes), maxRetained);
    if (level) problem(level, `${name} holds back ${formatBytes(slot.retainedBytes)} of WAL on the server, over --max-retained ${limitText(maxRetained!, level, formatBytes)}`);
  }
}
