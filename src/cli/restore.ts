/**
 * `walstream restore WALFILE DEST -D ARCHIVE`: the entry PostgreSQL runs as restore_command, e.g.
 *   restore_command = 'walstream restore %f %p -D /srv/wal-archive'
 * (bin/walstream-restore takes the same arguments and serves a prefetched segment without Node).
 *
 * It runs once per segment during recovery, so it must start fast: it parses argv by hand and imports
 * only node built-ins, src/restore.ts and the small src/restore/ modules (never commander, the
 * streaming code or `pg`).
 */
import { WalstreamError, joinLines } from '../errors.js';
import { restoreWalFile } from '../restore.js';
import { afterRestore, announceNext, parsePrefetchDepth, spoolFor, startEarly, takePrefetched, type PrefetchCall, type PrefetchDepth } from '../restore/prefetch-call.js';

/**
 * Exit codes, chosen for how PostgreSQL reads them (RestoreArchivedFile in
 * src/backend/access/transam/xlogarchive.c):
 * - 0: the file was restored.
 * - 1: the file is not in the archive. Recovery treats any exit code up to 125 as "not available": it
 *   asks for files that may not exist (the next timeline's history file, the segment after the last
 *   archived one) and, when a segment is missing, moves on (tries streaming, or ends recovery).
 * - 126: anything else. If a damaged file or an unreadable archive were reported as "not available",
 *   recovery would conclude the archive has ended and could promote early, on incomplete WAL. PostgreSQL
 *   instead aborts recovery (FATAL) when the command exits above 125: RestoreArchivedFile checks
 *   wait_result_is_any_signal(rc, true) (src/common/wait_error.c), which counts exit codes 126 and up as
 *   "command could not run / died on a signal". 126 is the lowest such code and, unlike 128+N, is not
 *   mistaken for a signal (143 = 128+SIGTERM would be read as a shutdown request and exit quietly), so
 *   recovery stops with our stderr line in the server log and nothing is replayed past the damage.
 */
const EXIT_RESTORED = 0;
const EXIT_MISSING = 1;
const EXIT_FAILED = 126;

const PREFIX = 'walstream restore: ';

const USAGE = `Usage: walstream restore WALFILE DEST -D ARCHIVE [OPTIONS]

Copy WALFILE from the walstream archive directory ARCHIVE to DEST, for use as
  restore_command = 'walstream restore %f %p -D /path/to/archive'
or, faster (a prefetched segment is moved into place without starting Node):
  restore_command = 'walstream-restore %f %p -D /path/to/archive'

Options:
  -D, --directory ARCHIVE  the archive directory (where walstream receive writes)
  --source s3://BUCKET/PREFIX
                           read from this bucket instead (what receive --target uploads); no
                           prefetching. Credentials and region from the AWS environment
  --s3-endpoint URL        endpoint of an S3-compatible store (MinIO, Ceph RGW, R2)
  --s3-path-style          address the bucket as ENDPOINT/BUCKET
  --prefetch N|SIZE        segments to fetch ahead (or a size such as 256MB); 0 turns prefetching
                           off (default: 8 segments, at most 256MB)
  --spool DIR              where prefetched segments wait (default: .NAME.walstream-prefetch beside
                           the archive); never inside the data directory
  --prefetch-idle SECONDS  the prefetch helper stops after this long without a request (default 30)
  --include-partial        when the segment is absent but NAME.partial is the newest file of the
                           archive on its timeline, serve it (zeros after the data)
  -h, --help               show this help, then exit

Exit status: 0 restored; 1 not in the archive (silent); 126 damaged file, unreadable archive or bad usage.
`;

/** Thrown by the argv parser; becomes one stderr line and exit 126. */
class UsageError extends Error {}

interface RestoreArgs {
  help: boolean;
  archiveDir?: string;
  source?: string;
  s3Endpoint?: string;
  s3PathStyle: boolean;
  spoolDir?: string;
  prefetch?: PrefetchDepth;
  idleSeconds: number;
  includePartial: boolean;
  positionals: string[];
}

const VALUE_OPTIONS: Record<string, (args: RestoreArgs, value: string, name: string) => void> = {
  '--directory': (args, value) => (args.archiveDir = value),
  '--source': (args, value) => (args.source = value),
  '--s3-endpoint': (args, value) => (args.s3Endpoint = value),
  '--spool': (args, value) => (args.spoolDir = value),
  '--prefetch': (args, value, name) => {
    const depth = parsePrefetchDepth(value);
    if (!depth) throw new UsageError(`invalid ${name} "${value}"; give a number of segments (0 for none) or a size such as 256MB`);
    args.prefetch = depth;
  },
  '--prefetch-idle': (args, value, name) => {
    if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0) throw new UsageError(`invalid ${name} "${value}"; give a number of seconds above 0`);
    args.idleSeconds = Number(value);
  },
};

