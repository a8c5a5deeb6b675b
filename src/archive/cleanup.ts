/**
 * Remove archived WAL that recovery no longer needs (archive_cleanup_command), with the exact rules of
 * pg_archivecleanup in PostgreSQL 15 (src/bin/pg_archivecleanup/pg_archivecleanup.c), so an archive
 * cleaned by either tool ends up the same.
 *
 * File-name tests mirror the macros in src/include/access/xlog_internal.h. They deliberately do not use
 * lsn.ts's parseSegmentFileName: pg_archivecleanup knows no segment size and accepts any 24 uppercase
 * hex digits (IsXLogFileName), and matching it exactly matters more here.
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import { WalstreamError } from '../errors.js';
import { type ArchiveEntry, type ArchiveReader, DirectoryReader } from './reader.js';

/** IsXLogFileName: exactly 24 uppercase hex digits. */
const XLOG_NAME = /^[0-9A-F]{24}$/;
/** IsPartialXLogFileName: 24 uppercase hex digits then ".partial". */
const PARTIAL_XLOG_NAME = /^[0-9A-F]{24}\.partial$/;
/** IsBackupHistoryFileName: 24 uppercase hex digits, a non-hex character, anything, ending ".backup". */
const BACKUP_HISTORY_NAME = /^[0-9A-F]{24}(?![0-9A-F]).*\.backup$/s;
/**
 * What SetWALFileNameForCleanup additionally needs of a .backup name: its sscanf
 * "%08X%08X%08X.%08X.backup" must fill all four fields, i.e. a '.' right after the 24 digits and then
 * something scanf's %X takes: optional white space, an optional sign, a hex digit of either case.
 */
const BACKUP_OFFSET_START = /^\.[ \t\n\v\f\r]*[+-]?[0-9A-Fa-f]/;

export interface CleanupOptions {
  /** The archive directory; or give `archive`. */
  archiveDir?: string;
  /**
   * The archive to clean (an S3Store for a bucket, s3-store.ts), in place of archiveDir. A directory given
   * as archiveDir is read as pg_archivecleanup reads it (every directory entry, removed with unlink).
   */
  archive?: ArchiveReader;
  /** The oldest WAL file to keep (%r): a segment name, or a .partial or .backup name. */
  oldestKept: string;
  /** Remove nothing; return what would be removed (pg_archivecleanup -n). */
  dryRun?: boolean;
  /** Also consider files ending with this extension, judged on the name without it (pg_archivecleanup -x). */
  extension?: string;
}

/**
 * The segment name cleanup keeps from, as pg_archivecleanup's SetWALFileNameForCleanup derives it from
 * OLDESTKEPTWALFILE: `extension` (if given) is stripped, then a segment name is used as is, and a
 * `.partial` or `.backup` name is cut to its first 24 characters. Throws WalstreamError('BAD_OPTION')
 * for anything else (pg_archivecleanup: "invalid file name argument").
 */
export function oldestKeptSegment(oldestKept: string, extension?: string): string {
  const name = trimExtension(oldestKept, extension);
  if (XLOG_NAME.test(name)) return name;
  if (PARTIAL_XLOG_NAME.test(name)) return name.slice(0, 24);
  if (BACKUP_HISTORY_NAME.test(name) && BACKUP_OFFSET_START.test(name.slice(24))) return name.slice(0, 24);
  throw new WalstreamError(
    'BAD_OPTION',
    `invalid oldest-kept WAL file name "${oldestKept}"; give a WAL file name such as 000000010000000000000010, ` +
      `000000010000000000000010.partial or 000000010000000000000010.00000020.backup (%r in archive_cleanup_command)`,
  );
}

/**
 * An archive directory as pg_archivecleanup (PostgreSQL 15) sees it: Initialize's check (it must be an
 * existing directory), every entry readdir gives (a dangling symlink or a directory named like a segment
 * included, as CleanupPriorWALFiles sees them), each removed with unlink (a directory named like a
 * segment then fails, as it does for pg_archivecleanup). The one place cleanup differs from
 * DirectoryReader, which lists regular files only.
 */
