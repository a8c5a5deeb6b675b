/**
 * Object storage under faults (issue 17, acceptance 3), through a proxy in front of a real S3 server
 * (s3rver): injected 500s and slow answers are retried until the bucket holds every segment; with the
 * store down (connections refused and cut, uploads in flight too) and --flush-after-upload, the slot's
 * restart_lsn stays within what the bucket holds and the spool keeps every segment the bucket lacks
 * (even with --keep-local 1); once the store is back, the uploads finish and the slot moves on.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { S3Client, GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { destroyAll, freePort, lsnToBigInt, startCluster, tempDir, waitFor, type Cluster } from '../harness/cluster.js';
import { startS3FaultProxy, type S3FaultProxy } from '../harness/s3-fault-proxy.js';
import { bucketHeldThrough as heldThrough, bucketSizes } from '../harness/bucket.js';
import { spawnWalstream, whileRunning } from '../harness/walstream.js';
import { walFileName } from '../../src/lsn.js';
import { s3ClientOptions, startS3rver, type S3Server } from '../../scripts/s3-servers.mjs';

const MB = 1 << 20;
let cluster: Cluster;
let s3: S3Server;
let client: S3Client;
let proxy: S3FaultProxy | null = null;

beforeAll(async () => {
  s3 = await startS3rver();
  client = new S3Client(s3ClientOptions(s3));
  cluster = await startCluster({ segmentSizeMB: 1 });
  await cluster.query('create table t (id serial primary key, a text)');
});

afterEach(async () => {
  await proxy?.close();
  proxy = null;
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  await destroyAll();
});

function env(): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: s3.region };
}

const bucketObjects = (prefix: string) => bucketSizes(client, s3.bucket, prefix);

async function bucketObject(prefix: string, name: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/${name}` }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

const bucketHeldThrough = (names: Iterable<string>, first: bigint) => heldThrough(names, first, MB);

describe('uploads under faults', () => {
  it('retries injected 500s and slow answers until every segment is in the bucket', async () => {
    proxy = await startS3FaultProxy(s3);
    await cluster.createSlot('retry');
    const spool = await tempDir('walstream-s3-faults-retry-');
    const metricsPort = await freePort();
    const ws = spawnWalstream(['receive', '-D', spool, '-S', 'retry', '--metrics-port', String(metricsPort), '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres',
      '--target', `s3://${s3.bucket}/retry`, '--s3-endpoint', proxy.endpoint, '--s3-path-style'], { env: { ...env(), AWS_MAX_ATTEMPTS: '1' } });
    // Once the start-up listing is through, the next 500s hit the uploads (one attempt per request in
    // the SDK, so each 500 reaches walstream's own retry).
    await waitFor(async () => proxy!.requests.some((r) => r.method === 'GET' && r.status === 200), { what: 'the start-up listing' });
    await proxy.fail500(5);
    await cluster.generateWal(3 * MB);
    const end = lsnToBigInt(await cluster.switchWal());
    await waitFor(async () => proxy!.injected >= 5, { what: 'the injected 500s' });
    await proxy.slow(300); // then slow answers: uploads take longer, nothing is lost
    const lastSegment = walFileName(1, end - 1n, MB);
    await waitFor(async () => (await bucketObjects('retry')).has(lastSegment), { timeoutMs: 60_000, what: `${lastSegment} in the bucket` });
    // The metrics count what happened: the failed attempts, the confirmed uploads, then nothing pending
    // (the store may hold a file before its slow answer reaches walstream).
    let metrics = '';
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
    await waitFor(async () => {
      metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return metric('walstream_upload_pending_files') === 0;
    }, { what: 'no upload pending' });
    expect(metric('walstream_upload_failures_total')).toBeGreaterThanOrEqual(5);
    expect(metric('walstream_uploaded_files_total'), metrics).toBeGreaterThanOrEqual(3);
    ws.kill('SIGTERM');
    const exit = await ws.exited;
    expect(exit.code, ws.output.stderr).toBe(0);
    expect(ws.output.stderr).toMatch(/upload of [0-9A-F]{24} failed \(attempt 1, retrying\)/);
    const complete = (await readdir(spool)).filter((n) => /^[0-9A-F]{24}$/.test(n));
    expect(complete.length).toBeGreaterThanOrEqual(3);
    const bucket = await bucketObjects('retry');
    for (const name of complete) expect((await bucketObject('retry', name)).equals(await readFile(path.join(spool, name))), name).toBe(true);
    expect(bucket.size).toBeGreaterThanOrEqual(complete.length);
    expect(proxy.injected).toBe(5);
  });

  it('with the store down and --flush-after-upload, the slot stops at what the bucket holds; the spool keeps the rest', async () => {
    proxy = await startS3FaultProxy(s3);
    await cluster.createSlot('held');
    const spool = await tempDir('walstream-s3-faults-down-');
    const ws = spawnWalstream(['receive', '-D', spool, '-S', 'held', '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres',
      '-s', '1', '--flush-after-upload', '--keep-local', '1', '-v',
      '--target', `s3://${s3.bucket}/held`, '--s3-endpoint', proxy.endpoint, '--s3-path-style'], { env: env() });
    await whileRunning(ws, async () => {
      await waitFor(async () => /starting log streaming at ([0-9A-F/]+)/.test(ws.output.stderr), { what: 'streaming' });
      const start = lsnToBigInt(/starting log streaming at ([0-9A-F/]+)/.exec(ws.output.stderr)![1]!);
      const firstSegno = start / BigInt(MB);
      // Working: a segment completes, is uploaded, and the slot follows.
      await cluster.generateWal(MB);
      await cluster.switchWal();
      await waitFor(async () => bucketHeldThrough((await bucketObjects('held')).keys(), firstSegno) > start, { what: 'a first segment in the bucket' });

      // The store goes down (uploads in flight are cut); WAL keeps coming and is archived locally.
      await proxy!.down();
      const downAt = bucketHeldThrough((await bucketObjects('held')).keys(), firstSegno);
      for (let i = 0; i < 3; i++) {
        await cluster.generateWal(MB);
        await cluster.switchWal();
      }
      const serverEnd = lsnToBigInt(await cluster.currentLsn());
      await waitFor(async () => {
        const rows = await cluster.query<{ write_lsn: string | null }>(`select write_lsn::text from pg_stat_replication where application_name = 'walstream'`);
        return rows[0]?.write_lsn ? lsnToBigInt(rows[0].write_lsn) >= serverEnd : false;
      }, { what: 'walstream to receive everything while the store is down' });
      // Status updates every second: give them a few rounds, then the slot must still be within the bucket.
      const localSegments = async () => (await readdir(spool)).filter((n) => /^[0-9A-F]{24}$/.test(n));
      await waitFor(async () => (await localSegments()).length >= 3, { what: 'the segments complete in the spool' });
      for (let round = 0; round < 3; round++) {
        await new Promise((r) => setTimeout(r, 1000)); // three status intervals; the slot must not move past the bucket
        const restart = lsnToBigInt((await cluster.slotRestartLsn('held'))!);
        expect(restart).toBeLessThanOrEqual(downAt);
      }
      // Nothing the bucket lacks left the spool, despite --keep-local 1 (an upload cut mid-way may have
      // landed without walstream hearing back: that one stays local too, until confirmed).
      const bucketNow = await bucketObjects('held');
      const local = new Set(await localSegments());
      for (let segno = firstSegno; segno < serverEnd / BigInt(MB); segno++) {
        const name = walFileName(1, segno * BigInt(MB), MB);
        if (!bucketNow.has(name)) expect(local.has(name), `${name}: in neither the bucket nor the spool`).toBe(true);
      }
      expect((await localSegments()).length).toBeGreaterThanOrEqual(3);
      expect(ws.output.stderr).toMatch(/upload of [0-9A-F]{24} failed/);

      // The store is back: uploads finish, the spool empties of them, and the slot moves past them.
      await proxy!.forward();
      await waitFor(async () => bucketHeldThrough((await bucketObjects('held')).keys(), firstSegno) >= serverEnd - (serverEnd % BigInt(MB)),
        { timeoutMs: 60_000, what: 'the bucket to catch up' });
      await waitFor(async () => lsnToBigInt((await cluster.slotRestartLsn('held'))!) > downAt, { timeoutMs: 30_000, what: 'the slot to move on' });
      await waitFor(async () => (await localSegments()).length === 1, { what: 'the spool trimmed once uploaded (--keep-local 1)' });
      expect(ws.exitCode).toBeNull();
    });
  });

  it('a restart with the store still down keeps the slot where the bucket ends, though the spool holds more', async () => {
    proxy = await startS3FaultProxy(s3);
    await cluster.createSlot('restart_held');
    const held = lsnToBigInt((await cluster.slotRestartLsn('restart_held'))!);
    const spool = await tempDir('walstream-s3-faults-restart-');
    const args = ['receive', '-D', spool, '-S', 'restart_held', '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres',
      '-s', '1', '--flush-after-upload', '-v', '--target', `s3://${s3.bucket}/restart_held`, '--s3-endpoint', proxy.endpoint, '--s3-path-style'];
    await proxy.down();
    // First run: segments complete in the spool, none reaches the bucket; then it dies.
    const first = spawnWalstream(args, { env: env() });
    await waitFor(async () => /starting log streaming/.test(first.output.stderr), { what: 'streaming' });
    for (let i = 0; i < 3; i++) {
      await cluster.generateWal(MB);
      await cluster.switchWal();
    }
    await waitFor(async () => (await readdir(spool)).filter((n) => /^[0-9A-F]{24}$/.test(n)).length >= 3, { what: 'segments in the spool' });
    first.kill('SIGKILL');
    await first.exited;
    expect(lsnToBigInt((await cluster.slotRestartLsn('restart_held'))!)).toBeLessThanOrEqual(held + BigInt(MB));
    // Second run, store still down: it resumes after the spool's segments, yet reports none of them.
    const second = spawnWalstream(args, { env: env() });
    await whileRunning(second, async () => {
      await waitFor(async () => /starting log streaming/.test(second.output.stderr), { what: 'streaming again' });
      await cluster.generateWal(200 * 1024);
      for (let round = 0; round < 3; round++) {
        await new Promise((r) => setTimeout(r, 1000)); // status updates every second
        expect(lsnToBigInt((await cluster.slotRestartLsn('restart_held'))!)).toBeLessThanOrEqual(held + BigInt(MB));
      }
      // The store is back: the spool's segments go up, and only then the slot moves.
      await proxy!.forward();
      await waitFor(async () => lsnToBigInt((await cluster.slotRestartLsn('restart_held'))!) > held + 2n * BigInt(MB), { timeoutMs: 60_000, what: 'the slot to move once uploaded' });
    });
  });
});
