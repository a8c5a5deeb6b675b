/**
 * Reading a test bucket with the SDK (the oracle side: what the store really holds, not what walstream
 * says it uploaded).
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';

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
