/**
 * Issue 17 (object storage), the harness itself: the real S3 servers of scripts/s3-servers.mjs
 * (s3rver in this process; Ceph's RADOS Gateway on a one-node memstore cluster, skipped with the reason
 * when Ceph is not installed) take a bucket, 16 MiB objects (one PUT, a stream body, a multipart
 * upload) that read back byte-identical, list, head and delete, all through @aws-sdk/client-s3 with
 * s3ClientOptions(); and the S3 fault proxy (test/harness/s3-fault-proxy.ts) in front of each forwards
 * signed requests unchanged, injects 500s the SDK retries through, slows answers, and refuses
 * connections when down. stop() leaves no daemon and no data behind, also when start-up fails halfway.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rgwAvailable, s3ClientOptions, startRgw, startS3rver, type S3Server } from '../../scripts/s3-servers.mjs';
import { destroyAll, pidAlive } from '../harness/cleanup.js';
import { startS3FaultProxy } from '../harness/s3-fault-proxy.js';

const MiB = 1024 * 1024;
const DATA = randomBytes(16 * MiB);

const rgwMissing = rgwAvailable();
if (rgwMissing) console.warn(`s3-servers.test: RGW tests skipped: ${rgwMissing}`);

/** PIDs of processes whose command line mentions `text` (pgrep -f), this process excluded. */
function pgrep(text: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', '--', text], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((pid) => pid !== process.pid && pidAlive(pid));
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

async function bytesOf(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

/** Upload `data` to bucket/key in parts of `partSize` bytes (the last may be smaller); returns the ETag. */
async function multipartPut(client: S3Client, bucket: string, key: string, data: Buffer, partSize: number): Promise<string> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const parts: { ETag: string; PartNumber: number }[] = [];
  for (let offset = 0, n = 1; offset < data.length; offset += partSize, n++) {
    const part = await client.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: n, Body: data.subarray(offset, offset + partSize) }),
    );
    parts.push({ ETag: part.ETag!, PartNumber: n });
  }
  const done = await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  return done.ETag!;
}

/** The error an SDK call rejects with (fails the test if it resolves). */
async function failure(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the request to fail, it succeeded');
}

const servers = [
  { name: 's3rver', skip: null as string | null, start: () => startS3rver() },
  { name: 'Ceph RGW (memstore)', skip: rgwMissing, start: () => startRgw({ store: 'memstore' }) },
];

