/**
 * An S3 bucket (AWS, or any S3-compatible store: MinIO, Ceph RGW, R2) seen as a flat set of named files
 * under a prefix: what the bucket side of the archive needs (put with an integrity check, get, list,
 * size, remove). @aws-sdk/client-s3 is imported on first use, so nothing else pays for loading it.
 *
 * Integrity: every PUT carries Content-MD5, which S3 and S3-compatible servers verify before storing,
 * and the returned ETag is compared with the MD5 we computed (for a multipart upload, the MD5 of the
 * parts' MD5s, "-N"), so an object is confirmed only when the server holds exactly our bytes.
 *
 * Such a request is signed with UNSIGNED-PAYLOAD instead of the body's SHA-256: Content-MD5 is itself a
 * signed header, so the signature still covers the body (through its MD5), and neither we nor the server
 * hash 16 MiB a second time (measured on Ceph RGW 16, 2 cores: see the README's object storage bench).
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { WalstreamError } from '../errors.js';
import type { ArchiveEntry, ArchiveReader } from './reader.js';

/** Where in which bucket: from `s3://bucket/prefix`. */
export interface S3Location {
  bucket: string;
  /** Key prefix without a trailing slash ('' for the bucket's root). */
  prefix: string;
}

/** How to reach the store besides the SDK's own environment (credentials chain, AWS_REGION, AWS_ENDPOINT_URL_S3). */
export interface S3StoreOptions {
  /** Endpoint URL of an S3-compatible store (e.g. http://127.0.0.1:7480). */
  endpoint?: string;
  /** Address buckets as ENDPOINT/BUCKET/KEY instead of BUCKET.ENDPOINT/KEY (MinIO, RGW, s3rver). */
  forcePathStyle?: boolean;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Attempts per request made by the SDK itself before an error reaches the caller (default: AWS_MAX_ATTEMPTS or 3). */
  maxAttempts?: number;
  /** Bytes per part of a multipart upload; files larger than this go up in parts (default 16 MiB). */
  partSize?: number;
}

const DEFAULT_PART_SIZE = 16 * 1024 * 1024;
/** Read buffers kept for reuse between uploads (one per concurrent upload; allocating 16 MiB each time costs GC). */
const SPARE_BUFFERS = 4;

/** True for `s3://…` archive locations. */
export function isS3Url(value: string): boolean {
  return /^s3:\/\//i.test(value);
}

/** Parse `s3://bucket[/prefix]`; throws BAD_OPTION with what a valid one looks like. */
export function parseS3Url(url: string): S3Location {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/i.exec(url);
  // Bucket names: 3-63 characters of lowercase letters, digits, dots and hyphens (S3's rules, loosely).
  if (!match || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(match[1]!)) {
    throw new WalstreamError('BAD_OPTION', `invalid bucket location "${url}": expected s3://BUCKET/PREFIX with a valid bucket name`);
  }
  const prefix = (match[2] ?? '').replace(/\/+$/, '');
  return { bucket: match[1]!, prefix };
}

/**
 * Files in a bucket under a prefix (credentials and region from the AWS SDK's environment). Methods
 * throw WalstreamError('ARCHIVE_IO') naming the object and the server's answer; `read`, `openRead` and
 * `size` return null for an absent object.
 *
 * @example
 * ```ts
 * import { S3Store, restoreWalFile } from 'pg-walstream';
 *
 * const archive = new S3Store('s3://wal-archive/cluster-a', { endpoint: 'http://127.0.0.1:9000', forcePathStyle: true });
 * await restoreWalFile({ archive, walFileName: '000000010000000000000003', destination: '/tmp/seg' });
 * await archive.close();
 * ```
 */
export class S3Store implements ArchiveReader {
  readonly location: S3Location;
  private client: Promise<{ client: S3Client; sdk: typeof import('@aws-sdk/client-s3') }> | null = null;
  private readonly partSize: number;
  /** After close(): no request starts again (a late retry or clean-up must not reopen the client). */
  private closed = false;
  /** partSize-long buffers free for the next putFile (a buffer comes back only after its request succeeded). */
  private readonly spare: Buffer[] = [];

