/**
 * Issue 18, acceptance 2 and 4: recovery through bin/walstream-restore with the prefetch helper, on a real
 * archive made by walstream across a promotion (timeline 1, 00000002.history, timeline 2).
 *
 * The helper's prediction is put wrong three ways: the timeline switch in the middle, a segment missing
 * from the archive, and a recovery that stops early (recovery_target_lsn). Each time every file
 * PostgreSQL received (%p, hashed right after each call by the restore_command itself) equals the
 * archive's file of that name, recovery reaches the same data as without prefetching, every helper exits
 * by itself and its spool is gone. Throughout, nothing but PostgreSQL's own files is created in the data
 * directory or pg_wal (watched while recovery runs, and walked afterwards).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { copyFile, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  baseBackup,
  chownForServer,
  clusterFromDataDir,
  destroyAll,
  lsnToBigInt,
  startCluster,
  startStandby,
  tempDir,
  waitFor,
  type Cluster,
} from '../harness/cluster.js';
import { spawnWalstream } from '../harness/walstream.js';
import { defaultSpoolDir } from '../../src/restore/spool.js';

afterAll(destroyAll);

const ROWS = 300;
const FAST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/walstream-restore');
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface Fixture {
  archive: string;
  logs: string;
  backups: string[];
  /** LSN right after batch 5's commit, on timeline 1. */
  batch5: string;
  /** The segment holding batch 7's rows (timeline 1). */
  batch7Segment: string;
  /** The promoted server's final table. */
  expected: TableState;
}
interface TableState { n: string; s: string; h: string }
let fx: Fixture;

const tableState = async (c: Cluster): Promise<TableState> =>
  (await c.query<TableState>(`select count(*)::text as n, coalesce(sum(id), 0)::text as s, md5(coalesce(string_agg(v, ',' order by id), '')) as h from t`))[0]!;

async function batch(c: Cluster, i: number): Promise<string> {
  await c.query(`insert into t select g, 'batch ${i} row ' || g from generate_series(${(i - 1) * ROWS + 1}, ${i * ROWS}) g`);
  const lsn = await c.currentLsn();
  await c.generateWal(600 * 1024);
  await c.switchWal();
  return lsn;
}

beforeAll(async () => {
  // walstream archives from a standby; the standby's promotion puts timeline 2 into the archive.
  const primary = await startCluster({ segmentSizeMB: 1 });
  const standby = await startStandby(primary);
  await standby.createSlot('ws');
  const archive = await tempDir('walstream-archive-');
  const ws = spawnWalstream(['receive', '-D', archive, '-S', 'ws', '-h', '127.0.0.1', '-p', String(standby.port), '-U', 'postgres', '-v'], { asPostgres: true });
  await waitFor(async () => /starting log streaming/.test(ws.output.stderr), { timeoutMs: 30_000, what: 'walstream to stream' });
  const backups: string[] = [];
  for (let i = 0; i < 5; i++) backups.push(await baseBackup(primary, { walMethod: 'none' }));

  await primary.query('create table t (id int primary key, v text not null)');
  const lsns: string[] = [];
  for (let i = 1; i <= 8; i++) lsns.push(await batch(primary, i));
  const batch7Segment = (await primary.query<{ f: string }>(`select pg_walfile_name('${lsns[6]}') as f`))[0]!.f;
  const tl1End = lsnToBigInt(await primary.currentLsn());
  await waitFor(async () => lsnToBigInt((await standby.replayLsn()) ?? '0/0') >= tl1End, { what: 'standby replay' });
  await standby.promote();
  await primary.stop('immediate');
  for (let i = 9; i <= 12; i++) await batch(standby, i);
  const last = (await standby.query<{ f: string }>(`select pg_walfile_name(pg_current_wal_lsn() - 1) as f`))[0]!.f;
  const lastComplete = (await standby.query<{ f: string }>(`select pg_walfile_name(pg_switch_wal() - 1) as f`))[0]!.f;
  await waitFor(async () => existsSync(path.join(archive, lastComplete)) && existsSync(path.join(archive, '00000002.history')), {
    timeoutMs: 60_000,
    what: `${lastComplete} (after ${last}) in the archive`,
  });
  ws.kill('SIGINT');
  expect((await ws.exited).code, ws.output.stderr).toBe(0);
  fx = { archive, logs: await tempDir('walstream-restore-log-'), backups, batch5: lsns[4]!, batch7Segment, expected: await tableState(standby) };
  expect(fx.expected.n).toBe(String(12 * ROWS));
  await standby.stop('fast');
}, 300_000);