for (const { name, skip, start } of servers) {
  describe.skipIf(skip !== null)(`${name}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let server: S3Server;
    let client: S3Client;

    beforeAll(async () => {
      const t0 = Date.now();
      server = await start();
      console.log(`${name}: ready at ${server.endpoint} in ${Date.now() - t0} ms`);
      client = new S3Client(s3ClientOptions(server));
    });
    afterEach(destroyAll); // fault proxies
    afterAll(async () => {
      client?.destroy();
      await server?.stop();
    });

    it('has the bucket it created, and creates another', async () => {
      await client.send(new HeadBucketCommand({ Bucket: server.bucket }));
      await server.createBucket('second-bucket');
      const { Buckets } = await client.send(new ListBucketsCommand({}));
      expect(Buckets!.map((b) => b.Name)).toEqual(expect.arrayContaining([server.bucket, 'second-bucket']));
    });

    it('reads back a 16 MiB object byte-identical: one PUT of a buffer, a stream body, a multipart upload', async () => {
      await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: 'buffer', Body: DATA }));
      expect((await bytesOf(client, server.bucket, 'buffer')).equals(DATA)).toBe(true);

      // A stream of known length: what Ceph 16 refuses (411) with the SDK's default checksums.
      await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: 'stream', Body: Readable.from([DATA.subarray(0, 8 * MiB), DATA.subarray(8 * MiB)]), ContentLength: DATA.length }));
      expect((await bytesOf(client, server.bucket, 'stream')).equals(DATA)).toBe(true);

      const etag = await multipartPut(client, server.bucket, 'multipart', DATA, 5 * MiB);
      expect((await bytesOf(client, server.bucket, 'multipart')).equals(DATA)).toBe(true);
      // The ETags differ from AWS's (md5 of the parts' md5s, dash, part count) in ways uploaders must expect:
      // s3rver gives the md5 of the whole object; Ceph 16 answers CompleteMultipartUpload with an empty
      // <ETag></ETag>, while HEAD then gives the AWS form.
      const md5 = (b: Buffer) => createHash('md5').update(b).digest();
      const parts = [0, 1, 2, 3].map((i) => md5(DATA.subarray(i * 5 * MiB, (i + 1) * 5 * MiB)));
      const awsEtag = `"${md5(Buffer.concat(parts)).toString('hex')}-4"`;
      const { ETag: headEtag } = await client.send(new HeadObjectCommand({ Bucket: server.bucket, Key: 'multipart' }));
      if (server.kind === 'rgw') {
        expect(etag).toBe('');
        expect(headEtag).toBe(awsEtag);
      } else {
        expect(etag).toBe(`"${md5(DATA).toString('hex')}"`);
        expect(headEtag).toBe(etag);
      }
    });

    it('lists, heads and deletes', async () => {
      const keys = ['list/a', 'list/b', 'list/c/d'];
      for (const key of keys) await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: key, Body: Buffer.from(key) }));
      const listed = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: 'list/' }));
      expect(listed.Contents!.map((o) => o.Key).sort()).toEqual(keys);
      expect(listed.Contents!.find((o) => o.Key === 'list/b')!.Size).toBe(6);
      const delimited = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: 'list/', Delimiter: '/' }));
      expect(delimited.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['list/c/']);

      const head = await client.send(new HeadObjectCommand({ Bucket: server.bucket, Key: 'list/a' }));
      expect(head.ContentLength).toBe(6);
      await client.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: 'list/a' }));
      const gone = await failure(client.send(new HeadObjectCommand({ Bucket: server.bucket, Key: 'list/a' })));
      expect(gone.$metadata?.httpStatusCode).toBe(404);
      const after = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: 'list/' }));
      expect(after.Contents!.map((o) => o.Key).sort()).toEqual(['list/b', 'list/c/d']);
    });

    it('through the fault proxy: 16 MiB both ways unchanged (signatures still verify), then 2 injected 500s the SDK retries through', async () => {
      const proxy = await startS3FaultProxy(server);
      const viaProxy = new S3Client({ ...s3ClientOptions(server), endpoint: proxy.endpoint, maxAttempts: 3 });
      try {
        await viaProxy.send(new PutObjectCommand({ Bucket: server.bucket, Key: 'proxied', Body: DATA }));
        expect((await bytesOf(viaProxy, server.bucket, 'proxied')).equals(DATA)).toBe(true);
        await multipartPut(viaProxy, server.bucket, 'proxied-multipart', DATA, 8 * MiB);
        expect((await bytesOf(client, server.bucket, 'proxied-multipart')).equals(DATA)).toBe(true);
        expect(proxy.counts).toEqual({ PUT: 3, GET: 1, POST: 2 });

        proxy.resetCounters();
        await proxy.fail500(2);
        const put = await viaProxy.send(new PutObjectCommand({ Bucket: server.bucket, Key: 'retried', Body: DATA }));
        expect(put.$metadata.attempts).toBe(3);
        expect(proxy.counts).toEqual({ PUT: 3 });
        expect(proxy.injected).toBe(2);
        expect(proxy.requests.map((r) => r.status)).toEqual([500, 500, 200]);
        expect(proxy.mode).toEqual({ kind: 'forward' });
        expect((await bytesOf(client, server.bucket, 'retried')).equals(DATA)).toBe(true);

        // fail500('all'): every attempt fails, the SDK gives up with the injected InternalError.
        proxy.resetCounters();
        await proxy.fail500('all');
        const err = await failure(viaProxy.send(new HeadObjectCommand({ Bucket: server.bucket, Key: 'retried' })));
        expect(err.$metadata?.httpStatusCode).toBe(500);
        expect(proxy.counts).toEqual({ HEAD: 3 });
        const getErr = await failure(viaProxy.send(new GetObjectCommand({ Bucket: server.bucket, Key: 'retried' })));
        expect(getErr.name).toBe('InternalError');
      } finally {
        viaProxy.destroy();
      }
    });

    it('through the fault proxy: slow(ms) holds each answer, down refuses connections, forward serves again', async () => {
      const proxy = await startS3FaultProxy(server);
      const viaProxy = new S3Client({ ...s3ClientOptions(server), endpoint: proxy.endpoint, maxAttempts: 1 });
      try {
        await viaProxy.send(new PutObjectCommand({ Bucket: server.bucket, Key: 'small', Body: 'hello' }));
        await proxy.slow(300);
        const t0 = Date.now();
        await viaProxy.send(new HeadObjectCommand({ Bucket: server.bucket, Key: 'small' }));
        expect(Date.now() - t0).toBeGreaterThanOrEqual(290);

        // down: the client's pooled keep-alive connection is reset (or already seen closed), new ones are refused.
        await proxy.down();
        const first = await failure(viaProxy.send(new HeadObjectCommand({ Bucket: server.bucket, Key: 'small' })));
        expect(['ECONNRESET', 'ECONNREFUSED', 'EPIPE']).toContain(first.code ?? first.name);
        const second = await failure(viaProxy.send(new HeadObjectCommand({ Bucket: server.bucket, Key: 'small' })));
        expect(second.code ?? second.name).toBe('ECONNREFUSED');
        await proxy.forward();
        expect((await bytesOf(viaProxy, server.bucket, 'small')).toString()).toBe('hello');
        expect(proxy.counts).toEqual({ PUT: 1, HEAD: 1, GET: 1 }); // the failed requests never reached it
      } finally {
        viaProxy.destroy();
      }
    });

    if (name.startsWith('Ceph')) {
      it('verifies signatures, the signed Host included (so the proxy must pass the Host on as sent, and does)', async () => {
        const wrong = new S3Client({ ...s3ClientOptions(server), credentials: { accessKeyId: server.accessKeyId, secretAccessKey: 'not-the-secret' }, maxAttempts: 1 });
        // Signed for this endpoint, then sent with another Host header (what a Host-rewriting proxy would do).
        const rehosted = new S3Client({ ...s3ClientOptions(server), maxAttempts: 1 });
        rehosted.middlewareStack.add(
          (next) => async (args: any) => {
            args.request.headers.host = '127.0.0.1:1';
            return next(args);
          },
          { step: 'deserialize', priority: 'high', name: 'rewriteHostAfterSigning' },
        );
        try {
          expect((await failure(wrong.send(new ListObjectsV2Command({ Bucket: server.bucket })))).name).toBe('SignatureDoesNotMatch');
          expect((await failure(rehosted.send(new ListObjectsV2Command({ Bucket: server.bucket })))).name).toBe('SignatureDoesNotMatch');
        } finally {
          wrong.destroy();
          rehosted.destroy();
        }
      });

      it('stop() kills radosgw, the OSD and the monitor and removes the data dir', async () => {
        const pids = (server as any).pids() as number[];
        expect(pids).toHaveLength(3);
        expect(pgrep(server.dir)).toHaveLength(3);
        const t0 = Date.now();
        await server.stop();
        console.log(`${name}: stopped in ${Date.now() - t0} ms`);
        expect(pids.filter(pidAlive)).toEqual([]);
        expect(pgrep(server.dir)).toEqual([]);
        expect(existsSync(server.dir)).toBe(false);
      });

      it('a start that fails halfway leaves no daemon and no directory', async () => {
        const parent = await mkdtemp(path.join(os.tmpdir(), 'walstream-rgw-fail-'));
        try {
          const err = await failure(startRgw({ dir: parent, timeoutMs: 700 }));
          expect(err.message).toMatch(/^startRgw\(memstore\): .*(not ready within 700 ms|timed out after)/);
          expect(pgrep(parent)).toEqual([]);
          expect(readdirSync(parent)).toEqual([]);
        } finally {
          await rm(parent, { recursive: true, force: true });
        }
      });
    } else {
      it('stop() closes the port and removes the data dir', async () => {
        await server.stop();
        const err = await failure(client.send(new HeadBucketCommand({ Bucket: server.bucket })));
        expect(err.code ?? err.name).toBe('ECONNREFUSED');
        expect(existsSync(server.dir)).toBe(false);
      });
    }
  });
}
