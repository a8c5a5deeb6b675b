/**
 * Reading a test bucket with the SDK (the oracle side: what the store really holds, not what walstream
 * says it uploaded).
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { parseSegmentFileName } from '../../src/lsn.js';

/** Every object under `prefix/` with its size, keyed by its name under the prefix. */
export async function bucketSizes(client: S3Client, bucket: string, prefix: string): Promise<Map<string, number>> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }));
  return new Map((out.Contents ?? []).map((o) => [o.Key!.slice(prefix.length + 1), o.Size ?? 0]));
}

/** End LSN of the complete segments (`segmentSize` bytes each) the bucket holds contiguously from segment `first` on. */
export function bucketHeldThrough(names: Iterable<string>, first: bigint, segmentSize: number): bigint {
  const held = new Set<bigint>();
  for (const name of names) {
    const segment = /^[0-9A-F]{24}$/.test(name) ? parseSegmentFileName(name, segmentSize) : null;
    if (segment) held.add(segment.segno);
  }
  let segno = first;
  while (held.has(segno)) segno++;
  return segno * BigInt(segmentSize);
}

/** Every object under `prefix/` with its bytes, keyed by its name under the prefix. */
export async function bucketContents(client: S3Client, bucket: string, prefix: string): Promise<Map<string, Buffer>> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }));
  const result = new Map<string, Buffer>();
  for (const o of out.Contents ?? []) {
    const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
    result.set(o.Key!.slice(prefix.length + 1), Buffer.from(await body.Body!.transformToByteArray()));
  }
  return result;
}