/** What one recovery did: the data it reached, the files PostgreSQL received, helpers seen, names created in the data dir. */
interface Recovery { state: TableState; received: Array<{ file: string; hash: string }>; helperPids: Set<number>; maxSpooled: number; created: string[]; log: string }

/**
 * Recover backup `index` from `archive` with restore_command = bin/walstream-restore (plus `options`),
 * each received %p hashed by the command itself, while the spool and the data directory are watched.
 */
async function recover(index: number, archive: string, options: string[], conf: Record<string, string> = {}): Promise<Recovery> {
  const log = path.join(fx.logs, `received-${index}.log`);
  const restore = `WALSTREAM_NODE=${q(process.execPath)} ${q(FAST)} %f %p -D ${q(archive)} --prefetch-idle 2 ${options.join(' ')}`;
  const cluster = await clusterFromDataDir(fx.backups[index]!);
  await cluster.appendConf({ restore_command: `${restore} && echo "%f $(sha256sum < %p)" >> ${q(log)}`, ...conf });
  await writeFile(path.join(cluster.dataDir, 'recovery.signal'), '');
  await chownForServer(path.join(cluster.dataDir, 'recovery.signal'));

  const created: string[] = [];
  const watchers: FSWatcher[] = [cluster.dataDir, path.join(cluster.dataDir, 'pg_wal')].map((dir) =>
    watch(dir, (_event, name) => name && created.push(`${path.basename(dir)}/${name}`)),
  );
  const spool = defaultSpoolDir(archive);
  const helperPids = new Set<number>();
  let maxSpooled = 0;
  const sampler = setInterval(() => {
    try {
      helperPids.add(Number(/^pid=(\d+)/.exec(readFileSync(path.join(spool, 'walstream.lock'), 'utf8'))![1]));
    } catch { /* no helper now */ }
    readdir(spool).then((names) => (maxSpooled = Math.max(maxSpooled, names.filter((n) => /^[0-9A-F]{24}$/.test(n)).length)), () => undefined);
  }, 20);
  try {
    await cluster.start();
    await waitFor(async () => !(await cluster.isInRecovery()), { timeoutMs: 90_000, what: 'recovery to end' });
  } finally {
    clearInterval(sampler);
    for (const w of watchers) w.close();
  }
  const state = await tableState(cluster);
  const serverLog = await readFile(cluster.logFile, 'utf8');
  await cluster.stop('fast');
  const walk = async (dir: string): Promise<string[]> =>
    (await readdir(dir, { withFileTypes: true })).flatMap((e) => [path.join(dir, e.name)]).concat(
      ...(await Promise.all((await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => walk(path.join(dir, e.name))))),
    );
  const stray = (await walk(cluster.dataDir)).filter((p) => /walstream|prefetch/i.test(path.basename(p)));
  expect(stray, 'files of ours left in the data directory').toEqual([]);
  const received = existsSync(log)
    ? (await readFile(log, 'utf8')).trim().split('\n').map((line) => {
        const [file, hash] = line.split(/\s+/);
        return { file: file!, hash: hash! };
      })
    : [];
  return { state, received, helperPids, maxSpooled, created, log: serverLog };
}

/** Every file PostgreSQL received equals the archive's file of that name. */
async function expectRightFiles(archive: string, received: Recovery['received']): Promise<void> {
  expect(received.length).toBeGreaterThan(0);
  const wrong: string[] = [];
  for (const { file, hash } of received) {
    const ours = createHash('sha256').update(await readFile(path.join(archive, file))).digest('hex');
    if (ours !== hash) wrong.push(file);
  }
  expect(wrong).toEqual([]);
}

