/**
 * --synchronous: walstream as the only synchronous standby. Every commit on the primary waits for
 * walstream's flush report, so what the primary acknowledged is in the archive (RPO zero), even when
 * walstream is then killed with SIGKILL.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { destroyAll, lsnToBigInt, startCluster, tempDir, waitFor } from '../harness/cluster.js';
import { spawnWalstream } from '../harness/walstream.js';

afterAll(destroyAll);

const MB = 1 << 20;

async function readRange(file: string, from: number, to: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(to - from);
    await handle.read(buf, 0, buf.length, from);
    return buf;
  } finally {
    await handle.close();
  }
}

describe('synchronous mode', () => {
  it('serves as the synchronous standby: acknowledged commits are in the archive, even after kill -9', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1, conf: { synchronous_standby_names: 'walstream_sync' } });
    await cluster.createSlot('sync');
    const archive = await tempDir('sync-');
    const ws = spawnWalstream(['receive', '-D', archive, '-S', 'sync', '--synchronous', '-d',
      `host=${cluster.host} port=${cluster.port} user=postgres application_name=walstream_sync`]);
    await waitFor(async () => {
      const rows = await cluster.query<{ sync_state: string }>(`select sync_state from pg_stat_replication where application_name = 'walstream_sync'`);
      return rows[0]?.sync_state === 'sync';
    }, { what: 'walstream to be the synchronous standby' });

    // Each commit returns only after walstream reported it flushed (synchronous_commit = on).
    await cluster.query('create table acked (id int, pad text)');
    let lastCommit = 0n;
    for (let i = 0; i < 50; i++) {
      await cluster.query(`insert into acked select g, repeat('y', 200) from generate_series(${i * 100}, ${i * 100 + 99}) g`);
      lastCommit = lsnToBigInt((await cluster.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn'))[0].lsn);
    }
    const [state] = await cluster.query<{ flush: string; sync_state: string }>(`select flush_lsn::text as flush, sync_state from pg_stat_replication where application_name = 'walstream_sync'`);
    expect(state.sync_state).toBe('sync');

    // Kill it without warning: what was acknowledged must be on disk in the archive already.
    ws.kill('SIGKILL');
    await ws.exited;
    const flushed = lsnToBigInt(state.flush);
    expect(flushed).toBeGreaterThan(0n);
    const segment = (await cluster.query<{ f: string }>(`select pg_walfile_name('${state.flush}') as f`))[0].f;
    const offset = Number(flushed % BigInt(MB));
    const ours = path.join(archive, segment + '.partial');
    const server = path.join(cluster.dataDir, 'pg_wal', segment);
    expect((await readRange(ours, 0, offset)).equals(await readRange(server, 0, offset))).toBe(true);
    // The last commit waited for this flush report (insert LSN read after it may include a few small
    // background records, such as running_xacts).
    expect(flushed).toBeGreaterThanOrEqual(lastCommit - 4096n);
  });
});
