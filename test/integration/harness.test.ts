/**
 * Smoke test of the integration harness itself: real clusters, real tools, nothing mocked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import {
  destroyAll,
  lsnToBigInt,
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
    const before = lsnToBigInt(await primary.currentLsn());
    await primary.generateWal(3 * 1024 * 1024);
    const after = lsnToBigInt(await primary.currentLsn());
    expect(after - before).toBeGreaterThanOrEqual(2n * 1024n * 1024n);
  });

  it('creates slots', async () => {
    const lsn = await primary.createSlot('smoke_slot');
    expect(lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(await primary.slotRestartLsn('smoke_slot')).toBe(lsn);
    expect(await primary.slotRestartLsn('no_such_slot')).toBeNull();
  });

  it('starts a standby that catches up with the primary', async () => {
    const standby = await startStandby(primary);
    expect(await standby.isInRecovery()).toBe(true);
    await primary.generateWal(256 * 1024);
    const target = lsnToBigInt(await primary.currentLsn());
    await waitFor(
      async () => {
        const replayed = await standby.replayLsn();
        return replayed !== null && lsnToBigInt(replayed) >= target;
      },
      { what: 'standby to replay up to the primary LSN' },
    );
    expect(lsnToBigInt(await standby.currentLsn())).toBeGreaterThanOrEqual(target);
  });

  it('runs client tools', async () => {
    const result = await runTool('pg_receivewal', ['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/pg_receivewal \(PostgreSQL\) \d+/);
  });
});
