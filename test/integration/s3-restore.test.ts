/**
 * Recovery from a bucket (issue 17, acceptance 2 and 4): walstream archives a primary into
 * s3://bucket/prefix with --keep-local 1 (the spool keeps one complete segment; `restore --source` reads
 * only the bucket, so every segment comes
 * from the bucket), follows a failover onto timeline 2, and a `-X none` base backup recovers through
 * `restore_command = 'walstream restore %f %p --source s3://…'` with recovery_target_timeline 'latest'
 * to every row written on both timelines. Then a commit that only the bucket's NAME.partial holds
 * (uploaded by --upload-partial-every, walstream killed before the segment completes) is recovered with
 * --include-partial, and is absent without it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { S3Client, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import {
  baseBackup, chownForServer, clusterFromDataDir, destroyAll, lsnToBigInt, startCluster, startStandby, tempDir, waitFor, type Cluster,
} from '../harness/cluster.js';
import { WALSTREAM_CLI, spawnWalstream } from '../harness/walstream.js';
import { walFileName } from '../../src/lsn.js';
import { s3ClientOptions, startS3rver, type S3Server } from '../../scripts/s3-servers.mjs';

const MB = 1 << 20;
const SLOT = 'arch';
const ROWS = 3000;
let s3: S3Server | undefined;
let client: S3Client | undefined;

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  await destroyAll();
});

async function bucketNames(prefix: string): Promise<string[]> {
  const out = await client!.send(new ListObjectsV2Command({ Bucket: s3!.bucket, Prefix: `${prefix}/` }));
  return (out.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1));
}

function credentials(): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: s3!.accessKeyId, AWS_SECRET_ACCESS_KEY: s3!.secretAccessKey, AWS_REGION: s3!.region };
}

/** restore_command reading the bucket; the credentials come inline (the server's environment has none). */
function restoreCommand(prefix: string, extra = ''): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const env = Object.entries(credentials()).map(([k, v]) => `${k}=${q(v)}`).join(' ');
  return `${env} ${q(process.execPath)} ${q(WALSTREAM_CLI)} restore %f %p --source ${q(`s3://${s3!.bucket}/${prefix}`)} --s3-endpoint ${q(s3!.endpoint)} --s3-path-style${extra}`;
}

async function recover(backupDir: string, command: string): Promise<Cluster> {
  const restored = await clusterFromDataDir(backupDir);
  await restored.appendConf({ restore_command: command, recovery_target_timeline: 'latest' });
  const signal = path.join(restored.dataDir, 'recovery.signal');
  await writeFile(signal, '');
  await chownForServer(signal);
  await restored.start();
  await waitFor(async () => !(await restored.isInRecovery()), { timeoutMs: 60_000, what: 'recovery to finish' });
  return restored;
}

describe('restore --source s3://', () => {
  it('recovers a -X none backup across a failover from the bucket alone, and the bucket\'s .partial with --include-partial', async () => {
    s3 = await startS3rver();
    client = new S3Client(s3ClientOptions(s3));
    const primary = await startCluster({ segmentSizeMB: 1 });
    const standby = await startStandby(primary);
    await primary.createSlot(SLOT);
    await standby.createSlot(SLOT);
    const spool = await tempDir('walstream-s3-restore-spool-');
    const ws = spawnWalstream([
      'receive', '-D', spool, '-S', SLOT, '-h', '127.0.0.1,127.0.0.1', '-p', `${primary.port},${standby.port}`, '-U', 'postgres',
      '--synchronous', '--target', `s3://${s3.bucket}/arch`, '--s3-endpoint', s3.endpoint, '--s3-path-style',
      '--keep-local', '1', '--upload-partial-every', '1', '-v',
    ], { env: credentials() });
    await waitFor(async () => /starting log streaming/.test(ws.output.stderr), { what: 'walstream to stream' });

    // Two backups: recovering one uses it up (its data directory becomes the restored cluster's).
    const backupDir = await baseBackup(primary, { walMethod: 'none' });
    const secondBackupDir = await baseBackup(primary, { walMethod: 'none' });
    await primary.query('create table t (id int primary key, v text not null)');
    await primary.query(`insert into t select g, 'row ' || g from generate_series(1, ${ROWS}) g`);
    await primary.switchWal();

    // Failover onto timeline 2; rows there too, and a segment of timeline 2 in the bucket.
    await primary.stop('fast');
    await standby.promote();
    await standby.query(`insert into t select g, 'after failover ' || g from generate_series(${ROWS + 1}, ${ROWS + 100}) g`);
    await standby.generateWal(Math.round(1.2 * MB));
    const switched = lsnToBigInt(await standby.switchWal());
    const lastComplete = walFileName(2, switched - 1n, MB);
    await waitFor(async () => {
      const names = await bucketNames('arch');
      return names.includes('00000002.history') && names.includes(lastComplete);
    }, { timeoutMs: 60_000, what: `00000002.history and ${lastComplete} in the bucket` });
    // The history file in the bucket is the server's own.
    const history = await client!.send(new GetObjectCommand({ Bucket: s3!.bucket, Key: 'arch/00000002.history' }));
    const serverHistory = await readFile(path.join(standby.dataDir, 'pg_wal', '00000002.history'));
    expect(Buffer.from(await history.Body!.transformToByteArray()).equals(serverHistory)).toBe(true);
    // The spool is trimmed to the newest complete segment (the recovery below reads only the bucket anyway).
    await waitFor(async () => (await readdir(spool)).filter((n) => /^[0-9A-F]{24}$/.test(n)).length === 1, { what: 'the spool trimmed (--keep-local 1)' });

    // A commit in a segment that never completes: only the bucket's NAME.partial holds it.
    await standby.query(`insert into t values (-1, 'marker in the partial')`);
    const committed = lsnToBigInt(await standby.currentLsn());
    const partialName = `${walFileName(2, committed, MB)}.partial`;
    await waitFor(async () => {
      const rows = await client!.send(new ListObjectsV2Command({ Bucket: s3!.bucket, Prefix: `arch/${partialName}` }));
      const size = rows.Contents?.[0]?.Size ?? 0;
      return BigInt(size) >= committed % BigInt(MB);
    }, { timeoutMs: 10_000, what: `${partialName} in the bucket holding the marker` });
    ws.kill('SIGKILL');
    await ws.exited;
    await standby.stop('immediate');

    // 1. Without --include-partial: both timelines' complete segments, not the marker.
    const restored = await recover(backupDir, restoreCommand('arch'));
    const [count] = await restored.query<{ n: string; marker: string }>(`select count(*) filter (where id > 0) as n, count(*) filter (where id = -1) as marker from t`);
    expect(Number(count!.n)).toBe(ROWS + 100);
    expect(Number(count!.marker)).toBe(0);
    const log = await readFile(restored.logFile, 'utf8');
    expect(log).toContain('restored log file "00000002.history" from archive');
    expect(log).toContain(`restored log file "${lastComplete}" from archive`);
    expect(log).not.toMatch(/walstream restore:/);
    await restored.destroy();

    // 2. With --include-partial: the marker too.
    const withPartial = await recover(secondBackupDir, restoreCommand('arch', ' --include-partial'));
    const [marker] = await withPartial.query<{ v: string }>(`select v from t where id = -1`);
    expect(marker?.v).toBe('marker in the partial');
    const [all] = await withPartial.query<{ n: string }>(`select count(*) as n from t where id > 0`);
    expect(Number(all!.n)).toBe(ROWS + 100);
    await withPartial.destroy();
  });
});