  constructor(location: S3Location | string, private readonly options: S3StoreOptions = {}) {
    this.location = typeof location === 'string' ? parseS3Url(location) : location;
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE;
  }

  /** `s3://bucket/prefix`, for messages. */
  describe(): string {
    return `s3://${this.location.bucket}${this.location.prefix ? `/${this.location.prefix}` : ''}`;
  }

  locate(name: string): string {
    return `${this.describe()}/${name}`;
  }

  private key(name: string): string {
    return this.location.prefix ? `${this.location.prefix}/${name}` : name;
  }

  private sdk(): Promise<{ client: S3Client; sdk: typeof import('@aws-sdk/client-s3') }> {
    if (this.closed) return Promise.reject(new WalstreamError('STOPPED', `the client of ${this.describe()} is closed`));
    this.client ??= import('@aws-sdk/client-s3').then((sdk) => {
      const o = this.options;
      const config: S3ClientConfig = {
        // Buffers with Content-MD5 are checked by every S3-compatible server; the newer checksum
        // headers are not known to all of them (Ceph pacific refuses streamed bodies with them).
        requestChecksumCalculation: 'WHEN_REQUIRED',
        // A store that accepts a connection and never answers must not hold an upload (or a restore) forever:
        // 10 s to connect, a minute of silence, ten minutes for any one request (a 16 MiB part).
        requestHandler: { connectionTimeout: 10_000, socketTimeout: 60_000, requestTimeout: 600_000, throwOnRequestTimeout: true },
        responseChecksumValidation: 'WHEN_REQUIRED',
      };
      if (o.maxAttempts !== undefined) config.maxAttempts = o.maxAttempts; // else the SDK's: AWS_MAX_ATTEMPTS, or 3
      if (o.endpoint) config.endpoint = o.endpoint;
      if (o.forcePathStyle) config.forcePathStyle = true;
      if (o.credentials) config.credentials = o.credentials;
      // An S3-compatible store needs some region to sign with; AWS itself needs the real one.
      const region = o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
      if (region) config.region = region;
      else if (o.endpoint || process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL) config.region = 'us-east-1';
      const client = new sdk.S3Client(config);
      // A body sent with Content-MD5 (signed) is signed as UNSIGNED-PAYLOAD: no second hash of it here or there.
      client.middlewareStack.add((next) => (args) => {
        const headers = (args.request as { headers?: Record<string, string> }).headers;
        if (headers?.['content-md5'] && !headers['x-amz-content-sha256']) headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        return next(args);
      }, { step: 'build', name: 'walstreamUnsignedPayloadWithMd5' });
      return { client, sdk };
    });
    return this.client;
  }

  private fail(what: string, name: string, err: unknown): WalstreamError {
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = e?.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : '';
    const reason = `${e?.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e?.message ?? String(err)}`.replace(/\s+/g, ' ');
    return new WalstreamError('ARCHIVE_IO', `could not ${what} ${this.describe()}/${name}: ${reason}${status}`, { cause: err });
  }

  /** Store `data` as `name` (replacing it), confirmed by Content-MD5 and the returned ETag. */
  async put(name: string, data: Uint8Array): Promise<void> {
    const { client, sdk } = await this.sdk();
    const md5 = createHash('md5').update(data).digest();
    let etag: string | undefined;
    try {
      const out = await client.send(new sdk.PutObjectCommand({
        Bucket: this.location.bucket, Key: this.key(name), Body: data, ContentLength: data.length,
        ContentMD5: md5.toString('base64'),
      }));
      etag = out.ETag;
      // SSE-KMS and SSE-C objects have an ETag that is not their MD5 (the store checked Content-MD5 itself).
      if (out.ServerSideEncryption?.startsWith('aws:kms') || out.SSECustomerAlgorithm) return;
    } catch (err) {
      throw this.fail('upload', name, err);
    }
    await this.confirmEtag(name, etag, md5.toString('hex'));
  }

