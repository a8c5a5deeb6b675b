/**
 * Streaming over TLS: sslmode=require and verify-ca against a server with a self-signed certificate
 * (made here with openssl), archive identical to the server's pg_wal; sslmode=prefer falls back to
 * plain against a server without TLS is covered by every other test (the default sslmode is prefer).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { destroyAll, hasOpenssl, selfSignedCertificate, startCluster, tempDir, waitFor } from '../harness/cluster.js';
import { listArchive, runWalstream, spawnWalstream } from '../harness/walstream.js';

afterAll(destroyAll);

describe.skipIf(!hasOpenssl)('TLS', () => {
  it('streams over TLS with sslmode=require and verify-ca, byte-identical to pg_wal', async () => {
    const { crt, conf } = await selfSignedCertificate();
    const cluster = await startCluster({ segmentSizeMB: 1, conf });
    const [{ ssl }] = await cluster.query<{ ssl: string }>('show ssl');
    expect(ssl).toBe('on');

    let n = 0;
    for (const mode of [`sslmode=require`, `sslmode=verify-ca sslrootcert=${crt}`]) {
      const slot = `tls${n++}`;
      await cluster.createSlot(slot);
      await cluster.generateWal(1_500_000);
      const end = await cluster.currentLsn();
      await cluster.generateWal(50_000);
      const archive = await tempDir('tls-archive-');
      const result = await runWalstream(['receive', '-D', archive, '-S', slot, '-d', `host=${cluster.host} port=${cluster.port} user=postgres ${mode}`, '-E', end, '-n', '--no-sync', '-v']);
      expect(result.code, result.stderr).toBe(0);
      const { complete } = await listArchive(archive);
      expect(complete.length, mode).toBeGreaterThanOrEqual(1);
      for (const name of complete) {
        const server = path.join(cluster.dataDir, 'pg_wal', name);
        if (existsSync(server)) expect(readFileSync(path.join(archive, name)).equals(readFileSync(server)), name).toBe(true);
      }
    }
    // The walsender's connection really is encrypted.
    const live = spawnWalstream(['receive', '-D', await tempDir('tls-live-'), '-S', 'tls0', '--no-sync', '-d', `host=${cluster.host} port=${cluster.port} user=postgres sslmode=require application_name=tlscheck`]);
    await waitFor(async () => {
      const rows = await cluster.query<{ ssl: boolean }>(`select s.ssl from pg_stat_ssl s join pg_stat_replication r using (pid) where r.application_name = 'tlscheck'`);
      return rows[0]?.ssl === true;
    }, { what: 'an encrypted replication connection in pg_stat_ssl' });
    live.kill('SIGINT');
    expect((await live.exited).code).toBe(0);

    const wrongCa = await runWalstream(['receive', '-D', await tempDir('tls-bad-'), '-d', `host=${cluster.host} port=${cluster.port} user=postgres sslmode=verify-ca sslrootcert=/etc/ssl/certs/ca-certificates.crt`, '-n']);
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr.trim().split('\n')).toHaveLength(1);
  });
});
