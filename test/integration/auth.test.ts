/**
 * walstream's own start-up (no `pg` since #19) against a real server, for each way PostgreSQL asks a
 * client to authenticate: md5 (a role with an MD5 verifier), cleartext ("password" in pg_hba.conf),
 * SCRAM-SHA-256 over TLS (where the server also offers SCRAM-SHA-256-PLUS, which walstream does not
 * choose), trust over a Unix socket; hostssl refusing a plain connection (sslmode=disable, and allow
 * moving on to TLS); and the slot probe's SQL connection over the same start-up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Cluster, destroyAll, hasOpenssl, selfSignedCertificate, startCluster, tempDir } from '../harness/cluster.js';
import { listArchive, runWalstream } from '../harness/walstream.js';
import { advanceSlot, probeSlot } from '../../src/slot-probe.js';
import { targetsFor } from '../../src/conninfo.js';
import { PgError } from '../../src/errors.js';

afterAll(destroyAll);

const ENV = { PGPASSFILE: '/nonexistent/walstream-test-pgpass', PGPASSWORD: '' };

describe.skipIf(!hasOpenssl)('authentication methods and TLS, with walstream\'s own start-up', () => {
  let cluster: Cluster;
  const conn = (extra: string) => `host=${cluster.host} port=${cluster.port} ${extra}`;

  beforeAll(async () => {
    const { conf } = await selfSignedCertificate();
    cluster = await startCluster({ segmentSizeMB: 1, conf });
    await cluster.query(`set password_encryption = 'md5'; create role mduser login replication password 'mdpass'`);
    await cluster.query(`set password_encryption = 'scram-sha-256'; create role cluser login replication password 'clpass'; create role scuser login replication password 'scpass'`);
    await writeFile(path.join(cluster.dataDir, 'pg_hba.conf'), [
      'hostssl all,replication scuser 127.0.0.1/32 scram-sha-256',
      'host all,replication mduser 127.0.0.1/32 md5',
      'host all,replication cluser 127.0.0.1/32 password',
      'local all all trust',
      'local replication all trust',
      'host all postgres 127.0.0.1/32 trust',
      'host replication postgres 127.0.0.1/32 trust',
    ].join('\n') + '\n');
    await cluster.reload();
  });

  /** `receive` up to a position just behind the server's (-E), -n: exit 0 and WAL in the archive. */
  async function receiveOnce(connection: string): Promise<void> {
    await cluster.generateWal(100_000);
    const end = await cluster.currentLsn();
    await cluster.generateWal(20_000);
    const archive = await tempDir('auth-');
    const result = await runWalstream(['receive', '-D', archive, '-d', connection, '-E', end, '-n', '--no-sync'], { env: ENV });
    expect(result.code, `${connection.replace(/password=\S+/, 'password=…')}: ${result.stderr}`).toBe(0);
    expect(result.stdout + result.stderr).not.toMatch(/mdpass|clpass|scpass/);
    const { complete, partial } = await listArchive(archive);
    expect(complete.length + partial.length).toBeGreaterThanOrEqual(1);
  }

  /** `receive` that must fail: exit 1, one stderr line, no password. Returns the line. */
  async function receiveFails(connection: string): Promise<string> {
    const result = await runWalstream(['receive', '-D', await tempDir('auth-bad-'), '-d', connection, '-n'], { env: ENV });
    expect(result.code, result.stderr).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines, result.stderr).toHaveLength(1);
    expect(result.stderr).not.toMatch(/mdpass|clpass|scpass|wrongpw/);
    return lines[0]!;
  }

  it('md5: the right password streams, a wrong one is 28P01 in one line', async () => {
    const [{ verifier }] = await cluster.query<{ verifier: string }>(`select left(rolpassword, 3) as verifier from pg_authid where rolname = 'mduser'`);
    expect(verifier).toBe('md5');
    await receiveOnce(conn('user=mduser password=mdpass sslmode=disable'));
    expect(await receiveFails(conn('user=mduser password=wrongpw sslmode=disable'))).toMatch(/password authentication failed for user "mduser".*check the password/);
  });

  it('cleartext ("password" in pg_hba.conf)', async () => {
    await receiveOnce(conn('user=cluser password=clpass sslmode=disable'));
    expect(await receiveFails(conn('user=cluser password=wrongpw sslmode=disable'))).toMatch(/password authentication failed for user "cluser"/);
  });

  it('SCRAM-SHA-256 over TLS (the server offers -PLUS too); hostssl refuses plain, allow moves on to TLS', async () => {
    await receiveOnce(conn('user=scuser password=scpass sslmode=require'));
    await receiveOnce(conn('user=scuser password=scpass')); // prefer
    await receiveOnce(conn('user=scuser password=scpass sslmode=allow')); // plain refused (28000), then TLS
    expect(await receiveFails(conn('user=scuser password=scpass sslmode=disable'))).toMatch(/no pg_hba\.conf entry/);
    expect(await receiveFails(conn('user=scuser password=wrongpw sslmode=require'))).toMatch(/password authentication failed for user "scuser"/);
  });

  it('trust over the Unix socket', async () => {
    await receiveOnce(`host=${cluster.baseDir} port=${cluster.port} user=postgres`);
  });

  it('the slot probe\'s SQL connection: SCRAM over TLS and md5', async () => {
    await cluster.createSlot('authprobe');
    const [scram] = targetsFor(conn('user=scuser password=scpass sslmode=require dbname=postgres'));
    const report = await probeSlot(scram!, 'authprobe', 10_000);
    expect(report).toMatchObject({ slot: 'authprobe', exists: true, slotType: 'physical', active: false, walStatus: 'reserved' });
    expect(report.retainedBytes).not.toBeNull();
    const missing = await probeSlot(scram!, "no'such\\slot", 10_000);
    expect(missing).toMatchObject({ exists: false, slotType: null, restartLsn: null, retainedBytes: null });

    const [md5] = targetsFor(conn('user=mduser password=mdpass sslmode=disable dbname=postgres'));
    const moved = await advanceSlot(md5!, 'authprobe', report.serverLsn, 10_000);
    expect(moved).toBeGreaterThanOrEqual(report.restartLsn!);
    const [wrong] = targetsFor(conn('user=mduser password=wrongpw sslmode=disable dbname=postgres'));
    await expect(probeSlot(wrong!, 'authprobe', 10_000)).rejects.toBeInstanceOf(PgError);
  });
});
