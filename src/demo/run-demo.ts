/**
 * `walstream demo` end to end: a throwaway primary and streaming standby, walstream's Archiver
 * in-process while a load runs, a failover it follows, the archive verified, a base backup restored
 * from the archive through `walstream restore`, row counts compared. Everything it starts is stopped
 * on every path (see Teardown); files are removed on success unless `keep`.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Archiver } from '../archiver.js';
import { formatLsn, parseLsn, walFileName } from '../lsn.js';
import { verifyArchive } from '../walfile/verify-archive.js';
import { DemoCluster, type DemoEnv, freePort } from './cluster.js';
import { LiveLine } from './live-line.js';
import { createLoadTable, runLoad } from './load.js';
import { takeBaseBackup, standbySettings } from './base-backup.js';
import { embeddedPostgres } from './embedded-pg.js';
import { checkReachable, DemoError, findDemoBin, findServerUser, hasBasebackup } from './pg-tools.js';
import { type DemoFigures, summaryText } from './summary.js';
import { Teardown } from './teardown.js';
import { waitUntil } from './wait.js';
import { chownTree, prepareWorkspace, removeWorkspace } from './workspace.js';

export interface DemoOptions {
  dir: string;
  /** MiB of WAL the load writes. */
  mb: number;
  keep: boolean;
  /** The walstream CLI script restore_command runs (dist/cli/main.js). */
  cli: string;
  /** Aborted on Ctrl-C / SIGTERM. */
  signal: AbortSignal;
  /** One line of the story. */
  say: (line: string) => void;
}

const SEGMENT_MB = 16;
const SEGMENT = SEGMENT_MB * 1024 * 1024;
const SLOT = 'walstream';

