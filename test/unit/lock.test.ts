/**
 * The archive lock (src/archive/lock.ts) on real directories and real processes: held locks are
 * refused with the holder named, stale ones (dead pid, reused pid, zombie, earlier boot, old garbage)
 * taken over, foreign hosts' never (another PID namespace's once its heartbeat stops), a takeover claimed by a live
 * process waited for, and of processes racing to take over one stale lock exactly one wins. The race
 * runs the built module (build first with `npx tsc -p tsconfig.json`).
 */
import { describe, expect, it, vi } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LOCK_FILE, acquireArchiveLock, readArchiveLock } from '../../src/archive/lock.js';
import { WalstreamError } from '../../src/errors.js';
import { useTempDirs } from './temp-dirs.js';

const tempDir = useTempDirs('walstream-lock-');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const hasProc = existsSync('/proc/self/stat');
const readOr = (file: string) => { try { return readFileSync(file, 'latin1').trim(); } catch { return ''; } };

/** Field 22 of /proc/<pid>/stat (start time), '' without /proc. */
function procStart(pid: number): string {
  const stat = readOr(`/proc/${pid}/stat`);
  return stat ? stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] : '';
}

function lockText(f: { pid: number; host?: string; procstart?: string; boot?: string; pidns?: string }): string {
  const boot = f.boot ?? readOr('/proc/sys/kernel/random/boot_id');
  return `pid=${f.pid}\nhost=${f.host ?? os.hostname()}\nstarted=2026-11-27T10:00:00.000Z\nprocstart=${f.procstart ?? procStart(f.pid)}\nboot=${boot}\n` +
    (f.pidns !== undefined ? `pidns=${f.pidns}\n` : '');
}

function lockError(run: () => unknown): WalstreamError {
  try { run(); } catch (err) { expect(err).toBeInstanceOf(WalstreamError); return err as WalstreamError; }
  throw new Error('expected a WalstreamError, nothing was thrown');
}

/** A pid that just exited (reaped), and its start time read while it ran. */
async function deadPid(): Promise<{ pid: number; procstart: string }> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const procstart = procStart(child.pid!);
  await new Promise((resolve) => child.once('exit', resolve));
  return { pid: child.pid!, procstart };
}

const lockPath = (dir: string) => path.join(dir, LOCK_FILE);
/** The first claim name of the lock now in `dir` (lock.ts: sha256 of its bytes, inode and mtime). */
function claimPath(dir: string): string {
  const { ino, mtimeMs } = statSync(lockPath(dir));
  const id = createHash('sha256').update(readFileSync(lockPath(dir))).update(`:${ino}:${mtimeMs}`).digest('hex').slice(0, 16);
  return path.join(dir, `${LOCK_FILE}.takeover.${id}.0`);
}
const lockPid = (dir: string) => readFileSync(lockPath(dir), 'utf8').match(/^pid=(\d+)$/m)?.[1];

