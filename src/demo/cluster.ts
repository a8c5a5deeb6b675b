/**
 * One throwaway PostgreSQL cluster of the demo: its data directory DIR/NAME, its log DIR/NAME.log, a
 * port on 127.0.0.1 and no Unix socket. Started and stopped with pg_ctl, run as the server user.
 */
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, chown, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { type ServerUser, runPgTool } from './pg-tools.js';

/** What every cluster of one demo shares. */
export interface DemoEnv {
  bin: string;
  /** The demo directory (owned by the server user). */
  dir: string;
  user?: ServerUser;
  /** Aborts running programs (Ctrl-C). */
  signal: AbortSignal;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** postgresql.conf lines, every value single-quoted. */
function confLines(settings: Record<string, string>): string {
  return Object.entries(settings).map(([k, v]) => `${k} = '${v.replace(/'/g, "''")}'\n`).join('');
}

export class DemoCluster {
  readonly dataDir: string;
  readonly logFile: string;
  /** True once pg_ctl start has been run (the server may be up even if pg_ctl was interrupted). */
  started = false;

  constructor(private readonly env: DemoEnv, readonly name: string, readonly port: number) {
    this.dataDir = path.join(env.dir, name);
    this.logFile = path.join(env.dir, `${name}.log`);
  }

  /** libpq connection string for the superuser. */
  get conninfo(): string {
    return `host=127.0.0.1 port=${this.port} user=postgres dbname=postgres`;
  }

  /** Run a server program as the server user, cancelled by the demo's signal unless `uncancellable`. */
  run(name: string, args: string[], uncancellable = false): Promise<string> {
    const { bin, dir, user, signal } = this.env;
    return runPgTool(bin, name, args, { cwd: dir, user, signal: uncancellable ? undefined : signal });
  }

  /** Append settings to postgresql.conf (read at the next start). */
  async configure(settings: Record<string, string>): Promise<void> {
    await appendFile(path.join(this.dataDir, 'postgresql.conf'), confLines(settings));
  }

  /** Create an empty file in the data directory (standby.signal, recovery.signal), owned by the server user. */
  async touch(file: string): Promise<void> {
    const target = path.join(this.dataDir, file);
    await writeFile(target, '');
    if (this.env.user) await chown(target, this.env.user.uid, this.env.user.gid);
  }

  /** pg_ctl start -w: resolves once the server accepts connections. */
  async start(): Promise<void> {
    this.started = true;
    await this.run('pg_ctl', ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', '90', 'start']);
  }

  /** pg_ctl stop -m MODE -w; never cancelled (stopping is what an interrupt does). */
  async stop(mode: 'fast' | 'immediate'): Promise<void> {
    await this.run('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop'], true);
  }

  /** pg_ctl promote -w: resolves once the standby accepts writes. */
  async promote(): Promise<void> {
    await this.run('pg_ctl', ['-D', this.dataDir, '-w', '-t', '60', 'promote']);
  }

  /** PID of the running postmaster (from postmaster.pid), or undefined when there is none. */
  postmasterPid(): number | undefined {
    const file = path.join(this.dataDir, 'postmaster.pid');
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return pid > 0 ? pid : undefined;
  }

  /** Run `fn` with a connected client (superuser, database postgres), closed afterwards. */
  async withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ host: '127.0.0.1', port: this.port, user: 'postgres', database: 'postgres' });
    client.on('error', () => undefined); // a server stopped under us must not crash the demo
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** The first row of one statement. */
  async row<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R> {
    return this.withClient(async (c) => (await c.query(sql, params)).rows[0] as R);
  }
}
