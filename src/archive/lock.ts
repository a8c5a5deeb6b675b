/**
 * One archiver per archive directory: the lock file walstream.lock, made as PostgreSQL makes
 * postmaster.pid (miscinit.c CreateLockFile: exclusive create, owner's pid inside, a dead owner's lock
 * is stale and taken over). Not flock(): Node has none, and the streaming path takes no native addon.
 *
 * Creating: the content (pid, host, start time; from /proc the process start time, which tells a
 * reused pid from the owner, the boot id and the PID namespace) is written and fsynced in
 * walstream.lock.<pid>.tmp, then link()ed to walstream.lock. link fails with EEXIST when a lock
 * exists, so a lock never exists without its complete content.
 *
 * Stale, on this host: written in an earlier boot, or its pid is gone, a zombie, or now another
 * process (start time differs); or unparsable and not modified for 10 s; or from another PID namespace
 * (a restarted container: its pid means nothing here) and not touched for 30 s, since every holder
 * touches its lock every 10 s. Never stale: a lock from another host; a lock of this very process.
 *
 * Taking over: a taker first claims that stale lock (its bytes, inode and mtime hashed into an id) by
 * creating walstream.lock.takeover.<id>.<n> as the lock is created; only the claimant unlinks
 * walstream.lock, after checking it is still that stale lock, then everyone races for link() again.
 * Others wait while the claimant lives; a dead claimant's claim is passed over (claim n+1). Claims
 * are never taken away from anyone: renaming the stale lock aside (and back, if it was by then a new
 * live lock) leaves a moment without walstream.lock in which a third process locks too.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WalstreamError, describeErrno } from '../errors.js';

/** How often a holder touches its lock (mtime), and how long a lock from another PID namespace may go untouched before it is stale. */
const HEARTBEAT_MS = 10_000;
const HEARTBEAT_STALE_MS = 30_000;

/** The lock file's name in the archive directory. */
export const LOCK_FILE = 'walstream.lock';

/** A held lock. */
export interface ArchiveLock {
  /** Path of the lock file. */
  readonly path: string;
  /** Removes the lock file if it still holds our content (else leaves it: someone replaced it). Idempotent. */
  release(): void;
}

interface Holder { pid: number; host: string; started: string; procstart: string; boot: string; pidns: string }
interface LockFile { bytes: Buffer; ino: number; mtimeMs: number }

const UNPARSABLE_STALE_MS = 10_000;
const GIVE_UP_MS = 5_000;
const TAKEOVER = `${LOCK_FILE}.takeover.`;

const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException)?.code;
function readOr(read: () => string): string {
  try { return read().trim(); } catch { return ''; }
}
/** Fields 3 (state) and 22 (start time, clock ticks since boot) of /proc/<pid>/stat; null if unreadable. */
function procStat(pid: number): { state: string; start: string } | null {
  const stat = readOr(() => fs.readFileSync(`/proc/${pid}/stat`, 'latin1'));
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // the name (field 2) may hold ') '
  return fields.length >= 20 ? { state: fields[0], start: fields[19] } : null;
}
const bootId = () => readOr(() => fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1'));
const pidNamespace = () => readOr(() => fs.readlinkSync('/proc/self/ns/pid'));

function parseLock(bytes: Buffer): Holder | null {
  const text = bytes.toString('utf8');
  const field = (key: string) => text.match(new RegExp(`^${key}=(.*)$`, 'm'))?.[1] ?? '';
  const pid = /^[1-9]\d{0,9}$/.test(field('pid')) ? Number(field('pid')) : 0;
  if (!(pid > 0 && pid < 2 ** 31) || !field('host') || !field('started')) return null;
  return { pid, host: field('host'), started: field('started'), procstart: field('procstart'), boot: field('boot'), pidns: field('pidns') };
}

/** The file's bytes, inode and mtime, or null if there is none. */
function readLockFile(file: string): LockFile | null {
  let fd: number;
  try { fd = fs.openSync(file, 'r'); } catch (err) { if (errCode(err) === 'ENOENT') return null; throw err; }
  try {
    const { ino, mtimeMs } = fs.fstatSync(fd);
    return { bytes: fs.readFileSync(fd), ino, mtimeMs };
  } finally { fs.closeSync(fd); }
}
const identity = (f: LockFile) => createHash('sha256').update(f.bytes).update(`:${f.ino}:${f.mtimeMs}`).digest('hex').slice(0, 16);

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (err) { return errCode(err) !== 'ESRCH'; } // EPERM: alive
}
const earlierBoot = (h: Holder) => { const boot = bootId(); return h.boot !== '' && boot !== '' && h.boot !== boot; };

