/**
 * A throwaway PostgreSQL cluster for the benchmark (plain JS: the bench runs on Node 20 without a
 * TypeScript step for itself). The same approach as test/harness/cluster.ts, cut down: initdb as
 * the `postgres` OS user when we are root, a free port on 127.0.0.1, trust authentication, and
 * removal of everything at exit (even on Ctrl-C).
 */
import { spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { findPgBin, quitServerSync, serverUser } from '../../scripts/pg-local.mjs';

export { findPgBin, serverUser };

// ---------------------------------------------------------------------------------------------
// Binaries

/** Absolute path of a PostgreSQL program (pg_receivewal, pgbench, …) from findPgBin(). */
export function pgTool(name) {
  return path.join(findPgBin(), name);
}

/** Run a program to completion; reject with its output on a non-zero exit. */
export function run(file, args, { asPostgres = false, env, timeoutMs = 300_000 } = {}) {
  const user = asPostgres ? serverUser() : null;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
      cwd: user ? os.tmpdir() : undefined,
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${path.basename(file)} ${args.join(' ')} exited with ${code ?? signal}\n${stderr}${stdout}`));
    });
  });
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// LSNs

/** 'X/Y' → bigint. */
export function parseLsn(text) {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(String(text).trim());
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]);
}

/** bigint → 'X/Y'. */
export function formatLsn(lsn) {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

// ---------------------------------------------------------------------------------------------
// The cluster

const live = new Set();
let exitHooked = false;

function hookExit() {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => { for (const c of live) c.destroySync(); });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}: stopping the benchmark cluster\n`);
      process.exit(130);
    });
  }
}

export class BenchCluster {
  constructor(baseDir, port) {
    this.baseDir = baseDir;
    this.dataDir = path.join(baseDir, 'data');
    this.logFile = path.join(baseDir, 'postgres.log');
    this.port = port;
    this.host = '127.0.0.1';
    this.destroyed = false;
    live.add(this);
    hookExit();
  }

  /** libpq keyword/value connection string for the superuser, plus extra `key=value` words. */
  conninfo(extra = '') {
    return `host=${this.host} port=${this.port} user=postgres dbname=postgres${extra ? ' ' + extra : ''}`;
  }

  /** A connected pg.Client (superuser, database postgres); the caller ends it. */
  async client() {
    const client = new pg.Client({ host: this.host, port: this.port, user: 'postgres', database: 'postgres' });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  /** Rows of one statement over a short-lived connection. */
  async query(sql, params) {
    const client = await this.client();
    try {
      return (await client.query(sql, params)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async start() {
    await run(pgTool('pg_ctl'), ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', '120', 'start'], { asPostgres: true });
  }

  async stop(mode = 'fast') {
    await run(pgTool('pg_ctl'), ['-D', this.dataDir, '-m', mode, '-w', '-t', '120', 'stop'], { asPostgres: true });
  }

  postmasterPid() {
    try {
      const pid = Number(readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  async destroy() {
    if (this.destroyed) return;
    try {
      if (this.postmasterPid() !== undefined) await this.stop('fast').catch(() => this.stop('immediate')).catch(() => undefined);
    } finally {
      this.destroyed = true;
      live.delete(this);
      rmSync(this.baseDir, { recursive: true, force: true });
    }
  }

  destroySync() {
    if (this.destroyed) return;
    this.destroyed = true;
    const pid = this.postmasterPid();
    if (pid !== undefined) quitServerSync(pid);
    rmSync(this.baseDir, { recursive: true, force: true });
  }
}

/**
 * initdb and start a new primary. `parent` is where its directory goes (default os.tmpdir());
 * `conf` is appended to postgresql.conf (values single-quoted).
 */
export async function startCluster({ segmentMB = 16, parent = os.tmpdir(), conf = {} } = {}) {
  const baseDir = mkdtempSync(path.join(parent, 'walstream-bench-pg-'));
  const user = serverUser();
  if (user) chownSync(baseDir, user.uid, user.gid);
  const cluster = new BenchCluster(baseDir, await freePort());
  try {
    await run(pgTool('initdb'), ['-D', cluster.dataDir, '-U', 'postgres', '--auth=trust', `--wal-segsize=${segmentMB}`, '-E', 'UTF8', '--locale=C', '--no-sync'], { asPostgres: true });
    const settings = {
      listen_addresses: '127.0.0.1',
      port: String(cluster.port),
      unix_socket_directories: baseDir,
      logging_collector: 'off',
      ...conf,
    };
    appendFileSync(path.join(cluster.dataDir, 'postgresql.conf'),
      Object.entries(settings).map(([k, v]) => `${k} = '${String(v).replace(/'/g, "''")}'\n`).join(''));
    writeFileSync(path.join(cluster.dataDir, 'pg_hba.conf'), [
      'local all all trust',
      'host all all 127.0.0.1/32 trust',
      'host replication all 127.0.0.1/32 trust',
    ].join('\n') + '\n');
    await cluster.start();
    return cluster;
  } catch (err) {
    await cluster.destroy().catch(() => undefined);
    throw err;
  }
}
