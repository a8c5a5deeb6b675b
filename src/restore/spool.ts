/**
 * The prefetch spool: a directory outside the data directory (pg_rewind and base backups must never see
 * it) where the prefetch helper leaves the next segments, each complete and checked, for the next
 * `walstream restore` call, or bin/walstream-restore without starting Node, to rename into %p.
 *
 * Layout (bin/walstream-restore reads the same names: keep them in step):
 *   walstream.lock   the helper's lock (src/archive/lock.ts): first line `pid=N`
 *   archive          the -D argument the helper serves, as given, and a newline
 *   NAME             a ready segment: complete, fsynced, full size, its long page header checked
 *   .tmp.NAME        a segment being written (renamed to NAME when complete)
 *   want.NAME        NAME was restored from the archive itself (recovery asked before it was ready)
 * A spooled file is taken only while the helper that wrote it runs; a new helper empties the spool.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { readArchiveLock } from '../archive/lock.js';
import { restoreWalFile } from '../restore.js';

export const SPOOL_ARCHIVE_FILE = 'archive';
export const TEMP_PREFIX = '.tmp.';
export const WANT_PREFIX = 'want.';

/**
 * The default spool of an archive: a dot-directory beside it, `PARENT/.NAME.walstream-prefetch`, so the
 * archive's own listing stays untouched. bin/walstream-restore derives the same path from -D.
 */
export function defaultSpoolDir(archiveDir: string): string {
  const archive = resolve(archiveDir);
  return join(dirname(archive), `.${basename(archive)}.walstream-prefetch`);
}

/**
 * Why `spoolDir` must not be used, or null: it may not lie inside a data directory (restore_command runs
 * in the data directory: the working directory holding PG_VERSION).
 */
export function spoolProblem(spoolDir: string, cwd = process.cwd()): string | null {
  if (!existsSync(join(cwd, 'PG_VERSION'))) return null;
  const rel = relative(cwd, resolve(spoolDir));
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) return `spool "${spoolDir}" is inside the data directory "${cwd}"`;
  return null;
}

/** Whether a live helper serves `archiveArg` from `spoolDir` (its lock's pid runs, its archive file matches). */
export function helperServing(spoolDir: string, archiveArg: string): boolean {
  let pid: number;
  try {
    const holder = readArchiveLock(spoolDir);
    if (!holder) return false;
    pid = holder.pid;
    if (readFileSync(join(spoolDir, SPOOL_ARCHIVE_FILE), 'utf8') !== `${archiveArg}\n`) return false;
  } catch {
    return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Move spooled segment `name` to `destination` (%p). A rename when both are on one filesystem (the
 * helper fsynced the file); otherwise a copy into %p with fsync, then the spooled file is removed.
 * Resolves false when the spool does not hold it (never spooled, or taken by a concurrent call).
 */
export async function takeFromSpool(spoolDir: string, name: string, destination: string): Promise<boolean> {
  const spooled = join(spoolDir, name);
  try {
    await rename(spooled, destination);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code !== 'EXDEV') throw err;
  }
  if ((await restoreWalFile({ archiveDir: spoolDir, walFileName: name, destination })) === 'missing') return false;
  await rm(spooled, { force: true });
  return true;
}

/** Tell the helper recovery restored `name` from the archive itself (it checks its prediction against it). */
export async function noteRestored(spoolDir: string, name: string): Promise<void> {
  await writeFile(join(spoolDir, WANT_PREFIX + name), '');
}