/** Whether a holder on this host (and PID namespace) no longer runs: earlier boot, pid gone, zombie, or reused. */
function holderGone(h: Holder): boolean {
  if (earlierBoot(h) || !pidAlive(h.pid)) return true;
  const stat = procStat(h.pid);
  if (!stat) return false; // no /proc: kill says alive
  return stat.state === 'Z' || stat.state === 'X' || (h.procstart !== '' && stat.start !== h.procstart);
}

const locked = (message: string) => new WalstreamError('ARCHIVE_LOCKED', message);

/** Returns when the lock `seen` is stale; throws ARCHIVE_LOCKED naming the holder when it is held. */
function checkStale(directory: string, seen: LockFile): void {
  const h = parseLock(seen.bytes);
  if (!h) {
    if (Date.now() - seen.mtimeMs >= UNPARSABLE_STALE_MS) return;
    throw locked(`archive "${directory}" has a lock file ${LOCK_FILE} that walstream cannot read: retry in 10 s (it is then taken over), or remove it if nothing uses this directory`);
  }
  const lockPath = path.join(directory, LOCK_FILE);
  if (h.host !== os.hostname()) {
    throw locked(`archive "${directory}" is locked by walstream pid ${h.pid} on another host, ${h.host} (since ${h.started}): stop it there, or remove "${lockPath}" if that host no longer runs walstream on it`);
  }
  const pidns = pidNamespace();
  if (h.pidns && pidns && h.pidns !== pidns && !earlierBoot(h)) {
    // Its pid means nothing here (a restarted container keeps its hostname, not its PID namespace):
    // a holder touches the file every HEARTBEAT_MS, so one silent for HEARTBEAT_STALE_MS is gone.
    const silentMs = Date.now() - seen.mtimeMs;
    if (silentMs >= HEARTBEAT_STALE_MS) return;
    throw locked(`archive "${directory}" is locked by walstream pid ${h.pid} in another PID namespace (container) on host ${h.host} (since ${h.started}), alive ${Math.round(silentMs / 1000)} s ago: stop it there (its lock is taken over ${HEARTBEAT_STALE_MS / 1000} s after it stops)`);
  }
  if (!holderGone(h)) {
    throw locked(`archive "${directory}" is in use by walstream pid ${h.pid} on host ${h.host} (since ${h.started}): stop that process, or use another directory`);
  }
}

/** Removes the stale lock `stale` under a claim (see the header). False while a live process claims it. */
function takeOver(lockPath: string, stale: LockFile, content: Buffer, mode: number): boolean {
  const id = identity(stale);
  for (let n = 0; ; n++) {
    const claim = `${lockPath}.takeover.${id}.${n}`;
    if (tryCreate(claim, content, mode)) {
      try {
        const current = readLockFile(lockPath);
        if (current && identity(current) === id) fs.unlinkSync(lockPath);
      } finally {
        fs.rmSync(claim, { force: true });
      }
      return true;
    }
    const claimant = readLockFile(claim);
    if (!claimant) return true; // that claim is done: look again
    const h = parseLock(claimant.bytes);
    if (h && !holderGone(h)) return false;
  }
}