function parseArgs(argv: string[]): RestoreArgs {
  const args: RestoreArgs = { help: false, idleSeconds: 30, includePartial: false, s3PathStyle: false, positionals: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.positionals.push(...argv.slice(i + 1));
      break;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = arg === '-D' || (arg.startsWith('-D') && !arg.startsWith('--')) ? '--directory' : eq > 0 ? arg.slice(0, eq) : arg;
    const setter = VALUE_OPTIONS[name];
    if (arg === '-h' || arg === '--help') {
      args.help = true;
    } else if (arg === '--include-partial') {
      args.includePartial = true;
    } else if (arg === '--s3-path-style') {
      args.s3PathStyle = true;
    } else if (setter) {
      const shown = arg.startsWith('-D') && !arg.startsWith('--') ? '-D' : name;
      const inline = eq > 0 ? arg.slice(eq + 1) : arg.startsWith('-D') && arg.length > 2 && !arg.startsWith('--') ? arg.slice(2) : undefined;
      const value = inline ?? argv[++i];
      if (value === undefined || value === '') throw new UsageError(`option ${shown} needs a value; ${name === '--directory' ? 'give the archive directory, e.g. -D /srv/wal-archive' : 'see walstream restore --help'}`);
      setter(args, value, shown);
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new UsageError(`unknown option "${arg}"; usage: walstream restore WALFILE DEST -D ARCHIVE`);
    } else {
      args.positionals.push(arg);
    }
  }
  return args;
}

/**
 * Run `walstream restore` with the arguments after "restore"; resolves the exit code (the caller exits):
 * 0 restored, 1 not in the archive (no output), 126 anything else, with one line on stderr
 * `walstream restore: <what failed>; <what to change>`. `-h/--help` prints usage to stdout and resolves 0.
 */
export async function restoreMain(argv: string[]): Promise<number> {
  let args: RestoreArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    return fail((err as Error).message);
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return EXIT_RESTORED;
  }
  if (args.positionals.length !== 2) {
    return fail(
      `expected 2 arguments (WALFILE DEST), got ${args.positionals.length}; use restore_command = 'walstream restore %f %p -D ARCHIVE'`,
    );
  }
  const [walFileName, destination] = args.positionals as [string, string];
  if (args.source !== undefined) return restoreFromBucket(args, walFileName, destination);
  if (args.archiveDir === undefined) {
    return fail(`no archive directory given; add -D ARCHIVE (restore_command = 'walstream restore %f %p -D ARCHIVE')`);
  }
  const prefetching = !(args.prefetch && 'segments' in args.prefetch && args.prefetch.segments === 0) && SEGMENT_NAME.test(walFileName);
  const call: PrefetchCall = { archiveDir: args.archiveDir, walFileName, destination, spoolDir: args.spoolDir, depth: args.prefetch, idleMs: args.idleSeconds * 1000 };
  const spool = prefetching ? spoolFor(call) : null;
  try {
    if (spool && 'dir' in spool && (await takePrefetched(call, spool.dir).catch(() => false))) return EXIT_RESTORED;
    const started = spool && 'dir' in spool ? await startEarly(call, spool.dir) : null;
    const result = await restoreWalFile({ archiveDir: args.archiveDir, walFileName, destination, includePartial: args.includePartial });
    if (result !== 'restored') return result === 'partial' ? EXIT_RESTORED : EXIT_MISSING;
    if (started && spool && 'dir' in spool) await announceNext(call, spool.dir, started);
    else if (spool) await prefetchAfter(call, spool);
    return EXIT_RESTORED;
  } catch (err) {
    if (err instanceof WalstreamError) return fail(err.message);
    const message = err instanceof Error ? err.message : String(err);
    return fail(`could not restore "${walFileName}" to "${destination}": ${message}; check the archive and destination`);
  }
}

/**
 * --source s3://…: the same restore through the bucket's reader (the SDK is loaded only here, so a
 * directory restore stays light). No prefetching from a bucket yet.
 */
async function restoreFromBucket(args: RestoreArgs, walFileName: string, destination: string): Promise<number> {
  const { archiveFromFlags } = await import('./bucket-flags.js');
  let store;
  try {
    store = archiveFromFlags({ source: args.source, directory: args.archiveDir, s3Endpoint: args.s3Endpoint, s3PathStyle: args.s3PathStyle });
  } catch (err) {
    return fail((err as Error).message);
  }
  try {
    const result = await restoreWalFile({ archive: store, walFileName, destination, includePartial: args.includePartial });
    return result === 'missing' ? EXIT_MISSING : EXIT_RESTORED;
  } catch (err) {
    if (err instanceof WalstreamError) return fail(err.message);
    return fail(`could not restore "${walFileName}" from ${store.describe()} to "${destination}": ${err instanceof Error ? err.message : String(err)}; check the bucket and destination`);
  } finally {
    await store.close?.();
  }
}

/** A complete segment name (the only files prefetched). */
const SEGMENT_NAME = /^[0-9A-F]{24}$/;

/** Start or inform the prefetch helper; a spool that cannot be used is one warning line, never a failed restore. */
async function prefetchAfter(call: PrefetchCall, spool: { dir: string } | { problem: string }): Promise<void> {
  try {
    if ('problem' in spool) throw new Error(spool.problem);
    await afterRestore(call, spool.dir);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${PREFIX}warning: prefetching is off: ${joinLines(why)}; give --spool DIR (outside the data directory, writable by this user) or --prefetch 0\n`);
  }
}

function fail(line: string): number {
  process.stderr.write(PREFIX + joinLines(line) + '\n');
  return EXIT_FAILED;
}