  /**
   * Upload a local file as `name`: one PUT up to the part size, a multipart upload above it (1 GB
   * segments), reading one part at a time so memory stays at one part.
   */
  async putFile(name: string, path: string): Promise<number> {
    const file = await open(path, 'r');
    try {
      const { size } = await file.stat();
      // Segment-sized reads reuse a buffer; a small file (history, 1 MiB segments with the default part) does not hold one.
      const pooled = size * 2 > this.partSize;
      const buffer = pooled ? this.spare.pop() ?? Buffer.allocUnsafe(this.partSize) : Buffer.allocUnsafe(size);
      if (size <= this.partSize) {
        const data = buffer.subarray(0, size);
        await readFully(file, data, 0);
        await this.put(name, data);
      } else {
        await this.putMultipart(name, size, buffer, (part, offset) => readFully(file, part, offset));
      }
      if (pooled && this.spare.length < SPARE_BUFFERS) this.spare.push(buffer);
      return size;
    } finally {
      await file.close();
    }
  }

  private async putMultipart(name: string, size: number, buffer: Buffer, read: (buffer: Buffer, offset: number) => Promise<void>): Promise<void> {
    const { client, sdk } = await this.sdk();
    const Bucket = this.location.bucket;
    const Key = this.key(name);
    let uploadId: string | undefined;
    try {
      uploadId = (await client.send(new sdk.CreateMultipartUploadCommand({ Bucket, Key }))).UploadId;
      const parts: { ETag: string; PartNumber: number }[] = [];
      const partMd5s: Buffer[] = [];
      const wholeMd5 = createHash('md5');
      for (let offset = 0, PartNumber = 1; offset < size; offset += this.partSize, PartNumber++) {
        const body = buffer.subarray(0, Math.min(this.partSize, size - offset));
        await read(body, offset);
        const md5 = createHash('md5').update(body).digest();
        wholeMd5.update(body);
        const out = await client.send(new sdk.UploadPartCommand({
          Bucket, Key, UploadId: uploadId, PartNumber, Body: body, ContentLength: body.length,
          ContentMD5: md5.toString('base64'),
        }));
        checkEtag(out.ETag, md5.toString('hex'), () => new Error(`part ${PartNumber}'s ETag ${out.ETag} is not the MD5 of what was sent`));
        parts.push({ ETag: out.ETag!, PartNumber });
        partMd5s.push(md5);
      }
      const out = await client.send(new sdk.CompleteMultipartUploadCommand({ Bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
      const whole = `${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${parts.length}`;
      const encrypted = out.ServerSideEncryption?.startsWith('aws:kms');
      if (!encrypted) await this.confirmEtag(name, out.ETag, whole, wholeMd5.digest('hex'));
    } catch (err) {
      if (uploadId) {
        await client.send(new sdk.AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId })).catch(() => {});
      }
      throw err instanceof WalstreamError ? err : this.fail('upload', name, err);
    }
  }

  /**
   * The stored object's ETag must be `expected` (the MD5, or the multipart form "MD5-N"). Ceph RGW 16
   * answers CompleteMultipartUpload with an empty ETag: then the object's HEAD says it. s3rver gives a
   * multipart object the MD5 of the whole, which is as good a proof: either form is accepted.
   */
  private async confirmEtag(name: string, etag: string | undefined, expected: string, wholeMd5?: string): Promise<void> {
    let stored = etag?.replace(/"/g, '').toLowerCase();
    if (!stored) {
      const { client, sdk } = await this.sdk();
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: this.location.bucket, Key: this.key(name) })).catch((err) => { throw this.fail('look up', name, err); });
      stored = head.ETag?.replace(/"/g, '').toLowerCase();
    }
    if (stored && stored !== expected && stored !== wholeMd5) {
      throw this.fail('upload', name, new Error(`the stored object's ETag ${stored} is not the MD5 of what was sent (${expected})`));
    }
  }