/** Settings of every demo server: TCP on 127.0.0.1 only, no socket; fsync off (throwaway data, 2 cores). */
function serverSettings(port: number): Record<string, string> {
  return { listen_addresses: '127.0.0.1', port: String(port), unix_socket_directories: '', fsync: 'off', synchronous_commit: 'off', max_wal_size: '2GB', logging_collector: 'off' };
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Complete segments per timeline, history files and bytes in the archive. */
async function archiveContents(dir: string): Promise<Pick<DemoFigures, 'segments' | 'historyFiles' | 'archiveBytes'>> {
  const segments: Record<number, number> = {};
  let historyFiles = 0;
  let archiveBytes = 0;
  for (const name of await readdir(dir)) {
    if (/^[0-9A-F]{24}$/.test(name)) segments[parseInt(name.slice(0, 8), 16)] = (segments[parseInt(name.slice(0, 8), 16)] ?? 0) + 1;
    else if (/^[0-9A-F]{8}\.history$/.test(name)) historyFiles++;
    else continue;
    archiveBytes += (await stat(path.join(dir, name))).size;
  }
  return { segments, historyFiles, archiveBytes };
}

/**
 * Run the demo; resolves the summary's figures. Rejects with a DemoError (a one-line message), an
 * Error from a step, or the signal's reason when interrupted; files are then kept and every process
 * it started is stopped before it settles.
 */
export async function runDemo(opts: DemoOptions): Promise<DemoFigures> {
  const t0 = performance.now();
  const seconds = (since: number) => (performance.now() - since) / 1000;
  const { say, signal } = opts;
  const user = findServerUser();
  if (user) for (const [target, what] of [[opts.dir, 'the demo directory'], [process.execPath, 'node'], [opts.cli, 'the walstream CLI']] as const) checkReachable(target, what, user);
  const bin = findDemoBin() ?? await embeddedPostgres(opts.dir, user, say, signal);
  // Without pg_basebackup (the embedded package has none): the low-level backup API over SQL.
  const basebackup = hasBasebackup(bin);
  const workspace = await prepareWorkspace(opts.dir, user);
  const env: DemoEnv = { bin, dir: workspace.dir, user, signal };
  const teardown = new Teardown();
  const archiveDir = path.join(workspace.dir, 'archive');
  try {
    say(`walstream demo in ${workspace.dir} (PostgreSQL from ${bin}${user ? ', servers run as the postgres user' : ''})`);
    // A primary with the archive's slot, and a streaming standby.
    const primary = teardown.cluster(new DemoCluster(env, 'primary', await freePort()));
    await primary.run('initdb', ['-D', primary.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync', `--wal-segsize=${SEGMENT_MB}`]);
    await primary.configure(serverSettings(primary.port));
    await primary.start();
    await primary.row(`select pg_create_physical_replication_slot($1, true)`, [SLOT]);
    await primary.withClient(createLoadTable);
    const version = (await primary.row<{ v: string }>(`select current_setting('server_version') as v`)).v;
    say(`primary    PostgreSQL ${version} on port ${primary.port}, slot ${SLOT}`);
    const standby = teardown.cluster(new DemoCluster(env, 'standby', await freePort()));
    let standbyHow = 'pg_basebackup -R';
    if (basebackup) {
      await primary.run('pg_basebackup', ['-D', standby.dataDir, '-X', 'stream', '-c', 'fast', '-R', '-C', '-S', 'standby', '-d', primary.conninfo]);
    } else {
      // What -C -S standby -X fetch -R do: the slot first (it keeps the backup's WAL), the WAL copied in.
      await primary.row(`select pg_create_physical_replication_slot('standby', true)`);
      const taken = await primary.withClient((c) => takeBaseBackup(c, { source: primary.dataDir, dest: standby.dataDir, label: 'walstream demo standby', withWal: true, user, signal }));
      standbyHow = `${taken.api}, ${taken.walFiles} WAL file${taken.walFiles === 1 ? '' : 's'} copied in`;
      await standby.configure(standbySettings(`host=127.0.0.1 port=${primary.port} user=postgres`, 'standby'));
      await standby.touch('standby.signal');
    }
    await standby.configure({ port: String(standby.port) });
    await standby.start();
    await standby.row(`select pg_create_physical_replication_slot($1, true)`, [SLOT]);
    await waitUntil('the standby to stream', async () => (await standby.row<{ s?: string }>('select status as s from pg_stat_wal_receiver'))?.s === 'streaming', signal);
    say(`standby    port ${standby.port}, streaming from the primary (${standbyHow}), slot ${SLOT} for after a failover`);

    // walstream, given both hosts, archives the primary.
    let live: LiveLine | null = null;
    const narrate = (line: string) => { live?.clear(); say(line); };
    const archiver = new Archiver({ connection: `host=127.0.0.1,127.0.0.1 port=${primary.port},${standby.port} user=postgres`, directory: archiveDir, slot: SLOT, timeoutSeconds: 10 });
    await mkdir(archiveDir);
    let segments = 0;
    let fatal: unknown = null;
    archiver.on('segment', () => segments++);
    archiver.on('log', ({ level, message }) => { if (level !== 'debug') narrate(`           walstream: ${message}`); });
    const running = archiver.run().catch((err) => { fatal = err; });
    teardown.onStop(async () => { archiver.stop(); await running; });
    const archiverOk = () => { if (fatal) throw new DemoError(`walstream stopped: ${(fatal as Error).message}`); };
    const written = () => archiver.positions()?.writeLsn ?? 0n;
    await waitUntil('walstream to start streaming', () => { archiverOk(); return archiver.positions() !== null; }, signal);
    say(`walstream  archiving host=127.0.0.1 port=${primary.port},${standby.port} into ${archiveDir}`);

    // A base backup without WAL: restoring it will need the archive.
    const restored = teardown.cluster(new DemoCluster(env, 'restored', await freePort()));
    let how = 'pg_basebackup -X none';
    if (basebackup) await primary.run('pg_basebackup', ['-D', restored.dataDir, '-X', 'none', '-c', 'fast', '-d', primary.conninfo]);
    else how = `${(await primary.withClient((c) => takeBaseBackup(c, { source: primary.dataDir, dest: restored.dataDir, label: 'walstream demo restore', withWal: false, user, signal }))).api}, data directory copied`;
    say(`backup     ${how} (no WAL inside: recovering it needs the archive)`);

    // The load, with the live line.
    let serverLsn = parseLsn((await primary.row<{ l: string }>('select pg_current_wal_lsn()::text as l')).l);
    let walDone = 0;
    const target = opts.mb * 1024 * 1024;
    live = new LiveLine(() => ({ writeLsn: archiver.positions()?.writeLsn ?? null, serverLsn, segments, walDone, walTarget: target }));
    say(`load       inserting ~1 kB rows until ${opts.mb} MiB of WAL`);
    const loadStart = performance.now();
    live.begin();
    try {
      await primary.withClient((client) => runLoad(client, target, signal, (p) => { serverLsn = p.serverLsn; walDone = p.walBytes; }));
      await waitUntil('walstream to catch up', () => { archiverOk(); return written() >= serverLsn; }, signal);
    } finally {
      live.end();
      live = null;
    }
    signal.throwIfAborted();
    const loadSeconds = seconds(loadStart);
    say(`load       ${(walDone / 1048576).toFixed(0)} MiB of WAL in ${loadSeconds.toFixed(1)} s; walstream has written all of it, up to ${formatLsn(written())}`);

    // Failover: the primary stops, the standby is promoted, walstream follows to timeline 2.
    const failoverStart = performance.now();
    await primary.stop('fast');
    await standby.promote();
    say(`failover   primary stopped, standby promoted`);
    await waitUntil('walstream on timeline 2', () => { archiverOk(); return archiver.positions()?.timeline === 2; }, signal);
    const failoverSeconds = seconds(failoverStart);
    const { l: switchLsn } = await standby.withClient(async (c) => {
      await c.query(`insert into demo_rows (payload) select 'after failover ' || g from generate_series(1, 1000) g`);
      return (await c.query('select pg_switch_wal()::text as l')).rows[0] as { l: string };
    });
    const lastSegment = walFileName(2, parseLsn(switchLsn) - 1n, SEGMENT);
    await waitUntil(`${lastSegment} in the archive`, async () => { archiverOk(); return (await readdir(archiveDir)).includes(lastSegment); }, signal);
    const rows = Number((await standby.row<{ n: string }>('select count(*) as n from demo_rows')).n);
    say(`failover   walstream followed to timeline 2 in ${failoverSeconds.toFixed(1)} s; 1000 rows written there, ${lastSegment} archived`);
    archiver.stop();
    await running;
    archiverOk();
    await standby.stop('fast');

    // The archive, checked record by record.
    const verified = await verifyArchive({ directory: archiveDir, all: true, signal });
    signal.throwIfAborted();
    if (!verified.ok) throw new DemoError(`walstream verify found faults: ${verified.files.flatMap((f) => f.problems.map((p) => `${f.file}: ${p}`)).slice(0, 3).join('; ')}`);
    say(`verify     ${verified.segments} segments, ${verified.records} records: sound`);

    // Recover the backup from the archive alone.
    if (user) await chownTree(archiveDir, user);
    const restoreStart = performance.now();
    await restored.configure({
      ...serverSettings(restored.port),
      restore_command: `${shellQuote(process.execPath)} ${shellQuote(opts.cli)} restore %f %p -D ${shellQuote(archiveDir)}`,
      recovery_target_timeline: 'latest',
    });
    await restored.touch('recovery.signal');
    say(`restore    restore_command = 'walstream restore %f %p -D ${archiveDir}', recovery_target_timeline = latest`);
    await restored.start();
    await waitUntil('the restored server to finish recovery', async () => !(await restored.row<{ r: boolean }>('select pg_is_in_recovery() as r')).r, signal, 120_000);
    const restoredRows = Number((await restored.row<{ n: string }>('select count(*) as n from demo_rows')).n);
    if (restoredRows !== rows) throw new DemoError(`the restored server has ${restoredRows} rows where the new primary had ${rows}`);
    const restoreSeconds = seconds(restoreStart);
    say(`restore    recovered to the end of the archive: ${restoredRows} rows, the same as the new primary`);
    await restored.stop('fast');

    const contents = await archiveContents(archiveDir);
    await teardown.stopAll();
    if (!opts.keep) await removeWorkspace(workspace);
    return { archiveDir, ...contents, records: verified.records, loadWalBytes: walDone, loadSeconds, failoverSeconds, rows, restoreSeconds, totalSeconds: seconds(t0), kept: opts.keep };
  } finally {
    await teardown.stopAll();
  }
}

export { summaryText, DemoError };
