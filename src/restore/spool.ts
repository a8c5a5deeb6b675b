/**
 * The prefetch spool: a directory outside the data directory (pg_rewind and base backups must never see
 * it) where the prefetch helper leaves the next segments, each complete and checked, for the next
 * `walstream restore` call, or bin/walstream-restore without starting Node, to rename into %p.
 *
 * Layout (bin/walstream-restore reads the same names: keep them in step):
 *   walstream.lock   the helper's lock (src/archive/lock.ts): lines `pid=N` and `boot=ID` among others
 *   archive          the -D argument the helper serves, as given, and a newline
 *   NAME             a ready segment: complete, full size, its long page header checked (not fsynced:
 *                    served only in the boot that wrote it, see helperServing)
 *   .tmp.NAME        a segment being written (renamed to NAME when complete)
 *   want.NAME        NAME was restored from the archive itself (recovery asked before it was ready)
 *   pending.NAME     `pid=N`: helper N is about to spool NAME (written by the call that starts it)
 * A spooled file is taken only while the helper that wrote it runs; a new helper empties the spool.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { restoreWalFile } from '../restore.js';

/** The lock's name (src/archive/lock.ts LOCK_FILE, not imported: this module stays small). */
const LOCK_FILE = 'walstream.lock';
export const SPOOL_ARCHIVE_FILE = 'archive';
export const TEMP_PREFIX = '.tmp.';
export const WANT_PREFIX = 'want.';
export const PENDING_PREFIX = 'pending.';

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

/**
 * Whether a live helper serves `archiveArg` from `spoolDir`: its lock (src/archive/lock.ts) names a pid
 * that runs, written in this boot (a spooled file is not fsynced: after a crash it may be torn, and a
 * pid may be reused), and its archive file names the same -D.
 */
export function helperServing(spoolDir: string, archiveArg: string): boolean {
  let pid: number;
  try {
    const lock = readFileSync(join(spoolDir, LOCK_FILE), 'utf8');
    pid = Number(/^pid=(\d+)$/m.exec(lock)?.[1] ?? 0);
    const boot = /^boot=(.+)$/m.exec(lock)?.[1] ?? '';
    if (!pid || (boot !== '' && boot !== currentBoot())) return false;
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

function currentBoot(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
  } catch {
    return '';
  }
}

/**
 * Move spooled segment `name` to `destination` (%p). A rename when both are on one filesystem;
 * otherwise a copy into %p with fsync, then the spooled file is removed. When the helper is writing it
 * right now or about to (`.tmp.NAME`, `pending.NAME`), waits for it up to `waitMs` rather than fetch the
 * segment twice.
 * Resolves false when the spool does not hold it (never spooled, or taken by a concurrent call).
 */
export async function takeFromSpool(spoolDir: string, name: string, destination: string, waitMs = 2000): Promise<boolean> {
  const spooled = join(spoolDir, name);
  const until = Date.now() + waitMs;
  const coming = () => existsSync(join(spoolDir, TEMP_PREFIX + name)) || existsSync(join(spoolDir, PENDING_PREFIX + name));
  while (!existsSync(spooled) && coming() && Date.now() < until) await new Promise((r) => setTimeout(r, 2));
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

/** Tell bin/walstream-restore and the next call that helper `pid` is about to spool `name`. */
export async function notePending(spoolDir: string, name: string, pid: number): Promise<void> {
  await writeFile(join(spoolDir, PENDING_PREFIX + name), `pid=${pid}\n`);
}
