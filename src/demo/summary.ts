/** The demo's closing text: what was archived, how fast, and the commands for a real server. */
import { formatBytes } from '../units.js';

export interface DemoFigures {
  archiveDir: string;
  /** Complete segments per timeline, e.g. { 1: 12, 2: 1 }. */
  segments: Record<number, number>;
  historyFiles: number;
  archiveBytes: number;
  records: number;
  loadWalBytes: number;
  loadSeconds: number;
  /** Seconds from the primary's stop to walstream streaming timeline 2. */
  failoverSeconds: number;
  rows: number;
  restoreSeconds: number;
  totalSeconds: number;
  kept: boolean;
}

const MiB = 1024 * 1024;

/** The summary lines (no trailing newline). */
export function summaryText(f: DemoFigures): string {
  const perTimeline = Object.entries(f.segments).map(([tli, n]) => `${n} on timeline ${tli}`).join(', ');
  return [
    '',
    'Summary',
    `  archived   ${perTimeline}, ${f.historyFiles} history file${f.historyFiles === 1 ? '' : 's'}: ${formatBytes(f.archiveBytes)} in ${f.kept ? f.archiveDir : 'the archive (removed; --keep keeps it)'}`,
    `  verified   ${f.records} WAL records, every CRC and link sound`,
    `  throughput ${(f.loadWalBytes / MiB).toFixed(0)} MiB of WAL in ${f.loadSeconds.toFixed(1)} s under load, archived as it was written (${(f.loadWalBytes / MiB / f.loadSeconds).toFixed(0)} MiB/s)`,
    `  failover   on the new timeline ${f.failoverSeconds.toFixed(1)} s after the primary stopped`,
    `  restore    a base backup recovered from the archive alone: ${f.rows} rows, the same as the new primary (${f.restoreSeconds.toFixed(1)} s)`,
    `  total      ${f.totalSeconds.toFixed(0)} s`,
    '',
    'The same against a real server (a role with REPLICATION and a `replication` line in pg_hba.conf):',
    '  walstream receive -D /var/lib/walstream/archive -d "host=PRIMARY user=replicator" -S walstream --create-slot --if-not-exists   # and on the standby',
    '  walstream receive -D /var/lib/walstream/archive -d "host=PRIMARY,STANDBY user=replicator" -S walstream --progress',
    '  walstream verify -D /var/lib/walstream/archive',
    "  restore_command = 'walstream restore %f %p -D /var/lib/walstream/archive'",
    '(run the installed bin, node_modules/.bin/walstream or a global install, under systemd or in a container: see the README)',
  ].join('\n');
}
