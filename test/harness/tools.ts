/**
 * Binaries, tool-running and polling helpers for the integration-test harness. Everything here runs
 * real programs; nothing is mocked.
 *
 * PostgreSQL's server refuses to run as root. When the tests run as root, server-side commands run
 * as the `postgres` OS user (see serverUser()) and the directories they use are chowned to it.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { track, untrack, type Resource } from './cleanup.js';
import { findPgBin, serverUser as sharedServerUser } from '../../scripts/pg-local.mjs';

// ---------------------------------------------------------------------------------------------
// Binaries and users

export { findPgBin } from '../../scripts/pg-local.mjs';

export interface ServerUser {
  uid: number;
  gid: number;
}

/** The uid/gid server-side commands must run as: the `postgres` OS user when we are root, else undefined (run as ourselves). */
export function serverUser(): ServerUser | undefined {
  return sharedServerUser() ?? undefined;
}

/** Give `target` (recursively if asked) to the server user, so the server can use it; no-op when not root. */
export async function chownForServer(target: string, opts: { recursive?: boolean } = {}): Promise<void> {
  const user = serverUser();
  if (!user) return;
  await chown(target, user.uid, user.gid);
  if (!opts.recursive) return;
  const entries = await readdir(target, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const child = path.join(target, entry.name);
    if (entry.isDirectory()) await chownForServer(child, opts);
    else await chown(child, user.uid, user.gid);
  }
}

// ---------------------------------------------------------------------------------------------
// Running tools

export interface ToolOptions {
  /** Run as the server user (needed for initdb, pg_ctl, postgres, pg_basebackup, pg_rewind when root). */
  asPostgres?: boolean;
  /** runTool only: kill the tool (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
  /** Extra environment variables, on top of ours. */
  env?: Record<string, string>;
  /** Working directory; defaults to ours, or os.tmpdir() when running as postgres. */
  cwd?: string;
}

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** A long-running tool: the ChildProcess plus its output so far and a promise of its exit. */
export interface ToolProcess extends ChildProcess {
  readonly output: { stdout: string; stderr: string };
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function toolPath(name: string): string {
  return name.includes('/') ? name : path.join(findPgBin(), name);
}

function spawnOptions(opts: ToolOptions): SpawnOptions {
  const user = opts.asPostgres ? serverUser() : undefined;
  const options: SpawnOptions = {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd ?? (user ? os.tmpdir() : undefined),
    stdio: ['ignore', 'pipe', 'pipe'],
  };
  if (user) {
    options.uid = user.uid;
    options.gid = user.gid;
  }
  return options;
}

/** Spawn `name` with output collected into `.output` (so pipes never fill) and `.exited` resolving on exit. */
function spawnCollecting(name: string, args: string[], opts: ToolOptions): ToolProcess {
  const child = spawn(toolPath(name), args, spawnOptions(opts));
  const output = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (output.stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (output.stderr += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return Object.assign(child, { output, exited });
}

/**
 * Run a PostgreSQL binary (from findPgBin(), or an explicit path) to completion and collect its output.
 * Never rejects for a non-zero exit: check `code`. On timeout the tool is SIGKILLed and `timedOut` is set.
 */
export async function runTool(name: string, args: string[], opts: ToolOptions = {}): Promise<ToolResult> {
  const child = spawnCollecting(name, args, opts);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 60_000);
  try {
    const { code, signal } = await child.exited;
    return { code, signal, timedOut, ...child.output };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Start a long-running PostgreSQL tool (e.g. pg_receivewal without -n) and return at once. The process
 * is registered for cleanup: destroyAll() stops it (SIGTERM, then SIGKILL) if it is still running.
 */
export function spawnTool(name: string, args: string[], opts: ToolOptions = {}): ToolProcess {
  const child = spawnCollecting(name, args, opts);
  const running = () => child.exitCode === null && child.signalCode === null;
  const resource: Resource = {
    async destroy() {
      untrack(resource);
      if (!running()) return;
      child.kill('SIGTERM');
      const stopped = await Promise.race([child.exited.then(() => true, () => true), delay(5000).then(() => false)]);
      if (!stopped) {
        child.kill('SIGKILL');
        await child.exited.catch(() => undefined);
      }
    },
    destroySync() {
      if (running()) child.kill('SIGKILL');
    },
  };
  track(resource);
  child.exited.then(
    () => untrack(resource),
    () => untrack(resource),
  );
  return child;
}

// ---------------------------------------------------------------------------------------------
// Small utilities

/** A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Poll `fn` until it returns something other than undefined, null or false, and return that. Errors
 * thrown by `fn` count as "not yet" (e.g. a server still starting). Throws
 * `timed out waiting for ${what}` (with the last error as cause) after timeoutMs (default 30 s).
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | null | false>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const { timeoutMs = 30_000, intervalMs = 50, what = 'condition' } = opts;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out waiting for ${what}${detail}`, { cause: lastError });
    }
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/**
 * A fresh directory under os.tmpdir() named `${prefix}XXXXXX`, removed by destroyAll() (or at exit).
 * When we are root it is chowned to the server user, so server-run commands (archive_command,
 * restore_command) can use it too; root can still write anywhere in it.
 */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  await chownForServer(dir);
  const resource: Resource = {
    async destroy() {
      untrack(resource);
      await rm(dir, { recursive: true, force: true });
    },
    destroySync() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  track(resource);
  return dir;
}

/** PostgreSQL `X/X` LSN text as a bigint (harness-local, so tests do not depend on src/). */
export function lsnToBigInt(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(lsn)}`);
  return (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]);
}

/** Whether `openssl` is on PATH (TLS tests make their server certificate with it). */
export const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * A self-signed server certificate for CN=127.0.0.1, made with openssl in a temp directory the server
 * user can read (key mode 0600, as the server insists). `conf` turns TLS on in startCluster's conf.
 */
export async function selfSignedCertificate(): Promise<{ key: string; crt: string; conf: Record<string, string> }> {
  const certs = await tempDir('tls-');
  const key = path.join(certs, 'server.key');
  const crt = path.join(certs, 'server.crt');
  execFileSync('openssl', ['req', '-new', '-x509', '-days', '2', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', crt], { stdio: 'ignore' });
  await chownForServer(certs, { recursive: true });
  chmodSync(key, 0o600);
  return { key, crt, conf: { ssl: 'on', ssl_cert_file: crt, ssl_key_file: key } };
}
