/**
 * `walstream restore WALFILE DEST -D ARCHIVE`: the entry PostgreSQL runs as restore_command, e.g.
 *   restore_command = 'walstream restore %f %p -D /srv/wal-archive'
 *
 * It runs once per segment during recovery, so it must start fast: it parses argv by hand and imports
 * only node built-ins and src/restore.ts (never commander, the streaming code or `pg`).
 */
import { WalstreamError, joinLines } from '../errors.js';
import { restoreWalFile } from '../restore.js';

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

const USAGE = `Usage: walstream restore WALFILE DEST -D ARCHIVE

Copy WALFILE from the walstream archive directory ARCHIVE to DEST, for use as
  restore_command = 'walstream restore %f %p -D /path/to/archive'

Options:
  -D, --directory ARCHIVE  the archive directory (where walstream receive writes)
  -h, --help               show this help, then exit

Exit status: 0 restored; 1 not in the archive (silent); 126 damaged file, unreadable archive or bad usage.
`;

/** Thrown by the argv parser; becomes one stderr line and exit 126. */
class UsageError extends Error {}

interface RestoreArgs {
  help: boolean;
  archiveDir?: string;
  positionals: string[];
}

function parseArgs(argv: string[]): RestoreArgs {
  const args: RestoreArgs = { help: false, positionals: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') {
      args.help = true;
    } else if (arg === '-D' || arg === '--directory') {
      const value = argv[++i];
      if (value === undefined || value === '') throw new UsageError(`option ${arg} needs a value; give the archive directory, e.g. -D /srv/wal-archive`);
      args.archiveDir = value;
    } else if (arg.startsWith('--directory=')) {
      args.archiveDir = arg.slice('--directory='.length);
      if (args.archiveDir === '') throw new UsageError('option --directory needs a value; give the archive directory, e.g. --directory=/srv/wal-archive');
    } else if (arg.startsWith('-D') && arg.length > 2) {
      args.archiveDir = arg.slice(2);
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
  if (args.archiveDir === undefined) {
    return fail(`no archive directory given; add -D ARCHIVE (restore_command = 'walstream restore %f %p -D ARCHIVE')`);
  }
  const [walFileName, destination] = args.positionals as [string, string];
  try {
    const result = await restoreWalFile({ archiveDir: args.archiveDir, walFileName, destination });
    return result === 'restored' ? EXIT_RESTORED : EXIT_MISSING;
  } catch (err) {
    if (err instanceof WalstreamError) return fail(err.message);
    const message = err instanceof Error ? err.message : String(err);
    return fail(`could not restore "${walFileName}" to "${destination}": ${message}; check the archive and destination`);
  }
}

function fail(line: string): number {
  process.stderr.write(PREFIX + joinLines(line) + '\n');
  return EXIT_FAILED;
}
