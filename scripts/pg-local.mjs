/**
 * Where this machine's PostgreSQL programs are and which OS user runs the server: shared by the test
 * harness (test/harness/tools.ts) and the benchmark (bench/lib/cluster.mjs). Plain JavaScript so the
 * bench runs without a TypeScript step; types for the harness are in pg-local.d.mts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

let pgBinCache;

function isPgBinDir(dir) {
  return existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres'));
}

/**
 * Directory holding the PostgreSQL binaries: $PG_BIN if set, else `pg_config --bindir` if pg_config is
 * on PATH (and that directory holds the server), else the highest version in /usr/lib/postgresql/<v>/bin.
 * Throws if none is found.
 */
export function findPgBin() {
  if (pgBinCache) return pgBinCache;
  const fromEnv = process.env.PG_BIN;
  if (fromEnv) {
    if (!isPgBinDir(fromEnv)) throw new Error(`PG_BIN=${fromEnv} does not contain initdb and postgres`);
    return (pgBinCache = fromEnv);
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (dir && isPgBinDir(dir)) return (pgBinCache = dir);
  } catch {
    // pg_config not on PATH: fall through.
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v) && isPgBinDir(path.join(root, v, 'bin'))).sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length > 0) return (pgBinCache = path.join(root, versions[0], 'bin'));
  throw new Error('PostgreSQL binaries not found: set PG_BIN, put pg_config on PATH, or install the server under /usr/lib/postgresql/<version>/bin');
}

let serverUserCache;

/**
 * { uid, gid } of the `postgres` OS user when we are root (the server refuses to run as root), else
 * null (run as ourselves). Throws when we are root and there is no such user.
 */
export function serverUser() {
  if (serverUserCache !== undefined) return serverUserCache;
  if (process.getuid?.() !== 0) return (serverUserCache = null);
  try {
    const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return (serverUserCache = { uid: id('-u'), gid: id('-g') });
  } catch {
    throw new Error('running as root, but there is no `postgres` OS user to run the PostgreSQL server as');
  }
}

const hasProc = existsSync('/proc/self/stat');

/**
 * True if `pid` is a live process. Zombies count as dead: a postmaster reparented away by pg_ctl may
 * never be reaped by this machine's init, and kill(pid, 0) still succeeds on a zombie.
 */
export function pidAlive(pid) {
  if (hasProc) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/**
 * Exit-time stop of a postmaster: SIGQUIT (immediate shutdown), wait up to `waitMs` for it to go,
 * SIGKILL if it has not. Synchronous, for 'exit' handlers. Never throws (a gone process is fine).
 */
export function quitServerSync(pid, waitMs = 5000) {
  try {
    process.kill(pid, 'SIGQUIT');
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let waited = 0; waited < waitMs && pidAlive(pid); waited += 20) Atomics.wait(pause, 0, 0, 20);
    if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
