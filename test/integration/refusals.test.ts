/**
 * Issue 3: the refusals operators meet after a failover or a long outage get a message that says what
 * to do. Here: the server has already removed the WAL the archive needs next (no slot, wal_keep_size 0).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { destroyAll, startCluster, tempDir, waitFor } from '../harness/cluster.js';
import { runWalstream } from '../harness/walstream.js';

afterAll(destroyAll);

const MB = 1 << 20;

describe('server refusals', () => {
  it('"requested WAL segment has already been removed": exit 1, one line saying what to do; --start-at-server-position goes on', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1, conf: { wal_keep_size: '0', max_wal_size: '32MB', min_wal_size: '32MB' } });
    const archive = await tempDir('gap-');
    await cluster.generateWal(MB / 2);
    const end1 = await cluster.currentLsn();
    const first = await runWalstream(['receive', '-D', archive, '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-E', end1, '-n', '--no-sync']);
    expect(first.code, first.stderr).toBe(0);
    const before = (await readdir(archive)).sort();

    // Without a slot the server recycles what the archive still needs.
    const firstNeeded = before.find((n) => n.endsWith('.partial'))!.slice(0, 24);
    await waitFor(async () => {
      await cluster.generateWal(8 * MB);
      await cluster.query('checkpoint');
      const [row] = await cluster.query<{ present: boolean }>(`select exists (select 1 from pg_ls_waldir() where name = '${firstNeeded}') as present`);
      return !row.present;
    }, { what: `the server to remove ${firstNeeded}`, timeoutMs: 60_000 });

    const refused = await runWalstream(['receive', '-D', archive, '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-n', '--no-sync']);
    expect(refused.code).toBe(1);
    const lines = refused.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/has already been removed/);
    expect(lines[0]).toMatch(/replication slot \(--slot\)|wal_keep_size/);
    expect(lines[0]).toMatch(/--start-at-server-position/);
    expect((await readdir(archive)).sort()).toEqual(before);

    // The operator's explicit way on: start at the server's position (leaving a gap, said so).
    await cluster.switchWal(); // so the server's position and end2 share a segment
    await cluster.generateWal(MB / 4);
    const end2 = await cluster.currentLsn();
    await cluster.generateWal(MB / 8);
    const resumed = await runWalstream(['receive', '-D', archive, '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-E', end2, '-n', '--no-sync', '--start-at-server-position']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/leaves a gap/);
    expect((await readdir(archive)).length).toBeGreaterThan(before.length);
  });
});
