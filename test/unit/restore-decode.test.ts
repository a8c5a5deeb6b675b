/**
 * src/restore/decode.ts: the prefetch helper's decoder gives exactly what codec.ts's does, for LZ4 frames
 * in walstream's form (taken apart block by block), in other forms (checksums, linked blocks: through the
 * frame decoder) and zstd (one call for the whole file), and reports damage as codec.ts does.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as lz4 from 'lz4-napi';
import { compressFrame, decompressFile } from '../../src/archive/codec.js';
import { decodeArchivedFile } from '../../src/restore/decode.js';

/** WAL-like bytes: compressible runs with some noise. */
function walLike(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 64) b.write(`record ${seed} ${i} ${'x'.repeat(i % 40)}`, i);
  randomBytes(4096).copy(b, 8192); // a stretch that does not compress
  return b;
}

describe('decodeArchivedFile', () => {
  it('decodes walstream LZ4 frames block by block, other LZ4 frames whole, to the same bytes as codec.ts', async () => {
    const pieces = [walLike(1 << 20, 1), walLike(300_000, 2), randomBytes(70_000), walLike(1 << 20, 3)];
    const frames = [
      await compressFrame({ method: 'lz4' }, pieces[0]!),
      await lz4.compressFrame(pieces[1]!, { contentChecksum: true, blockChecksums: true }), // another form
      await compressFrame({ method: 'lz4' }, pieces[2]!), // stored: does not shrink
      await compressFrame({ method: 'lz4' }, pieces[3]!),
    ];
    expect(frames[0]!.subarray(4, 7)).toEqual(Buffer.from([0x60, 0x70, 0x73]));
    expect(frames[1]![4]).not.toBe(0x60);
    const file = Buffer.concat(frames);
    const copy = Buffer.from(file);
    const parts = await decodeArchivedFile('000000010000000000000001.lz4', file);
    expect(Buffer.concat(parts).equals(Buffer.concat(pieces))).toBe(true);
    expect(Buffer.concat(parts).equals(await decompressFile('x.lz4', copy))).toBe(true);
    expect(file.equals(copy)).toBe(true); // the input is left as it was
  });

  it('decodes a zstd file of several frames in one call', async () => {
    const pieces = [walLike(1 << 20, 4), walLike(500_000, 5)];
    const file = Buffer.concat(await Promise.all(pieces.map((p) => compressFrame({ method: 'zstd' }, p))));
    expect(Buffer.concat(await decodeArchivedFile('000000010000000000000001.zst', file)).equals(Buffer.concat(pieces))).toBe(true);
  });

  it('returns a plain file as it is, and reports a damaged or cut compressed one as codec.ts does', async () => {
    const plain = walLike(4096, 6);
    expect((await decodeArchivedFile('000000010000000000000001', plain))[0]).toBe(plain);
    const frame = await compressFrame({ method: 'lz4' }, walLike(1 << 20, 7));
    const damaged = Buffer.from(frame);
    damaged.writeUInt32LE(0x00ffffff, 7); // the block claims more bytes than the file has
    await expect(decodeArchivedFile('000000010000000000000001.lz4', damaged)).rejects.toMatchObject({ code: 'ARCHIVE_DAMAGED' });
    await expect(decodeArchivedFile('000000010000000000000001.lz4', frame.subarray(0, frame.length - 100))).rejects.toMatchObject({ code: 'ARCHIVE_DAMAGED' });
    const zst = await compressFrame({ method: 'zstd' }, walLike(1 << 20, 8));
    await expect(decodeArchivedFile('000000010000000000000001.zst', zst.subarray(0, zst.length - 10))).rejects.toMatchObject({ code: 'ARCHIVE_DAMAGED' });
  });
});
