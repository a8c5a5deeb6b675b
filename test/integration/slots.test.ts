/**
 * --create-slot / --drop-slot / --if-not-exists, as pg_receivewal: create or drop the slot named by -S,
 * then exit; a duplicate is an error unless --if-not-exists.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { destroyAll, startCluster, tempDir } from '../harness/cluster.js';
import { freePort } from '../harness/tools.js';
import { runWalstream } from '../harness/walstream.js';

afterAll(destroyAll);

describe('slot management flags', () => {
  it('creates (reserving WAL), refuses a duplicate unless --if-not-exists, and drops', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    const conn = ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres'];
    const slots = () => cluster.query<{ slot_name: string; slot_type: string; reserved: boolean }>(
      `select slot_name, slot_type, restart_lsn is not null as reserved from pg_replication_slots order by 1`);

    const created = await runWalstream(['receive', ...conn, '-S', 'arch', '--create-slot']);
    expect(created.code, created.stderr).toBe(0);
    expect(await slots()).toEqual([{ slot_name: 'arch', slot_type: 'physical', reserved: true }]);

    const duplicate = await runWalstream(['receive', ...conn, '-S', 'arch', '--create-slot']);
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr.trim().split('\n')).toHaveLength(1);
    expect(duplicate.stderr).toMatch(/already exists/);

    const again = await runWalstream(['receive', ...conn, '-S', 'arch', '--create-slot', '--if-not-exists']);
    expect(again.code, again.stderr).toBe(0);

    const noName = await runWalstream(['receive', ...conn, '--create-slot']);
    expect(noName.code).toBe(1);
    expect(noName.stderr).toMatch(/--create-slot needs a slot to be specified using --slot/);

    // The slot then holds what the archive needs: streaming from it starts at its restart_lsn's segment.
    const archive = await tempDir('slots-');
    await cluster.generateWal(300_000);
    const end = await cluster.currentLsn();
    await cluster.generateWal(50_000);
    const streamed = await runWalstream(['receive', ...conn, '-S', 'arch', '-D', archive, '-E', end, '-n', '--no-sync']);
    expect(streamed.code, streamed.stderr).toBe(0);

    const dropped = await runWalstream(['receive', ...conn, '-S', 'arch', '--drop-slot']);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(await slots()).toEqual([]);

    // A multi-host connection string: as libpq, the first host that answers (nothing listens on the first port).
    const deadPort = await freePort();
    const multi = ['-d', `host=${cluster.host},${cluster.host} port=${deadPort},${cluster.port} user=postgres`];
    const viaSecond = await runWalstream(['receive', ...multi, '-S', 'multi', '--create-slot']);
    expect(viaSecond.code, viaSecond.stderr).toBe(0);
    expect(await slots()).toEqual([{ slot_name: 'multi', slot_type: 'physical', reserved: true }]);
    const droppedViaSecond = await runWalstream(['receive', ...multi, '-S', 'multi', '--drop-slot']);
    expect(droppedViaSecond.code, droppedViaSecond.stderr).toBe(0);
    expect(await slots()).toEqual([]);
  });
});
