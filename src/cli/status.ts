/**
 * `walstream status -D ARCHIVE [-d CONNSTR] [-S SLOT] [--json] [--max-age D] [--max-lag S] [--max-retained S]`:
 * the archive's state for people and for check-style monitoring, with Nagios exit codes (0 OK,
 * 1 WARNING, 2 CRITICAL, 3 UNKNOWN). A thin layer over checkArchive(). `--source s3://BUCKET/PREFIX`
 * (with --s3-endpoint, --s3-path-style) reports on a bucket instead of -D, through the same code (an
 * ArchiveReader); the SDK loads only then.
 */
import { Command } from 'commander';
import { type CheckResult, type Threshold, checkArchive } from '../archive-check.js';
import { describeGap } from '../archive/gaps.js';
import { type SourceFlags, addS3Options, archiveFromFlags } from './bucket-flags.js';
import { formatLsn } from '../lsn.js';
import { formatBytes, formatDuration, parseByteSize, parseDuration } from '../units.js';
import { WalstreamError } from '../errors.js';

interface StatusFlags extends SourceFlags {
  dbname?: string;
  slot?: string;
  json?: boolean;
  maxAge?: string;
  maxLag?: string;
  maxRetained?: string;
}

/** "CRIT" or "WARN,CRIT": one value is the CRITICAL limit; two give the WARNING and CRITICAL limits. */
export function parseThreshold(text: string | undefined, flag: string, parse: (value: string, flag: string) => number): Threshold | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(',');
  if (parts.length > 2) throw new WalstreamError('BAD_OPTION', `invalid ${flag} "${text}": give one limit (critical) or two, WARNING,CRITICAL`);
  const values = parts.map((p) => parse(p, flag));
  return values.length === 1 ? { critical: values[0] } : { warning: values[0], critical: values[1] };
}

const lsn = (v: bigint | null) => (v === null ? null : formatLsn(v));

/** The result as JSON: LSNs as "X/X", sizes as numbers of bytes. */
function toJson(r: CheckResult): unknown {
  const a = r.archive;
  return {
    status: r.level, exitCode: r.exitCode, problems: r.problems, ageSeconds: r.ageSeconds, lagBytes: r.lagBytes === null ? null : Number(r.lagBytes),
    archive: a && {
      directory: a.directory, segmentSize: a.segmentSize, segmentSizeKnown: a.segmentSizeKnown, systemId: a.systemId, segments: a.segments, timelines: a.timelines,
      newest: a.newest && { name: a.newest.fileName, timeline: a.newest.timeline, modified: new Date(a.newest.mtimeMs).toISOString() },
      partials: a.partials.map((p) => ({ name: p.fileName, timeline: p.timeline, modified: new Date(p.mtimeMs).toISOString(), belowNewest: p.belowNewest })),
      archivedLsn: lsn(a.archivedLsn),
      gaps: a.gaps.map((g) => ({ timeline: g.timeline, firstMissing: g.firstMissing, lastMissing: g.lastMissing, missing: g.missing, fromLsn: lsn(g.fromLsn), toLsn: lsn(g.toLsn), marker: g.marker?.fileName ?? null })),
      markers: a.markers.map((m) => ({ name: m.fileName, timeline: m.timeline, fromLsn: lsn(m.fromLsn), toLsn: lsn(m.toLsn) })),
      setAside: a.setAside,
    },
    slot: r.slot && { name: r.slot.slot, exists: r.slot.exists, active: r.slot.active, walStatus: r.slot.walStatus, restartLsn: lsn(r.slot.restartLsn), serverLsn: lsn(r.slot.serverLsn), retainedBytes: r.slot.retainedBytes === null ? null : Number(r.slot.retainedBytes) },
  };
}

