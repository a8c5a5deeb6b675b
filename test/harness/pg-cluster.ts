/**
 * One throwaway PostgreSQL cluster: the Cluster class (SQL helpers, start/stop/kill/promote, teardown).
 * Create clusters with startCluster(), startStandby() or clusterFromDataDir() from ./cluster.js.
 *
 * Layout: a temp dir `$TMPDIR/walstream-pg-XXXXXX/` (owned by the server user, 0700) holding `data/`
 * (PGDATA), `postgres.log` (pg_ctl -l) and the Unix socket.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { appendFile, readFile, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { childPids, pidAlive, track, untrack, type Resource } from './cleanup.js';
import { quitServerSync } from '../../scripts/pg-local.mjs';
import { delay, findPgBin, lsnToBigInt, runTool, waitFor } from './tools.js';

export const CLUSTER_DIR_PREFIX = 'walstream-pg-';

export type StopMode = 'smart' | 'fast' | 'immediate';

/** postgresql.conf lines for `settings`; every value is single-quoted (PostgreSQL accepts that for any type). */
export function confLines(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([key, value]) => `${key} = '${value.replace(/'/g, "''")}'\n`)
    .join('');
}

/** Run a server-side tool as the server user; throw with its output if it fails. */
export async function runServerTool(name: string, args: string[], timeoutMs = 120_000, logFile?: string): Promise<string> {
  const result = await runTool(name, args, { asPostgres: true, timeoutMs });
  if (result.code === 0) return result.stdout;
  let log = '';
  if (logFile && existsSync(logFile)) log = '\n--- server log (tail) ---\n' + (await readFile(logFile, 'utf8')).slice(-4000);
  const how = result.timedOut ? `timed out after ${timeoutMs} ms` : `exited with ${result.code ?? result.signal}`;
  throw new Error(`${name} ${args.join(' ')} ${how}\n${result.stderr}${result.stdout}${log}`);
}

/** A running (or stopped) throwaway cluster. Create with startCluster(), startStandby() or clusterFromDataDir(). */
export class Cluster implements Resource {
  readonly host = '127.0.0.1';
  /** Directory of the server binaries this cluster runs (initdb, pg_ctl, postgres). */
  readonly bin: string;
  /** Temp dir holding data/, the log and the socket; removed by destroy(). */
  readonly baseDir: string;
  readonly logFile: string;
  private destroyed = false;

  /** `bin`: the server binaries to run it with (default findPgBin()), e.g. another major for test/compat. */
  constructor(
    readonly dataDir: string,
    readonly port: number,
    bin?: string,
  ) {
    this.bin = bin ?? findPgBin();
    this.baseDir = path.dirname(dataDir);
    if (!path.basename(this.baseDir).startsWith(CLUSTER_DIR_PREFIX) || path.basename(dataDir) !== 'data') {
      throw new Error(`not a harness data dir (expected .../${CLUSTER_DIR_PREFIX}XXXXXX/data): ${dataDir}`);
    }
    this.logFile = path.join(this.baseDir, 'postgres.log');
    track(this);
  }

  /** libpq keyword/value string for the superuser, e.g. 'host=127.0.0.1 port=5433 user=postgres dbname=postgres'. */
  get connectionString(): string {
    return this.connectionStringFor('postgres');
  }