  /** The whole object, or null when absent. */
  async read(name: string): Promise<Buffer | null> {
    const stream = await this.openRead(name);
    if (!stream) return null;
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of stream) chunks.push(chunk as Buffer);
    } catch (err) {
      throw this.fail('read', name, err);
    }
    return Buffer.concat(chunks);
  }

  /** The object's bytes as a stream (optionally only the first `length` bytes), or null when absent. */
  async openRead(name: string, length?: number): Promise<Readable | null> {
    const { client, sdk } = await this.sdk();
    try {
      const out = await client.send(new sdk.GetObjectCommand({
        Bucket: this.location.bucket, Key: this.key(name),
        ...(length !== undefined ? { Range: `bytes=0-${Math.max(0, length - 1)}` } : {}),
      }));
      return out.Body as Readable;
    } catch (err) {
      if (isAbsent(err)) return null;
      // An empty object asked for a range: 416, which is "no bytes", not a fault.
      if ((err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 416) return null;
      throw this.fail('read', name, err);
    }
  }

  /** Size in bytes, or null when absent. */
  async size(name: string): Promise<number | null> {
    const { client, sdk } = await this.sdk();
    try {
      const out = await client.send(new sdk.HeadObjectCommand({ Bucket: this.location.bucket, Key: this.key(name) }));
      return out.ContentLength ?? 0;
    } catch (err) {
      if (isAbsent(err)) return null;
      throw this.fail('look up', name, err);
    }
  }

  /** Every object directly under the prefix (names without the prefix), in key order. */
  async entries(): Promise<ArchiveEntry[]> {
    const { client, sdk } = await this.sdk();
    const Prefix = this.location.prefix ? `${this.location.prefix}/` : '';
    const objects: ArchiveEntry[] = [];
    let ContinuationToken: string | undefined;
    try {
      do {
        const out = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.location.bucket, Prefix, ContinuationToken }));
        for (const o of out.Contents ?? []) {
          const name = o.Key!.slice(Prefix.length);
          if (name && !name.includes('/')) objects.push({ name, size: o.Size ?? 0, ...(o.LastModified ? { modifiedMs: o.LastModified.getTime() } : {}) });
        }
        ContinuationToken = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (ContinuationToken);
    } catch (err) {
      throw this.fail('list', '', err);
    }
    return objects;
  }

  /** Delete `name` (absent is fine: S3 deletes are idempotent). */
  async remove(name: string): Promise<void> {
    const { client, sdk } = await this.sdk();
    try {
      await client.send(new sdk.DeleteObjectCommand({ Bucket: this.location.bucket, Key: this.key(name) }));
    } catch (err) {
      if (!isAbsent(err)) throw this.fail('delete', name, err);
    }
  }

  /** Throws ARCHIVE_MISSING with what to check when the bucket cannot be reached (absent, no access). */
  async check(): Promise<void> {
    const { client, sdk } = await this.sdk();
    try {
      await client.send(new sdk.HeadBucketCommand({ Bucket: this.location.bucket }));
    } catch (err) {
      const e = this.fail('reach', '', err);
      throw new WalstreamError('ARCHIVE_MISSING', `${e.message}; check the bucket exists, the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) and --s3-endpoint`, { cause: err });
    }
  }

  /** Close the client's connections. */
  async close(): Promise<void> {
    this.closed = true;
    if (!this.client) return;
    const { client } = await this.client;
    client.destroy();
    this.client = null;
    this.spare.length = 0;
  }
}

function isAbsent(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

function checkEtag(etag: string | undefined, expected: string, error: () => Error): void {
  if (etag !== undefined && etag.replace(/"/g, '').toLowerCase() !== expected) throw error();
}

async function readFully(file: import('node:fs/promises').FileHandle, buffer: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buffer.length;) {
    const { bytesRead } = await file.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) throw new Error(`file ended early at ${position + done} bytes`);
    done += bytesRead;
  }
}
