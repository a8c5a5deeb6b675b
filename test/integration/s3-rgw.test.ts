/**
 * The bucket archive on Ceph's RADOS Gateway, the S3 front end of a real distributed object store
 * (a one-node cluster started by scripts/s3-servers.mjs; issue 17, acceptance 1): every segment that
 * `receive --target` uploads (plain and -Z zstd, decoded with the standard tool) is byte-identical to
 * pg_receivewal's archive of the same range, and a file larger than a part goes up as a multipart
 * upload (RGW 16 answers its completion with an empty ETag; the upload is confirmed by a HEAD) and reads
 * back identical; with --flush-after-upload and partial uploads the flush reported to the server only
 * moves forward and never past what the bucket holds. Skipped, with the reason printed, where Ceph is not installed.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { bucketContents, bucketHeldThrough, bucketSizes } from '../harness/bucket.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyAll, lsnToBigInt, runTool, startCluster, tempDir, waitFor, type Cluster } from '../harness/cluster.js';
import { runWalstream, spawnWalstream, whileRunning } from '../harness/walstream.js';
import { formatLsn, walFileName } from '../../src/lsn.js';
import { S3Store } from '../../src/archive/s3-store.js';
import { rgwAvailable, s3ClientOptions, startRgw, type RgwServer } from '../../scripts/s3-servers.mjs';

const MB = 1 << 20;
const unavailable = rgwAvailable();
if (unavailable) console.log(`skipping the Ceph RGW tests: ${unavailable}`);

describe.skipIf(unavailable !== null)('receive --target on Ceph RGW', () => {
  let rgw: RgwServer;
  let client: S3Client;
  let cluster: Cluster;
  let reference: string;
  let endpos: bigint;

  beforeAll(async () => {
    rgw = await startRgw({ store: 'memstore' });
    client = new S3Client(s3ClientOptions(rgw));
    cluster = await startCluster({ segmentSizeMB: 1 });
    for (const slot of ['reference', 'plain', 'zstd']) await cluster.createSlot(slot);
    await cluster.query('create table t (id serial primary key, a text, b int)');
    await cluster.createSlot('mono');
    for (let i = 0; i < 4; i++) await cluster.query(`insert into t (a, b) select md5(g::text || random()::text), g from generate_series(1, 5000) g`);
    endpos = lsnToBigInt(await cluster.currentLsn());
    await cluster.generateWal(200 * 1024);
    reference = await tempDir('walstream-rgw-ref-');
    const ref = await runTool('pg_receivewal', ['-D', reference, '-S', 'reference', ...common()], { timeoutMs: 120_000 });
    expect(ref.code, ref.stderr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    client?.destroy();
    await rgw?.stop();
    await destroyAll();
  });

  function common(): string[] {
    return ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-E', formatLsn(endpos), '-n'];
  }

  const objects = (prefix: string) => bucketContents(client, rgw.bucket, prefix);

  function env(): Record<string, string> {
    return { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey, AWS_REGION: rgw.region };
  }

  async function receive(prefix: string, extra: string[]): Promise<Map<string, Buffer>> {
    const spool = await tempDir(`walstream-rgw-${prefix}-`);
    const r = await runWalstream(['receive', '-D', spool, '-S', prefix, ...extra, ...common(),
      '--target', `s3://${rgw.bucket}/${prefix}`, '--s3-endpoint', rgw.endpoint, '--s3-path-style'], {
      timeoutMs: 120_000, env: { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey, AWS_REGION: rgw.region },
    });
    expect(r.code, r.stderr).toBe(0);
    return objects(prefix);
  }

  it('uploads segments byte-identical to pg_receivewal\'s archive (plain and -Z zstd)', async () => {
    const complete = (await readdir(reference)).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    expect(complete.length).toBeGreaterThanOrEqual(2);
    const plain = await receive('plain', []);
    const zstd = await receive('zstd', ['-Z', 'zstd']);
    for (const name of complete) {
      const theirs = await readFile(path.join(reference, name));
      expect(plain.get(name)?.equals(theirs), name).toBe(true);
      const decoded = execFileSync('zstd', ['-dc'], { input: zstd.get(`${name}.zst`), maxBuffer: 64 * MB });
      expect(decoded.equals(theirs), `${name}.zst`).toBe(true);
    }
  });

  it('uploads a file larger than a part as a multipart upload that reads back identical', async () => {
    const dir = await tempDir('walstream-rgw-multipart-');
    const file = path.join(dir, 'big');
    const data = randomBytes(12 * MB + 12345);
    await writeFile(file, data);
    const store = new S3Store(`s3://${rgw.bucket}/multipart`, { ...s3ClientOptions(rgw), partSize: 5 * MB });
    try {
      expect(await store.putFile('big', file)).toBe(data.length);
      expect((await store.read('big'))?.equals(data)).toBe(true);
      expect(await store.size('big')).toBe(data.length);
    } finally {
      await store.close();
    }
  });

  // On RGW, whose PUT replaces an object atomically (s3rver writes over the stored file in place, so a
  // listing during an upload of NAME.partial shows the bytes written so far).
  it('with --flush-after-upload and partial uploads, the reported flush only moves forward and never past what the bucket holds', async () => {
    const spool = await tempDir('walstream-s3-faults-mono-');
    const ws = spawnWalstream(['receive', '-D', spool, '-S', 'mono', '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres',
      '--synchronous', '-s', '1', '--flush-after-upload', '--upload-partial-every', '1', '-v',
      '--target', `s3://${rgw.bucket}/mono`, '--s3-endpoint', rgw.endpoint, '--s3-path-style'], { env: env() });
    await whileRunning(ws, async () => {
      await waitFor(async () => /starting log streaming at ([0-9A-F/]+)/.test(ws.output.stderr), { what: 'streaming' });
      const firstSegno = lsnToBigInt(/starting log streaming at ([0-9A-F/]+)/.exec(ws.output.stderr)![1]!) / BigInt(MB);
      let previous = 0n;
      let withinSegment = 0;
      const deadline = Date.now() + 8000;
      for (let i = 0; Date.now() < deadline; i++) {
        await cluster.query(`insert into t (a) select md5(g::text) from generate_series(1, 400) g`);
        if (i % 10 === 5) await cluster.generateWal(300 * 1024);
        // The flush first, then the bucket: the bucket only grows, so it must hold at least that much.
        const rows = await cluster.query<{ flush_lsn: string | null }>(`select flush_lsn::text from pg_stat_replication where application_name = 'walstream'`);
        if (!rows[0]?.flush_lsn) continue;
        const flush = lsnToBigInt(rows[0].flush_lsn);
        const objects = await bucketSizes(client, rgw.bucket, 'mono');
        const complete = bucketHeldThrough(objects.keys(), firstSegno, MB);
        const partial = objects.get(`${walFileName(1, complete, MB)}.partial`) ?? 0;
        expect(flush, `reported ${flush}, bucket holds ${complete} + ${partial}`).toBeLessThanOrEqual(complete + BigInt(partial));
        expect(flush).toBeGreaterThanOrEqual(previous);
        if (flush % BigInt(MB) !== 0n) withinSegment++;
        previous = flush;
        await new Promise((r) => setTimeout(r, 150));
      }
      // Partial uploads move the report within a segment, not only at segment ends.
      expect(withinSegment).toBeGreaterThan(0);
      expect(previous).toBeGreaterThan(firstSegno * BigInt(MB));
    });
  });
});