/** The result for people: a Nagios first line (verdict, problems, performance data), then details. */
function toText(r: CheckResult): string {
  const perf = [
    r.ageSeconds !== null ? `age=${Math.round(r.ageSeconds)}s` : null,
    r.lagBytes !== null ? `lag=${r.lagBytes}B` : null,
    r.slot?.retainedBytes != null ? `retained=${r.slot.retainedBytes}B` : null,
    r.archive ? `segments=${r.archive.segments}` : null,
  ].filter(Boolean).join(' ');
  const summary = r.problems.length ? r.problems.map((p) => p.message).join('; ') : 'archive healthy';
  const lines = [`WALSTREAM ${r.level}: ${summary}${perf ? ` | ${perf}` : ''}`];
  const a = r.archive;
  if (a) {
    lines.push(`archive: ${a.directory} (${a.segments} complete segments of ${formatBytes(a.segmentSize)}${a.segmentSizeKnown ? '' : ', size assumed'}${a.systemId ? `, system ${a.systemId}` : ''})`);
    lines.push(`timelines: ${a.timelines.join(', ') || 'none'}`);
    if (a.newest) lines.push(`newest segment: ${a.newest.fileName}, written ${formatDuration((Date.now() - a.newest.mtimeMs) / 1000)} ago`);
    for (const p of a.partials) lines.push(`partial: ${p.fileName}, written ${formatDuration((Date.now() - p.mtimeMs) / 1000)} ago${p.belowNewest ? ' (below the newest segment)' : ''}`);
    lines.push(`gaps: ${a.gaps.length ? a.gaps.map((g) => `${g.firstMissing}..${g.lastMissing}${g.marker ? ' (recorded)' : ''}`).join(', ') : 'none'}`);
    for (const m of a.markers) lines.push(`gap marker: ${m.fileName} (${describeGap(m)})`);
    for (const s of a.setAside) lines.push(`set aside: ${s}`);
  }
  if (r.slot) {
    const s = r.slot;
    lines.push(`server at ${formatLsn(s.serverLsn)}${r.lagBytes !== null ? `, archive ${formatBytes(r.lagBytes)} behind` : ''}`);
    if (s.slot) lines.push(s.exists ? `slot "${s.slot}": ${s.active ? 'active' : 'not in use'}, wal_status ${s.walStatus ?? '-'}, restart_lsn ${s.restartLsn === null ? '-' : formatLsn(s.restartLsn)}, holds back ${s.retainedBytes === null ? '-' : formatBytes(s.retainedBytes)}` : `slot "${s.slot}": does not exist`);
  }
  return lines.join('\n') + '\n';
}

/** The `status` command definition. */
export function statusCommand(): Command {
  const command = new Command('status')
    .description('report the archive\'s state (and the slot\'s, with -d) with Nagios exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN')
    .option('-D, --directory <dir>', 'archive directory')
    .option('-d, --dbname <connstr>', 'connection string or URI of the server: adds the slot\'s state, what it holds back, and the lag')
    .option('-S, --slot <name>', 'replication slot to check (with -d)')
    .option('--json', 'print the report as JSON')
    .option('--max-age <duration>', 'how long ago WAL may have last been written (90s, 15m, 2h; WARN,CRIT for two levels)')
    .option('--max-lag <size>', 'how far the archive may be behind the server (64MB; WARN,CRIT), with -d')
    .option('--max-retained <size>', 'how much WAL the slot may hold back on the server (10GB; WARN,CRIT), with -d and -S')
    .optionsGroup('Object storage options:')
    .option('--source <s3://bucket/prefix>', 'report on this bucket instead of a directory (what receive --target uploads; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...; region from AWS_REGION)');
  return addS3Options(command)
    .addHelpText('after', `
One limit is the CRITICAL level; two (WARN,CRIT) add a WARNING level. Problems: a gap in the archive
(CRITICAL; WARNING when walstream recorded it knowingly as a walstream.gap.* marker), a stale archive,
a .partial below the newest segment (a failed completion), an empty archive (WARNING); with -d -S a
missing or invalidated slot (CRITICAL), a slot nobody streams from (WARNING). An unreadable archive or
an unreachable server is UNKNOWN (3). With --source, WAL's age is from the objects' upload times.`)
    .action(async (flags: StatusFlags) => {
      const archive = archiveFromFlags(flags); // not contacted yet: nothing to close if a threshold is bad
      const thresholds = {
        maxAge: parseThreshold(flags.maxAge, '--max-age', parseDuration),
        maxLag: parseThreshold(flags.maxLag, '--max-lag', parseByteSize),
        maxRetained: parseThreshold(flags.maxRetained, '--max-retained', parseByteSize),
      };
      let result: CheckResult;
      try {
        result = await checkArchive({
          archive,
          connection: flags.dbname,
          slot: flags.slot,
          ...thresholds,
        });
      } finally {
        await archive.close?.();
      }
      process.stdout.write(flags.json ? JSON.stringify(toJson(result), null, 2) + '\n' : toText(result));
      process.exitCode = result.exitCode;
    });
}
