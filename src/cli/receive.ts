/**
 * `walstream receive`: pg_receivewal's flags over the Archiver. Flag meanings follow pg_receivewal 15
 * (src/bin/pg_basebackup/pg_receivewal.c); where walstream differs it says so in --help.
 */
import { Command, Option } from 'commander';
import { parseCompression, loadCodec } from '../archive/codec.js';
import { Archiver } from '../archiver.js';
import { type ConnectionOptions, targetsFor } from '../conninfo.js';
import { ReplicationConnection } from '../connection.js';
import { WalstreamError } from '../errors.js';
import { formatLsn, parseLsn } from '../lsn.js';
import { ProgressLine } from './progress.js';
import { type LogFn, createLogger } from './log.js';
import { type MonitoringFlags, addMonitoringOptions, logFormatOf, monitoringArchiverOptions, startMetricsFromFlags } from './monitoring.js';
import { promptPassword } from './prompt.js';
import { type TargetFlags, addTargetOptions, bucketFromFlags } from './bucket-flags.js';
import { packageVersion } from './version.js';

interface ReceiveFlags extends MonitoringFlags, TargetFlags {
  directory?: string;
  verify?: boolean;
  dbname?: string;
  host?: string;
  port?: string;
  username?: string;
  password?: boolean;
  slot?: string;
  createSlot?: boolean;
  dropSlot?: boolean;
  ifNotExists?: boolean;
  endpos?: string;
  loop: boolean;
  statusInterval: string;
  synchronous?: boolean;
  sync: boolean;
  directIo: boolean;
  verbose?: boolean;
  startAtServerPosition?: boolean;
  progress?: boolean;
  timeout: string;
  onArchiveError: string;
  compress?: string;
}

/** pg_receivewal's usage errors carry this hint (pg_receivewal.c main()). */
const HELP_HINT = 'Try "walstream receive --help" for more information.';

function usageError(message: string): WalstreamError {
  return new WalstreamError('BAD_OPTION', `${message}. ${HELP_HINT}`);
}

function parseTimeout(text: string): number {
  const seconds = Number(text);
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > 2147483) {
    throw new WalstreamError('BAD_OPTION', `invalid timeout "${text}": give whole seconds, 0 to wait forever (--timeout 60)`);
  }
  return seconds;
}

function parseStatusInterval(text: string): number {
  const seconds = Number(text);
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > 2147483) {
    throw new WalstreamError('BAD_OPTION', `invalid status interval "${text}": give whole seconds, 0 or more (-s 10)`);
  }
  return seconds;
}

/** The connection options the flags describe: -d is the connection string, -h/-p/-U override it (as in pg_receivewal). */
async function connectionFrom(flags: ReceiveFlags): Promise<ConnectionOptions> {
  const options: ConnectionOptions = { connectionString: flags.dbname, host: flags.host, port: flags.port, user: flags.username };
  if (flags.password) options.password = await promptPassword('Password: ');
  return options;
}

async function runSlotCommand(flags: ReceiveFlags, connection: ConnectionOptions): Promise<void> {
  // Like libpq (and so pg_receivewal): the first host of a multi-host connection string that answers.
  const conn = await ReplicationConnection.openFirst(targetsFor(connection));
  try {
    if (flags.dropSlot) {
      if (flags.verbose) process.stderr.write(`walstream: dropping replication slot "${flags.slot}"\n`);
      await conn.dropSlot(flags.slot!);
    }
    if (flags.createSlot) {
      if (flags.verbose) process.stderr.write(`walstream: creating replication slot "${flags.slot}"\n`);
      await conn.createSlot(flags.slot!, Boolean(flags.ifNotExists));
    }
  } finally {
    await conn.close();
  }
}

