/**
 * `walstream cleanup -D ARCHIVE [--dry-run] [-x EXT] [-d] OLDEST_KEPT`: the archive_cleanup_command
 * counterpart of pg_archivecleanup (PostgreSQL 15, src/bin/pg_archivecleanup/pg_archivecleanup.c), e.g.
 *   archive_cleanup_command = 'walstream cleanup -D /srv/wal-archive %r'
 * `--source s3://BUCKET/PREFIX` (with --s3-endpoint, --s3-path-style) cleans a bucket instead, by the
 * same rules: cleanupArchive takes either archive as an ArchiveReader. The SDK loads only then.
 */
import { Command, CommanderError } from 'commander';
import { cleanupArchive, oldestKeptSegment } from '../archive/cleanup.js';
import { type ArchiveReader, DirectoryReader } from '../archive/reader.js';
import { joinLines } from '../errors.js';
import { type SourceFlags, addS3Options, archiveFromFlags } from './bucket-flags.js';

const PREFIX = 'walstream cleanup: ';

/** Exit code for bad input or a failed cleanup; pg_archivecleanup exits 2 in the same cases. */
const EXIT_FAILED = 2;

interface CleanupCliOptions extends SourceFlags {
  dryRun?: boolean;
  extension?: string;
  debug?: boolean;
}

/**
 * The `cleanup` subcommand, ready to add to the walstream program. Its action never calls process.exit:
 * on failure it prints one line `walstream cleanup: <what failed>; <what to change>` to stderr and sets
 * process.exitCode to 2.
 */
export function cleanupCommand(): Command {
  return buildCleanupCommand((code) => {
    if (code !== 0) process.exitCode = code;
  });
}

/**
 * Run `walstream cleanup` on its own and resolve the exit code instead of exiting: 0 done (or help shown),
 * 2 bad usage, bad OLDEST_KEPT, missing archive directory (unreachable bucket) or a failed removal. `argv` is the arguments
 * after the command name (a leading "cleanup" is accepted too: it can be neither an option nor a WAL name).
 */
export async function cleanupMain(argv: string[]): Promise<number> {
  let code = 0;
  const command = buildCleanupCommand((result) => {
    code = result;
  }).exitOverride();
  const program = new Command('walstream').exitOverride().addCommand(command);
  const args = argv[0] === 'cleanup' ? argv : ['cleanup', ...argv];
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    // Commander has already printed its message (or the help) by the time it throws.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_FAILED;
    throw err;
  }
  return code;
}

function buildCleanupCommand(setExitCode: (code: number) => void): Command {
  const command = new Command('cleanup')
    .description('remove archived WAL files older than OLDEST_KEPT, exactly as pg_archivecleanup does')
    .argument('<OLDEST_KEPT>', 'oldest WAL file to keep (%r), e.g. 000000010000000000000010, or a .partial or .backup name')
    .option('-D, --directory <ARCHIVE>', 'the archive directory')
    .option('-n, --dry-run', 'remove nothing; print the paths that would be removed, one per line')
    .option('-x, --extension <EXT>', 'also clean up files ending with EXT, e.g. .gz (as pg_archivecleanup -x)')
    .option('-d, --debug', 'report each file removed on stderr (as pg_archivecleanup -d)')
    .optionsGroup('Object storage options:')
    .option('--source <s3://bucket/prefix>', 'clean this bucket instead of a directory (what receive --target uploads; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...; region from AWS_REGION)');
  return addS3Options(command)
    .addHelpText(
      'after',
      `
Files are removed when their name is a WAL segment (or .partial segment) name that sorts before
OLDEST_KEPT, ignoring the timeline. History files, backup history files and other files are kept.
The same rules apply to a bucket (--source s3://BUCKET/PREFIX): objects directly under the prefix.

For use as archive_cleanup_command in postgresql.conf:
  archive_cleanup_command = 'walstream cleanup -D /path/to/archive %r'`,
    )
    .configureOutput({
      outputError: (text, write) => write(text.replace(/^error: /, PREFIX)),
    })
    .action(async (oldestKept: string, options: CleanupCliOptions) => {
      setExitCode(await runCleanup(oldestKept, options));
    });
}

/** The archive the flags name: a directory (-D, read as pg_archivecleanup reads it) or a bucket (--source). */
function openArchive(options: CleanupCliOptions): { archive?: ArchiveReader & { close?: () => Promise<void> }; archiveDir?: string } {
  const archive = archiveFromFlags(options);
  return archive instanceof DirectoryReader ? { archiveDir: archive.directory } : { archive };
}

async function runCleanup(oldestKept: string, options: CleanupCliOptions): Promise<number> {
  let opened: ReturnType<typeof openArchive> = {};
  let names: string[];
  try {
    opened = openArchive(options);
    names = await cleanupArchive({ ...opened, oldestKept, dryRun: options.dryRun === true, extension: options.extension });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(PREFIX + joinLines(message) + '\n');
    return EXIT_FAILED;
  } finally {
    await opened.archive?.close?.();
  }
  // Paths are printed as pg_archivecleanup prints them: "ARCHIVE/NAME" (a bucket's: s3://BUCKET/PREFIX/NAME).
  const pathOf = (name: string): string => (opened.archive ? opened.archive.locate(name) : `${opened.archiveDir}/${name}`);
  if (options.debug) {
    process.stderr.write(`${PREFIX}keeping WAL file "${pathOf(oldestKeptSegment(oldestKept, options.extension))}" and later\n`);
  }
  for (const name of names) {
    if (options.dryRun) {
      process.stdout.write(pathOf(name) + '\n');
      if (options.debug) process.stderr.write(`${PREFIX}file "${pathOf(name)}" would be removed\n`);
    } else if (options.debug) {
      process.stderr.write(`${PREFIX}removed file "${pathOf(name)}"\n`);
    }
  }
  return 0;
}
