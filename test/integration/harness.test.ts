/**
 * Smoke test of the integration harness itself: real clusters, real tools, nothing mocked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import {
  destroyAll,
  runTool,
  startCluster,
  startStandby,
  waitFor,
  type Cluster,
} from '../harness/cluster.js';

describe('integration harness', () => {
  let primary: Cluster;

  beforeAll(async () => {
    primary = await startCluster({ segmentSizeMB: 1, scram: true });
  });
  afterAll(destroyAll);

  it('starts a primary with 1 MB WAL segments', async () => {
    const [row] = await primary.query('show wal_segment_size');
    expect(row.wal_segment_size).toBe('1MB');
    expect(await primary.isInRecovery()).toBe(false);
  });

  it('creates the SCRAM roles', async () => {
    const roles = await primary.query(
      `select rolname, rolreplication from pg_roles where rolname in ('wsuser', 'norepl') order by rolname`,
    );
    expect(roles).toEqual([
      { rolname: 'norepl', rolreplication: false },
      { rolname: 'wsuser', rolreplication: true },
    ]);
    const client = new pg.Client({ host: primary.host, port: primary.port, user: 'wsuser', password: 'wspass', database: 'postgres' });
    await client.connect();
    await client.end();
    const bad = new pg.Client({ host: primary.host, port: primary.port, user: 'wsuser', password: 'wrong', database: 'postgres' });
    await expect(bad.connect()).rejects.toThrow(/password authentication failed/);
  });

  it('generates WAL', async () => {
    // Checked against the server's own WAL counter (pg_stat_wal, PG 14+), not the LSN generateWal
    // loops on. A backend's counts reach pg_stat_wal when it goes idle or exits: poll for them.
    const walBytes = async () => BigInt((await primary.query<{ b: string }>('select wal_bytes::text as b from pg_stat_wal'))[0]!.b);
    const before = await walBytes();
    await primary.generateWal(3 * 1024 * 1024);
    await waitFor(async () => (await walBytes()) - before >= 3n * 1024n * 1024n, { what: 'pg_stat_wal to count 3 MiB more WAL' });
    const [{ n }] = await primary.query<{ n: string }>('select count(*)::text as n from walgen');
    expect(Number(n)).toBeGreaterThan(2500); // ~1 kB rows: 3 MiB of WAL takes well over 2500 of them
  });

  it('creates slots', async () => {
    const lsn = await primary.createSlot('smoke_slot');
    expect(lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(await primary.slotRestartLsn('smoke_slot')).toBe(lsn);
    expect(await primary.slotRestartLsn('no_such_slot')).toBeNull();
  });

  it('starts a standby that streams from the primary', async () => {
    const standby = await startStandby(primary);
    expect(await standby.isInRecovery()).toBe(true);
    await primary.query('create table harness_marker (note text)');
    await primary.query(`insert into harness_marker values ('from the primary')`);
    // Rows written on the primary become readable on the standby only through replication.
    await waitFor(
      async () => {
        const rows = await standby.query<{ note: string }>(
          `select note from harness_marker`).catch(() => []);
        return rows.length === 1;
      },
      { what: 'standby to replay the marker row' },
    );
    const replication = await primary.query<{ state: string }>('select state from pg_stat_replication');
    expect(replication.map((r) => r.state)).toContain('streaming');
    expect(await standby.query('select note from harness_marker')).toEqual([{ note: 'from the primary' }]);
  });

  it('runs client tools', async () => {
    const result = await runTool('pg_receivewal', ['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/pg_receivewal \(PostgreSQL\) \d+/);
  });
});