/** Creates `target` from a fully written, fsynced temporary file; false if it exists. */
function tryCreate(target: string, content: Buffer, mode: number): boolean {
  const temp = path.join(path.dirname(target), `${LOCK_FILE}.${process.pid}.tmp`);
  fs.rmSync(temp, { force: true });
  const fd = fs.openSync(temp, 'wx', mode);
  try {
    try { fs.writeFileSync(fd, content); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    fs.linkSync(temp, target);
    return true;
  } catch (err) {
    if (errCode(err) === 'EEXIST') return false;
    throw err;
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

/** With the lock held, best effort: removes the claims and temporary files of processes that died. */
function sweep(directory: string): void {
  try {
    for (const name of fs.readdirSync(directory)) {
      const file = path.join(directory, name);
      const tempOf = /^walstream\.lock\.(\d+)\.tmp$/.exec(name)?.[1];
      const claimant = name.startsWith(TAKEOVER) ? parseLock(readLockFile(file)?.bytes ?? Buffer.alloc(0)) : null;
      const gone = claimant ? holderGone(claimant) : tempOf !== undefined && tempOf !== String(process.pid) && !pidAlive(Number(tempOf));
      if (gone) fs.rmSync(file, { force: true });
    }
  } catch { /* leftovers stay */ }
}

function syncDirectory(directory: string): void {
  const fd = fs.openSync(directory, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

function ioError(directory: string, err: unknown): WalstreamError {
  return new WalstreamError('ARCHIVE_IO', `could not lock archive "${directory}": ${describeErrno(err)}; check that the directory exists, is writable and has free space`, { cause: err });
}

/**
 * Locks `directory` for this process, taking over a stale lock (see the header). The lock file gets
 * mode `fileMode` (default 0o600; the umask applies). Throws WalstreamError ARCHIVE_LOCKED naming the
 * holder when another live process (or this one) holds it, ARCHIVE_IO when the file cannot be made.
 */
export function acquireArchiveLock(directory: string, options: { fileMode?: number } = {}): ArchiveLock {
  const lockPath = path.join(directory, LOCK_FILE);
  const content = Buffer.from(`pid=${process.pid}\nhost=${os.hostname()}\nstarted=${new Date().toISOString()}\n` +
    `procstart=${procStat(process.pid)?.start ?? ''}\nboot=${bootId()}\npidns=${pidNamespace()}\n`);
  let released = false;
  let heartbeat: NodeJS.Timeout | undefined;
  const lock: ArchiveLock = {
    path: lockPath,
    release() {
      if (released) return;
      clearInterval(heartbeat);
      try {
        if (readLockFile(lockPath)?.bytes.equals(content)) fs.unlinkSync(lockPath);
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw ioError(directory, err);
      }
      released = true;
    },
  };
  const mode = options.fileMode ?? 0o600;
  const giveUp = Date.now() + GIVE_UP_MS;
  try {
    while (Date.now() < giveUp) {
      if (tryCreate(lockPath, content, mode)) {
        try { syncDirectory(directory); } catch (err) { lock.release(); throw err; }
        sweep(directory);
        heartbeat = setInterval(() => {
          try { fs.utimesSync(lockPath, new Date(), new Date()); } catch { /* a missing lock is found by the next taker */ }
        }, HEARTBEAT_MS);
        heartbeat.unref();
        return lock;
      }
      const seen = readLockFile(lockPath);
      if (!seen) continue; // released meanwhile
      checkStale(directory, seen);
      if (!takeOver(lockPath, seen, content, mode)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  } catch (err) {
    throw err instanceof WalstreamError ? err : ioError(directory, err);
  }
  throw locked(`archive "${directory}": another process has been taking over its stale lock for ${GIVE_UP_MS / 1000} s: retry, and if that persists check the walstream processes on it`);
}

/** The holder of `directory`'s lock, or null when there is no lock file or it is unparsable (ARCHIVE_IO when unreadable). For status tools. */
export function readArchiveLock(directory: string): { pid: number; host: string; started: string } | null {
  let seen;
  try { seen = readLockFile(path.join(directory, LOCK_FILE)); } catch (err) { throw ioError(directory, err); }
  const h = seen && parseLock(seen.bytes);
  return h ? { pid: h.pid, host: h.host, started: h.started } : null;
}
