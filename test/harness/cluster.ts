/**
 * Throwaway real PostgreSQL clusters for integration tests: the harness's entry point. Tests import
 * everything from here (it re-exports the Cluster class, tool runners and cleanup helpers).
 *
 * Every cluster, spawned tool and temp dir is registered for cleanup: tests call `afterAll(destroyAll)`,
 * and an exit hook kills any postmaster still running when the test process ends.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { track, untrack, type Resource } from './cleanup.js';
import { Cluster, CLUSTER_DIR_PREFIX, runServerTool } from './pg-cluster.js';
import { chownForServer, freePort, waitFor } from './tools.js';

export * from './cleanup.js';
export * from './tools.js';
export { Cluster, type StopMode } from './pg-cluster.js';

export interface StartClusterOptions {
  /** WAL segment size in MB (initdb --wal-segsize); default 1. */
  segmentSizeMB?: number;
  /** Require SCRAM for roles wsuser/wspass (LOGIN REPLICATION) and norepl/nopass (LOGIN, no REPLICATION). */
  scram?: boolean;
  /** Extra postgresql.conf settings, written last; values are quoted by the harness. */
  conf?: Record<string, string>;
  /** Extra initdb arguments, after the harness's own. */
  initdbArgs?: string[];
  /** Directory of the server binaries (initdb, pg_ctl, postgres) to use; default findPgBin() ($PG_BIN, ...). */
  bin?: string;
}

/** A new empty cluster base dir (mkdtemp walstream-pg-), owned by the server user, mode 0700. */
async function makeBaseDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), CLUSTER_DIR_PREFIX));
  await chownForServer(dir);
  return dir;
}

/** Settings every harness cluster gets: local-only listener, replication on, log via pg_ctl -l. */
function baseSettings(baseDir: string, port: number): Record<string, string> {
  return {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: baseDir,
    wal_level: 'replica',
    max_wal_senders: '10',
    max_replication_slots: '10',
    wal_keep_size: '64MB',
    hot_standby: 'on',
    logging_collector: 'off',
    log_replication_commands: 'on',
  };
}

const TRUST_HBA = [
  'local all all trust',
  'host all all 127.0.0.1/32 trust',
  'host replication all 127.0.0.1/32 trust',
];

const SCRAM_HBA = [
  'host all,replication wsuser 127.0.0.1/32 scram-sha-256',
  'host replication,all norepl 127.0.0.1/32 scram-sha-256',
];

/**
 * initdb and start a new primary on a free port (trust auth on 127.0.0.1 and the socket, 1 MB WAL
 * segments unless told otherwise). With `scram`, roles wsuser/wspass (REPLICATION) and norepl/nopass
 * must authenticate with SCRAM. On failure the half-made cluster is destroyed before rethrowing.
 */
export async function startCluster(opts: StartClusterOptions = {}): Promise<Cluster> {
  const baseDir = await makeBaseDir();
  const cluster = new Cluster(path.join(baseDir, 'data'), await freePort(), opts.bin);
  try {
    await runServerTool(path.join(cluster.bin, 'initdb'), [
      '-D', cluster.dataDir,
      '-U', 'postgres',
      '--auth=trust',
      `--wal-segsize=${opts.segmentSizeMB ?? 1}`,
      '-E', 'UTF8',
      '--locale=C',
      '--no-sync',
      ...(opts.initdbArgs ?? []),
    ]);
    await cluster.appendConf({
      ...baseSettings(baseDir, cluster.port),
      ...(opts.scram ? { password_encryption: 'scram-sha-256' } : {}),
      ...opts.conf,
    });
    const hba = [...(opts.scram ? SCRAM_HBA : []), ...TRUST_HBA];
    await writeFile(path.join(cluster.dataDir, 'pg_hba.conf'), hba.join('\n') + '\n');
    await cluster.start();
    if (opts.scram) {
      await cluster.query(`create role wsuser login replication password 'wspass'`);
      await cluster.query(`create role norepl login password 'nopass'`);
    }
    return cluster;
  } catch (err) {
    await cluster.destroy().catch(() => undefined);
    throw err;
  }
}

export interface BaseBackupOptions {
  /** pg_basebackup -X: 'none' leaves WAL to restore_command; 'stream'/'fetch' include it. */
  walMethod: 'none' | 'stream' | 'fetch';
  /** pg_basebackup -R: write standby.signal and primary_conninfo. */
  writeRecoveryConf?: boolean;
  /** Replication slot for the backup (and, with -R, primary_slot_name); created on the primary if absent. */
  slot?: string;
  extraArgs?: string[];
}

/**
 * pg_basebackup (run as the server user) of `primary` into a new harness dir; returns the data dir
 * (`.../walstream-pg-XXXXXX/data`, owned by the server user). Not started; registered for cleanup.
 * Turn it into a Cluster with clusterFromDataDir().
 */
export async function baseBackup(primary: Cluster, opts: BaseBackupOptions): Promise<string> {
  const baseDir = await makeBaseDir();
  const cleanup: Resource = {
    async destroy() {
      untrack(cleanup);
      await rm(baseDir, { recursive: true, force: true });
    },
    destroySync: () => rmSync(baseDir, { recursive: true, force: true }),
  };
  track(cleanup);
  const dataDir = path.join(baseDir, 'data');
  if (opts.slot && (await primary.query('select 1 from pg_replication_slots where slot_name = $1', [opts.slot])).length === 0) {
    await primary.createSlot(opts.slot);
  }
  await runServerTool('pg_basebackup', [
    '-D', dataDir,
    '-X', opts.walMethod,
    '-c', 'fast',
    '-h', primary.host,
    '-p', String(primary.port),
    '-U', 'postgres',
    ...(opts.writeRecoveryConf ? ['-R'] : []),
    ...(opts.slot ? ['-S', opts.slot] : []),
    ...(opts.extraArgs ?? []),
  ]);
  return dataDir;
}

/**
 * Wrap a data dir made by baseBackup() as a Cluster on a new free port (port, socket dir and `conf`
 * appended to its postgresql.conf). Does not start it: add recovery settings/signal files, then start().
 */
export async function clusterFromDataDir(dataDir: string, opts: { conf?: Record<string, string> } = {}): Promise<Cluster> {
  const cluster = new Cluster(dataDir, await freePort());
  await cluster.appendConf({
    port: String(cluster.port),
    unix_socket_directories: cluster.baseDir,
    ...opts.conf,
  });
  return cluster;
}

/**
 * A streaming hot standby of `primary` (pg_basebackup -R -X stream, optionally via `slot`, created if
 * absent). Returns once it is in recovery and its WAL receiver is streaming.
 */
export async function startStandby(primary: Cluster, opts: { slot?: string } = {}): Promise<Cluster> {
  const dataDir = await baseBackup(primary, { walMethod: 'stream', writeRecoveryConf: true, slot: opts.slot });
  const standby = await clusterFromDataDir(dataDir);
  await standby.start();
  await waitFor(
    async () => {
      if (!(await standby.isInRecovery())) throw new Error('standby is not in recovery');
      const rows = await standby.query<{ status: string }>('select status from pg_stat_wal_receiver');
      return rows[0]?.status === 'streaming';
    },
    { timeoutMs: 60_000, what: `standby on port ${standby.port} to stream from port ${primary.port}` },
  );
  return standby;
}