/** PostgreSQL's own names only: segments, history files, its RECOVERY* and xlogtemp files, archive_status. */
function expectOnlyServerFiles(created: string[]): void {
  const ok = /^(pg_wal\/([0-9A-F]{24}(\.partial)?|[0-9A-F]{8}\.history|RECOVERYXLOG|RECOVERYHISTORY|xlogtemp\.\d+|archive_status)|data\/.*)$/;
  expect(created.filter((n) => !ok.test(n) || /walstream|prefetch/i.test(n))).toEqual([]);
}

async function expectHelpersGone(archive: string, pids: Set<number>): Promise<void> {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  await waitFor(async () => [...pids].every((pid) => !alive(pid)) && !existsSync(defaultSpoolDir(archive)), {
    timeoutMs: 15_000,
    what: `prefetch helpers ${[...pids].join(', ')} to exit by themselves and remove their spool`,
  });
}

describe('restore with prefetch (bin/walstream-restore)', () => {
  it('follows the timeline switch: every file right, the same data as without prefetch, the helper exits', async () => {
    const withPrefetch = await recover(0, fx.archive, []);
    expect(withPrefetch.helperPids.size).toBeGreaterThan(0);
    expect(withPrefetch.maxSpooled).toBeGreaterThan(0);
    expect(withPrefetch.state).toEqual(fx.expected);
    expect(withPrefetch.received.map((r) => r.file)).toContain('00000002.history');
    expect(withPrefetch.received.some((r) => r.file.startsWith('00000002') && r.file.length === 24)).toBe(true);
    await expectRightFiles(fx.archive, withPrefetch.received);
    expectOnlyServerFiles(withPrefetch.created);
    await expectHelpersGone(fx.archive, withPrefetch.helperPids);

    const without = await recover(1, fx.archive, ['--prefetch', '0']);
    expect(without.helperPids.size).toBe(0);
    expect(without.state).toEqual(withPrefetch.state);
    // The same segments asked for, in the same order (backup 1 starts a checkpoint or two after backup 0).
    const segments = (r: Recovery) => r.received.map((x) => x.file).filter((f) => f.length === 24);
    const [a, b] = [segments(withPrefetch), segments(without)];
    expect(a.slice(a.indexOf(b[0]!))).toEqual(b);
  });

  it('stops early at recovery_target_lsn: the data at the target, the helper exits by itself', async () => {
    const early = await recover(2, fx.archive, [], { recovery_target_lsn: fx.batch5, recovery_target_action: 'promote' });
    expect(early.state.n).toBe(String(5 * ROWS));
    expect(early.maxSpooled).toBeGreaterThan(0); // it had fetched past the target
    await expectRightFiles(fx.archive, early.received);
    expectOnlyServerFiles(early.created);
    await expectHelpersGone(fx.archive, early.helperPids);
  });

  it('a segment missing from the archive: recovery ends at the gap as without prefetch, the helper exits', async () => {
    const gapped = await tempDir('walstream-gapped-');
    for (const name of await readdir(fx.archive)) if (name !== fx.batch7Segment) await copyFile(path.join(fx.archive, name), path.join(gapped, name));
    await chownForServer(gapped, { recursive: true });
    const withPrefetch = await recover(3, gapped, []);
    const without = await recover(4, gapped, ['--prefetch', '0']);
    expect(Number(withPrefetch.state.n)).toBeLessThan(7 * ROWS);
    expect(Number(withPrefetch.state.n)).toBeGreaterThanOrEqual(6 * ROWS);
    expect(withPrefetch.state).toEqual(without.state);
    await expectRightFiles(gapped, withPrefetch.received);
    expectOnlyServerFiles(withPrefetch.created);
    await expectHelpersGone(gapped, withPrefetch.helperPids);
  });
});