  /** Same, for another role (and optional password); values are libpq-quoted when needed. */
  connectionStringFor(user: string, password?: string): string {
    const quote = (v: string) => (/^[^\s'\\]+$/.test(v) ? v : `'${v.replace(/[\\']/g, (c) => '\\' + c)}'`);
    const pw = password === undefined ? '' : ` password=${quote(password)}`;
    return `host=${this.host} port=${this.port} user=${quote(user)}${pw} dbname=postgres`;
  }

  /** Run `fn` with a short-lived pg Client connected as superuser `postgres` to dbname postgres. */
  async withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ host: this.host, port: this.port, user: 'postgres', database: 'postgres' });
    client.on('error', () => undefined); // a server killed under us must not crash the test process
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Rows of one SQL statement, run as superuser `postgres` over a short-lived connection. */
  async query<R = any>(sql: string, params?: unknown[]): Promise<R[]> {
    return this.withClient(async (client) => (await client.query(sql, params)).rows as R[]);
  }

  /** pg_current_wal_lsn() on a primary; in recovery, the last received (else replayed) LSN. */
  async currentLsn(): Promise<string> {
    const [row] = await this.query<{ lsn: string }>(
      `select (case when pg_is_in_recovery()
                    then coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                    else pg_current_wal_lsn() end)::text as lsn`,
    );
    return row!.lsn;
  }

  /** pg_current_wal_flush_lsn() (primary only). */
  async flushLsn(): Promise<string> {
    const [row] = await this.query<{ lsn: string }>('select pg_current_wal_flush_lsn()::text as lsn');
    return row!.lsn;
  }

  /** pg_last_wal_replay_lsn() (null on a primary). */
  async replayLsn(): Promise<string | null> {
    const [row] = await this.query<{ lsn: string | null }>('select pg_last_wal_replay_lsn()::text as lsn');
    return row!.lsn;
  }

  /**
   * Write at least `bytes` of WAL (committed, so flushed) by inserting ~1 kB rows (below the TOAST
   * threshold, so never compressed) into table `walgen`, created if absent; loops until
   * pg_current_wal_lsn() has moved that far. Primary only.
   */
  async generateWal(bytes: number): Promise<void> {
    await this.withClient(async (client) => {
      const lsn = async () =>
        lsnToBigInt((await client.query('select pg_current_wal_lsn()::text as lsn')).rows[0].lsn as string);
      await client.query('create table if not exists walgen (id bigserial, pad text)');
      const start = await lsn();
      let written = 0n;
      while (written < BigInt(bytes)) {
        const rows = Math.min(50_000, Math.max(1, Math.ceil((bytes - Number(written)) / 1100)));
        await client.query(`insert into walgen (pad) select repeat('x', 1000) from generate_series(1, $1)`, [rows]);
        written = (await lsn()) - start;
      }
    });
  }

  /** pg_switch_wal(): ends the current segment; returns the LSN it returned (end of the switch record). */
  async switchWal(): Promise<string> {
    const [row] = await this.query<{ lsn: string }>('select pg_switch_wal()::text as lsn');
    return row!.lsn;
  }

  /** Create physical slot `name` with WAL reserved immediately; returns its restart_lsn. */
  async createSlot(name: string): Promise<string> {
    const [row] = await this.query<{ lsn: string }>(
      'select lsn::text as lsn from pg_create_physical_replication_slot($1, true)',
      [name],
    );
    return row!.lsn;
  }

  /** restart_lsn of slot `name`, or null if the slot does not exist or has none. */
  async slotRestartLsn(name: string): Promise<string | null> {
    const rows = await this.query<{ lsn: string | null }>(
      'select restart_lsn::text as lsn from pg_replication_slots where slot_name = $1',
      [name],
    );
    return rows[0]?.lsn ?? null;
  }

  /** pg_is_in_recovery(). */
  async isInRecovery(): Promise<boolean> {
    const [row] = await this.query<{ r: boolean }>('select pg_is_in_recovery() as r');
    return row!.r;
  }

  /** Append settings to postgresql.conf (values quoted by the harness); they apply on reload()/restart(). */
  async appendConf(settings: Record<string, string>): Promise<void> {
    await appendFile(path.join(this.dataDir, 'postgresql.conf'), confLines(settings));
  }

  /** pg_reload_conf(). */
  async reload(): Promise<void> {
    await this.query('select pg_reload_conf()');
  }

  /** PID of the postmaster if it is running (first line of postmaster.pid), else undefined. */
  postmasterPid(): number | undefined {
    try {
      const pid = Number(readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return pid > 0 && pidAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** pg_ctl start -w (waits until the server accepts connections, or is a ready hot standby). */
  async start(): Promise<void> {
    await runServerTool(path.join(this.bin, 'pg_ctl'), ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', '60', 'start'], 90_000, this.logFile);
  }

  /** pg_ctl stop -m mode -w. */
  async stop(mode: StopMode = 'fast'): Promise<void> {
    await runServerTool(path.join(this.bin, 'pg_ctl'), ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop'], 90_000, this.logFile);
  }

  /** stop() then start(). */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** pg_ctl promote -w: returns once the standby accepts writes. */
  async promote(): Promise<void> {
    await runServerTool(path.join(this.bin, 'pg_ctl'), ['-D', this.dataDir, '-w', '-t', '60', 'promote'], 90_000, this.logFile);
  }

  /**
   * Crash the server: SIGKILL the postmaster, wait for its children to notice and exit (SIGKILL any
   * still there after 10 s), then remove the stale postmaster.pid and socket lock file (the dead PID
   * may linger as an unreaped zombie, which PostgreSQL takes for a live postmaster and refuses to
   * start). Afterwards start() performs crash recovery.
   */
  async kill(): Promise<void> {
    const pid = this.postmasterPid();
    if (pid === undefined) return;
    const children = childPids(pid);
    process.kill(pid, 'SIGKILL');
    const alive = () => [pid, ...children].filter(pidAlive);
    const deadline = Date.now() + 10_000;
    while (alive().length > 0 && Date.now() < deadline) await delay(20);
    for (const straggler of alive()) {
      try {
        process.kill(straggler, 'SIGKILL');
      } catch {
        // Exited meanwhile.
      }
    }
    await waitFor(async () => alive().length === 0, { timeoutMs: 5000, what: `postmaster ${pid} and its children to die` });
    for (const lockFile of [path.join(this.dataDir, 'postmaster.pid'), path.join(this.baseDir, `.s.PGSQL.${this.port}.lock`)]) {
      await unlink(lockFile).catch(() => undefined);
    }
  }

  /** Stop the server (fast; else immediate; else kill) and delete its directory. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    untrack(this);
    try {
      if (this.postmasterPid() !== undefined) {
        await this.stop('fast').catch(() => this.stop('immediate')).catch(() => this.kill());
      }
    } finally {
      await rm(this.baseDir, { recursive: true, force: true });
    }
  }

  /** Exit-time cleanup: SIGQUIT (immediate shutdown) the postmaster, wait up to 5 s, remove the directory. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const pid = this.postmasterPid();
    if (pid !== undefined) quitServerSync(pid);
    rmSync(this.baseDir, { recursive: true, force: true });
  }
}