async function receive(flags: ReceiveFlags): Promise<void> {
  let endLsn: bigint | undefined;
  try {
    endLsn = flags.endpos !== undefined ? parseLsn(flags.endpos) : undefined;
  } catch (err) {
    throw new WalstreamError('BAD_LSN', `-E/--endpos: ${(err as Error).message}`);
  }
  const statusIntervalSeconds = parseStatusInterval(flags.statusInterval);
  const timeoutSeconds = parseTimeout(flags.timeout);
  if (flags.onArchiveError !== 'retry' && flags.onArchiveError !== 'exit') {
    throw new WalstreamError('BAD_OPTION', `invalid --on-archive-error "${flags.onArchiveError}": give retry or exit`);
  }
  // pg_receivewal's conflicts, in its order and words (pg_receivewal.c main()).
  if (flags.createSlot && flags.dropSlot) throw usageError('cannot use --create-slot together with --drop-slot');
  if ((flags.createSlot || flags.dropSlot) && !flags.slot) {
    throw usageError(`${flags.dropSlot ? '--drop-slot' : '--create-slot'} needs a slot to be specified using --slot`);
  }
  if (flags.synchronous && !flags.sync) throw usageError('cannot use --synchronous together with --no-sync');
  if (!flags.directory && !flags.createSlot && !flags.dropSlot) {
    throw usageError('no target directory specified (add -D/--directory DIR)');
  }
  const compression = flags.compress !== undefined ? parseCompression(flags.compress) : undefined;
  const bucket = bucketFromFlags(flags, (line) => process.stderr.write(`walstream: warning: ${line}\n`));
  if (compression) await loadCodec(compression.method); // a missing optional package fails before connecting
  const connection = await connectionFrom(flags);
  if (flags.createSlot || flags.dropSlot) {
    // As pg_receivewal: create or drop the slot, then exit.
    await runSlotCommand(flags, connection);
    return;
  }

  const archiver = new Archiver({
    connection,
    directory: flags.directory,
    slot: flags.slot,
    endLsn,
    synchronous: flags.synchronous,
    noSync: !flags.sync,
    directIo: flags.directIo,
    compression,
    bucket,
    statusIntervalSeconds,
    loop: flags.loop,
    startAtServerPosition: flags.startAtServerPosition,
    timeoutSeconds,
    onArchiveError: flags.onArchiveError as 'retry' | 'exit',
    verify: flags.verify,
    ...monitoringArchiverOptions(flags),
  });
  let segments = 0;
  const progress = new ProgressLine(Boolean(flags.progress), () => archiver.positions()?.writeLsn ?? null, (rate) => {
    const p = archiver.positions()!;
    return `  received ${formatLsn(p.writeLsn)}  flushed ${formatLsn(p.flushLsn)}  ${rate}  timeline ${p.timeline}  ${segments} segments archived`;
  });
  const say: LogFn = createLogger(logFormatOf(flags), progress); // one line each, whatever the server's text holds
  archiver.on('log', ({ level, message }) => {
    if (level === 'warn' || flags.verbose) say(level, message);
  });
  archiver.on('segment', (s) => {
    segments++;
    if (flags.verbose) say('info', `finished segment ${s.name} (timeline ${s.timeline})`, { segment: s.name, timeline: s.timeline, lsn: s.endLsn, startLsn: s.startLsn });
  });
  if (flags.verbose) archiver.on('history', (h) => say('info', `wrote history file ${h.name}`));
  if (flags.verbose) archiver.on('verify', (v) => { if (v.ok) say('info', v.skipped ? `not verified (busy): segment ${v.name}` : `verified segment ${v.name}`); });
  const metrics = await startMetricsFromFlags(archiver, flags, say);
  progress.begin();
  const stop = () => archiver.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await archiver.run();
  } finally {
    progress.end();
    await metrics?.close();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** The `receive` command definition. */
export function receiveCommand(): Command {
  return addMonitoringOptions(addTargetOptions(new Command('receive')
    .description('stream WAL from a server into an archive directory (pg_receivewal\'s flags)')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .optionsGroup('Connection options:')
    .option('-d, --dbname <connstr>', 'libpq connection string or URI (postgresql://user@host:port/?sslmode=require); several hosts allowed')
    .option('-h, --host <host>', 'server host or socket directory (comma-separated list to try in turn)')
    .option('-p, --port <port>', 'server port (comma-separated list, one per host)')
    .option('-U, --username <name>', 'role to connect as (needs the REPLICATION attribute)')
    .option('-w, --no-password', 'never prompt for a password')
    .option('-W, --password', 'prompt for a password before connecting')
    .option('--timeout <seconds>', 'take the server for dead after this long without a message, and reconnect (0 = never; a reply is asked for at half of it, like wal_receiver_timeout)', '60')
    .optionsGroup('Archive options:')
    .option('-D, --directory <dir>', 'archive directory to write WAL segments and .history files to')
    .option('-Z, --compress <method[:level]>', 'compress segments as written: gzip, lz4, zstd or none, with an optional level (gzip:9, zstd:level=3); a bare digit is gzip at that level (pg_receivewal\'s syntax). Files NAME.gz, NAME.lz4, NAME.zst')
    .option('--synchronous', 'fsync and report the flush position after every batch of WAL, to serve as a synchronous standby')
    .addOption(new Option('--no-sync', 'do not fsync (not crash-safe: for tests)'))
    .option('--no-direct-io', 'write segments through the page cache instead of O_DIRECT (which is used where the filesystem supports it)')
    .option('--on-archive-error <action>', 'when the archive cannot be written (disk full, permissions): retry (keep trying, warn once a minute, resume from the first WAL not archived) or exit', 'retry')
    .option('--verify', 'check each segment once archived, as walstream verify does (CRC-32C of every record, prev-links, page headers); a warning per fault, never slows archiving')
    .optionsGroup('Slot options:')
    .option('-S, --slot <name>', 'replication slot to stream from (keeps the server from removing WAL not yet archived)')
    .option('--create-slot', 'create the replication slot named by --slot, then exit')
    .option('--drop-slot', 'drop the replication slot named by --slot, then exit')
    .option('--if-not-exists', 'with --create-slot: no error if the slot already exists')
    .option('--start-at-server-position', 'do not resume from the archive: start at the slot\'s or server\'s position (after "WAL segment has already been removed"; leaves a gap)')
    .optionsGroup('Behaviour:')
    .option('-E, --endpos <lsn>', 'exit after receiving WAL up to this LSN (e.g. 0/5000000)')
    .option('-n, --no-loop', 'do not reconnect after a lost connection: exit with an error')
    .option('-s, --status-interval <seconds>', 'seconds between status updates sent to the server (0 = only when asked)', '10')
    .option('--progress', 'on a terminal, show a live line: received and flushed LSN, MiB/s, timeline, segments archived')
    .option('-v, --verbose', 'log progress (start position, finished segments, reconnects) to stderr'))
    .optionsGroup('Monitoring options:')
    .addHelpText('after', `
Environment: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGPASSFILE (~/.pgpass), PGAPPNAME (default walstream),
PGSSLMODE, PGSSLROOTCERT, PGCONNECT_TIMEOUT, as libpq reads them.

The segment being written is NAME.partial; it becomes NAME only once complete and fsynced. Files get
the server's permissions (0600, or 0640 when its data directory grants group access). One receive per
archive: a second one exits naming the first (walstream.lock; a lock left by a killed process is taken
over). A newest complete segment that is short or has a wrong header is renamed NAME.damaged and
streamed again. On --endpos,
SIGINT or SIGTERM walstream fsyncs, sends a final status update (so the slot's restart_lsn moves to what
was archived) and exits 0. A restart resumes from the archive. Exit codes: 0 done, 1 error.`)
    .action(async (flags: ReceiveFlags, command: Command) => {
      // -W and -w share the attribute `password`; only an explicit -W (not the --no-password default) prompts.
      flags.password = flags.password === true && command.getOptionValueSource('password') === 'cli';
      await receive(flags);
    }));
}
