/**
 * Issue 18, acceptance 3: `--include-partial` recovers the commits the archiver had made durable in the
 * segment it was still writing. walstream is the synchronous standby (--synchronous), so a commit
 * returns only once it is in NAME.partial; walstream is stopped (SIGTERM) before that segment
 * completes. A `-X none` base backup recovered with --include-partial has the marker row; without the
 * flag it does not. The same with a -Z lz4 archive (NAME.lz4.partial, decoded and padded).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseBackup, chownForServer, clusterFromDataDir, destroyAll, startCluster, tempDir, waitFor, type Cluster } from '../harness/cluster.js';
import { spawnWalstream } from '../harness/walstream.js';

afterAll(destroyAll);

const FAST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/walstream-restore');
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const MARKER = 'the last acknowledged commit';

let plain: string;
let lz4: string;
let markerSegment: string;
const backups: string[] = [];

beforeAll(async () => {
  const primary = await startCluster({ segmentSizeMB: 1, conf: { synchronous_standby_names: 'ANY 2 (ws_plain, ws_lz4)' } });
  await primary.createSlot('plain');
  await primary.createSlot('lz4');
  plain = await tempDir('walstream-archive-');
  lz4 = await tempDir('walstream-archive-lz4-');
  const conn = (app: string) => `host=${primary.host} port=${primary.port} user=postgres application_name=${app}`;
  const receivers = [
    spawnWalstream(['receive', '-D', plain, '-S', 'plain', '--synchronous', '-d', conn('ws_plain')], { asPostgres: true }),
    spawnWalstream(['receive', '-D', lz4, '-S', 'lz4', '--synchronous', '-Z', 'lz4', '-d', conn('ws_lz4')], { asPostgres: true }),
  ];
  await waitFor(async () => (await primary.query(`select 1 from pg_stat_replication where sync_state in ('sync', 'quorum')`)).length === 2, {
    what: 'both walstreams to be synchronous standbys',
  });
  for (let i = 0; i < 3; i++) backups.push(await baseBackup(primary, { walMethod: 'none' }));

  await primary.query('create table marker (v text)');
  await primary.switchWal(); // the marker goes into a fresh segment, which stays .partial
  await primary.query(`insert into marker values ('${MARKER}')`); // returns once both archives hold it
  markerSegment = (await primary.query<{ f: string }>('select pg_walfile_name(pg_current_wal_lsn()) as f'))[0]!.f;
  for (const ws of receivers) ws.kill('SIGTERM');
  for (const ws of receivers) expect((await ws.exited).code, ws.output.stderr).toBe(0);
  await primary.stop('immediate');
  expect(existsSync(path.join(plain, `${markerSegment}.partial`))).toBe(true);
  expect(existsSync(path.join(lz4, `${markerSegment}.lz4.partial`))).toBe(true);
  expect(existsSync(path.join(plain, markerSegment))).toBe(false);
}, 300_000);

/** Recover backup `index` from `archive` to its end; the marker rows it has. */
async function recoverMarker(index: number, archive: string, options: string[]): Promise<string[]> {
  const cluster: Cluster = await clusterFromDataDir(backups[index]!);
  const restore = `WALSTREAM_NODE=${q(process.execPath)} ${q(FAST)} %f %p -D ${q(archive)} --prefetch-idle 2 ${options.join(' ')}`;
  await cluster.appendConf({ restore_command: restore });
  await writeFile(path.join(cluster.dataDir, 'recovery.signal'), '');
  await chownForServer(path.join(cluster.dataDir, 'recovery.signal'));
  await cluster.start();
  await waitFor(async () => !(await cluster.isInRecovery()), { timeoutMs: 90_000, what: 'recovery to end' });
  const exists = (await cluster.query(`select 1 from pg_class where relname = 'marker'`)).length > 0;
  const rows = exists ? (await cluster.query<{ v: string }>('select v from marker')).map((r) => r.v) : [];
  await cluster.stop('fast');
  return rows;
}

describe('--include-partial', () => {
  it('without the flag the marker committed into the .partial segment is absent', async () => {
    expect(await recoverMarker(0, plain, [])).toEqual([]);
  });

  it('with the flag recovery replays the .partial and finds the marker', async () => {
    expect(await recoverMarker(1, plain, ['--include-partial'])).toEqual([MARKER]);
  });

  it('with the flag, from a -Z lz4 archive (NAME.lz4.partial decoded and padded)', async () => {
    expect(await recoverMarker(2, lz4, ['--include-partial'])).toEqual([MARKER]);
  });
});