export class CleanupDirectory extends DirectoryReader {
  override async check(): Promise<void> {
    let isDir = false;
    try {
      isDir = (await stat(this.directory)).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) {
      throw new WalstreamError('ARCHIVE_MISSING', `archive directory "${this.directory}" does not exist or is not a directory; check the archive path`);
    }
  }

  /** The names only (sizes 0): cleanup goes by the name, and an lstat per file of a large archive costs seconds. */
  override async entries(): Promise<ArchiveEntry[]> {
    return (await readdir(this.directory)).map((name) => ({ name, size: 0 }));
  }

  override async remove(name: string): Promise<void> {
    try {
      await unlink(this.locate(name));
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err;
    }
  }
}

/**
 * Remove from the archive every WAL segment or partial segment older than `oldestKept`, exactly as
 * pg_archivecleanup (PostgreSQL 15) does, and resolve the removed names (sorted); with `dryRun`, remove
 * nothing and resolve the names that would be removed. The archive is `archiveDir` (a directory) or
 * `archive` (any ArchiveReader: a bucket, s3-store.ts); the same rules apply to both. A file is removed
 * when, after stripping `extension` (if it has it), its name is a segment name or a `.partial` segment
 * name and its part after the timeline (from character 8) sorts before that of oldestKeptSegment().
 * Timelines are ignored so a parent timeline's segments are never removed early; history files, .backup
 * files and any other name are never removed. Throws WalstreamError: ARCHIVE_MISSING when the archive is
 * not there (not a directory; a bucket that cannot be reached), BAD_OPTION for an invalid `oldestKept`
 * (checked in that order, as pg_archivecleanup does), ARCHIVE_IO when the archive cannot be listed or a
 * file cannot be removed (stopping there, as pg_archivecleanup does; a file already gone counts as
 * removed).
 */
export async function cleanupArchive(opts: CleanupOptions): Promise<string[]> {
  const { extension } = opts;
  const archive = opts.archive ?? new CleanupDirectory(requireArchiveDir(opts.archiveDir));
  await archive.check();
  const keep = oldestKeptSegment(opts.oldestKept, extension);

  let entries: string[];
  try {
    entries = (await archive.entries()).map((e) => e.name);
  } catch (err) {
    if (err instanceof WalstreamError) throw err;
    throw new WalstreamError('ARCHIVE_IO', `could not read archive directory "${archive.describe()}": ${errMessage(err)}; check its permissions`, {
      cause: err,
    });
  }

  // CleanupPriorWALFiles: compare from character 8 on, skipping the timeline.
  const cutoff = keep.slice(8);
  const doomed = entries
    .filter((entry) => {
      const name = trimExtension(entry, extension);
      return (XLOG_NAME.test(name) || PARTIAL_XLOG_NAME.test(name)) && name.slice(8) < cutoff;
    })
    .sort();

  if (opts.dryRun) return doomed;

  const removed: string[] = [];
  for (const name of doomed) {
    try {
      await archive.remove(name);
      removed.push(name);
    } catch (err) {
      const why = err instanceof WalstreamError ? err.message : `could not remove "${archive.locate(name)}": ${errMessage(err)}`;
      const fix = opts.archive
        ? 'check that the archive lets you remove it (for a bucket: s3:DeleteObject), then run cleanup again'
        : "fix that file or its directory's permissions, then run cleanup again";
      throw new WalstreamError('ARCHIVE_IO', `${why}; ${fix}`, { cause: err });
    }
  }
  return removed;
}

function requireArchiveDir(dir: string | undefined): string {
  if (dir === undefined || dir === '') throw new WalstreamError('BAD_OPTION', 'no archive given; pass archiveDir (a directory) or archive (an ArchiveReader)');
  return dir;
}

/** pg_archivecleanup's TrimExtension: drop `extension` from the end when the name is longer than it and ends with it. */
function trimExtension(name: string, extension: string | undefined): string {
  if (extension === undefined) return name;
  if (name.length > extension.length && name.endsWith(extension)) return name.slice(0, name.length - extension.length);
  return name;
}

function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