describe('archive lock', () => {
  it('refuses a second acquire, in the same process too, with ARCHIVE_LOCKED naming the holder', () => {
    const dir = tempDir();
    const lock = acquireArchiveLock(dir);
    expect(lock.path).toBe(lockPath(dir));
    expect(readdirSync(dir)).toEqual([LOCK_FILE]); // no temporary file left
    expect(readArchiveLock(dir)).toMatchObject({ pid: process.pid, host: os.hostname() });
    const err = lockError(() => acquireArchiveLock(dir));
    expect(err.code).toBe('ARCHIVE_LOCKED');
    expect(err.message).toContain(`in use by walstream pid ${process.pid} on host ${os.hostname()}`);
    expect(err.message).not.toContain('\n');
    expect(readdirSync(dir)).toEqual([LOCK_FILE]);
  });

  it('can lock again after release; release is idempotent', () => {
    const dir = tempDir();
    acquireArchiveLock(dir).release();
    expect(readArchiveLock(dir)).toBeNull();
    const lock = acquireArchiveLock(dir);
    lock.release();
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('takes over the lock of a dead pid', async () => {
    const dir = tempDir();
    const dead = await deadPid();
    writeFileSync(lockPath(dir), lockText(dead));
    acquireArchiveLock(dir);
    expect(lockPid(dir)).toBe(String(process.pid));
    expect(readdirSync(dir)).toEqual([LOCK_FILE]);
  });

  it.skipIf(!hasProc)('takes over a lock whose pid is alive but another process (start time differs)', () => {
    const dir = tempDir();
    writeFileSync(lockPath(dir), lockText({ pid: process.pid, procstart: '1' }));
    acquireArchiveLock(dir);
    expect(readFileSync(lockPath(dir), 'utf8')).toContain(`procstart=${procStart(process.pid)}\n`);
  });

  it.skipIf(!hasProc)('takes over the lock of a zombie', async () => {
    const dir = tempDir();
    // sh forks `sleep 0`, then becomes `sleep 5`, which never reaps it: a zombie for 5 s.
    const sh = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number((await createInterface({ input: sh.stdout! })[Symbol.asyncIterator]().next()).value);
      for (let i = 0; i < 200 && !readOr(`/proc/${pid}/stat`).includes(') Z '); i++) await new Promise((r) => setTimeout(r, 10));
      expect(readOr(`/proc/${pid}/stat`)).toContain(') Z ');
      writeFileSync(lockPath(dir), lockText({ pid }));
      acquireArchiveLock(dir);
      expect(lockPid(dir)).toBe(String(process.pid));
    } finally {
      sh.kill('SIGKILL');
    }
  });

  it('refuses a lock held by a live process', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      writeFileSync(lockPath(dir), lockText({ pid: child.pid! }));
      const err = lockError(() => acquireArchiveLock(dir));
      expect(err.code).toBe('ARCHIVE_LOCKED');
      expect(err.message).toContain(`pid ${child.pid} on host ${os.hostname()} (since 2026-11-27T10:00:00.000Z): stop that process`);
      expect(lockPid(dir)).toBe(String(child.pid));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('never takes over a lock from another host, even of a pid dead here', async () => {
    const dir = tempDir();
    const text = lockText({ ...(await deadPid()), host: 'elsewhere.example' });
    writeFileSync(lockPath(dir), text);
    const err = lockError(() => acquireArchiveLock(dir));
    expect(err.code).toBe('ARCHIVE_LOCKED');
    expect(err.message).toMatch(/host, elsewhere\.example .*remove ".*walstream\.lock" if that host no longer runs walstream/);
    expect(readFileSync(lockPath(dir), 'utf8')).toBe(text);
  });

  it.skipIf(!hasProc)('takes over a lock from an earlier boot; from another PID namespace only once its heartbeat is 30 s old', async () => {
    const dir = tempDir();
    // Our own pid and start time: held, were it not for the other boot id.
    writeFileSync(lockPath(dir), lockText({ pid: process.pid, boot: '00000000-0000-0000-0000-000000000000' }));
    acquireArchiveLock(dir).release();
    const text = lockText({ ...(await deadPid()), pidns: 'pid:[1]' });
    writeFileSync(lockPath(dir), text); // just touched: a live holder in another container
    const err = lockError(() => acquireArchiveLock(dir));
    expect(err.code).toBe('ARCHIVE_LOCKED');
    expect(err.message).toContain('another PID namespace');
    expect(readFileSync(lockPath(dir), 'utf8')).toBe(text);
    // Untouched for 31 s: a container that was restarted (same host name, new PID namespace).
    const old = new Date(Date.now() - 31_000);
    utimesSync(lockPath(dir), old, old);
    const lock = acquireArchiveLock(dir);
    expect(readFileSync(lockPath(dir), 'utf8')).toContain(`pid=${process.pid}`);
    lock.release();
  });

  it('a holder touches its lock (the heartbeat another PID namespace judges it by)', async () => {
    const dir = tempDir();
    vi.useFakeTimers({ toFake: ['setInterval'] });
    try {
      const lock = acquireArchiveLock(dir);
      const old = new Date(Date.now() - 60_000);
      utimesSync(lockPath(dir), old, old);
      vi.advanceTimersByTime(10_000);
      expect(Date.now() - statSync(lockPath(dir)).mtimeMs).toBeLessThan(5_000);
      lock.release();
    } finally {
      vi.useRealTimers();
    }
  });

  it('waits while a live process claims the stale lock, then takes it over', async () => {
    const dir = tempDir();
    writeFileSync(lockPath(dir), lockText(await deadPid()));
    const claim = claimPath(dir);
    // The claimant gives up its claim after 400 ms (as one that found the lock changed would).
    const child = spawn(process.execPath, ['-e', `setTimeout(() => require('fs').rmSync(${JSON.stringify(claim)}), 400); setTimeout(() => {}, 30000)`], { stdio: 'ignore' });
    try {
      writeFileSync(claim, lockText({ pid: child.pid! }));
      const start = Date.now();
      acquireArchiveLock(dir);
      expect(Date.now() - start).toBeGreaterThanOrEqual(350);
      expect(lockPid(dir)).toBe(String(process.pid));
      expect(readdirSync(dir)).toEqual([LOCK_FILE]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('passes over the claim of a dead process, and removes dead processes\' leftovers once locked', async () => {
    const dir = tempDir();
    const dead = await deadPid();
    writeFileSync(lockPath(dir), lockText(dead));
    writeFileSync(claimPath(dir), lockText(dead));
    writeFileSync(path.join(dir, `${LOCK_FILE}.${dead.pid}.tmp`), 'pid=');
    acquireArchiveLock(dir);
    expect(lockPid(dir)).toBe(String(process.pid));
    expect(readdirSync(dir)).toEqual([LOCK_FILE]);
  });

  it('refuses an unparsable lock file younger than 10 s, takes over an older one', () => {
    const dir = tempDir();
    for (const junk of ['', 'garbage\n', 'pid=0\nhost=x\nstarted=y\n']) {
      writeFileSync(lockPath(dir), junk);
      expect(readArchiveLock(dir)).toBeNull();
      expect(lockError(() => acquireArchiveLock(dir)).code).toBe('ARCHIVE_LOCKED');
      const old = new Date(Date.now() - 11_000);
      utimesSync(lockPath(dir), old, old);
      acquireArchiveLock(dir).release();
      expect(readdirSync(dir)).toEqual([]);
    }
  });

  it('release leaves a lock that someone else replaced', () => {
    const dir = tempDir();
    const lock = acquireArchiveLock(dir);
    const other = lockText({ pid: 1, procstart: '' });
    writeFileSync(lockPath(dir), other);
    lock.release();
    expect(readFileSync(lockPath(dir), 'utf8')).toBe(other);
  });

  it('creates the lock file with mode 0600, or fileMode (0640) under umask 022', () => {
    const dir = tempDir();
    const umask = process.umask(0o022);
    try {
      const lock = acquireArchiveLock(dir);
      expect(statSync(lock.path).mode & 0o777).toBe(0o600);
      lock.release();
      acquireArchiveLock(dir, { fileMode: 0o640 });
      expect(statSync(lockPath(dir)).mode & 0o777).toBe(0o640);
    } finally {
      process.umask(umask);
    }
  });

  it('reports a missing directory as ARCHIVE_IO with the errno', () => {
    const err = lockError(() => acquireArchiveLock(path.join(tempDir(), 'absent')));
    expect(err.code).toBe('ARCHIVE_IO');
    expect(err.message).toMatch(/^could not lock archive ".*absent": no such file or directory \(ENOENT\); /);
  });

  it('of 8 processes racing to take over a stale lock, exactly one gets it (40 rounds)', { timeout: 60_000 }, async () => {
    const built = path.join(root, 'dist/archive/lock.js');
    expect(existsSync(built) && statSync(built).mtimeMs >= statSync(path.join(root, 'src/archive/lock.ts')).mtimeMs,
      'dist/archive/lock.js missing or older than the source: run npx tsc -p tsconfig.json').toBe(true);
    const script = path.join(tempDir(), 'racer.mjs');
    // For each directory read from stdin: try to lock it, print the outcome. Keeps its locks until stdin ends.
    writeFileSync(script, `
      import { createInterface } from 'node:readline';
      const { acquireArchiveLock } = await import(process.argv[2]);
      console.log('ready');
      for await (const dir of createInterface({ input: process.stdin })) {
        try { acquireArchiveLock(dir); console.log('ok'); } catch (err) { console.log(err.code ?? String(err)); }
      }
    `);
    const stale = lockText(await deadPid());
    const racers = Array.from({ length: 8 }, () =>
      spawn(process.execPath, [script, pathToFileURL(built).href], { stdio: ['pipe', 'pipe', 'inherit'] }));
    try {
      const outputs = racers.map((child) => createInterface({ input: child.stdout! })[Symbol.asyncIterator]());
      for (const out of outputs) expect((await out.next()).value).toBe('ready');
      for (let round = 0; round < 40; round++) {
        const dir = tempDir();
        writeFileSync(lockPath(dir), stale);
        for (const child of racers) child.stdin!.write(`${dir}\n`);
        const results = await Promise.all(outputs.map(async (out) => (await out.next()).value as string));
        expect(results.filter((r) => r === 'ok'), `round ${round}: ${results}`).toHaveLength(1);
        expect(results.filter((r) => r === 'ARCHIVE_LOCKED')).toHaveLength(7);
        expect(lockPid(dir)).toBe(String(racers[results.indexOf('ok')].pid));
        expect(readdirSync(dir)).toEqual([LOCK_FILE]);
      }
    } finally {
      for (const child of racers) child.kill('SIGKILL');
    }
  });
});
