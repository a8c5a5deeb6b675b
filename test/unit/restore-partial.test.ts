/**
 * `--include-partial` on synthetic archives: which .partial is served, padded how, and what is refused.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compressFrame } from '../../src/archive/codec.js';
import { WalstreamError } from '../../src/errors.js';
import { restoreMain } from '../../src/cli/restore.js';
import { restoreWalFile } from '../../src/restore.js';

const MB = 1 << 20;
const SEGMENT = '000000010000000000000005';

let root: string;
let archive: string;
let dest: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'walstream-partial-'));
  archive = join(root, 'archive');
  await mkdir(archive);
  await mkdir(join(root, 'pg_wal'));
  dest = join(root, 'pg_wal', 'RECOVERYXLOG');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The first `length` bytes of segment 5 on `timeline`: a long page header, then a marker. */
function walData(length: number, timeline = 1, segno = 5): Buffer {
  const b = Buffer.alloc(length);
  b.writeUInt16LE(0xd110, 0);
  b.writeUInt16LE(0x0002, 2);
  b.writeUInt32LE(timeline, 4);
  b.writeBigUInt64LE(BigInt(segno) * BigInt(MB), 8);
  b.writeUInt32LE(MB, 32);
  b.writeUInt32LE(8192, 36);
  b.fill(0xab, 64);
  return b;
}

const restore = (includePartial: boolean, walFileName = SEGMENT) => restoreWalFile({ archiveDir: archive, walFileName, destination: dest, includePartial });

async function expectServed(data: Buffer): Promise<void> {
  const got = await readFile(dest);
  expect(got.length).toBe(MB);
  expect(got.subarray(0, data.length).equals(data)).toBe(true);
  expect(got.subarray(data.length).every((b) => b === 0)).toBe(true);
}

describe('--include-partial', () => {
  it('serves an uncompressed .partial (already full size) only when asked', async () => {
    const data = walData(300_000);
    await writeFile(join(archive, SEGMENT + '.partial'), Buffer.concat([data, Buffer.alloc(MB - data.length)]));
    await writeFile(join(archive, '000000010000000000000004'), walData(MB, 1, 4));
    await expect(restore(false)).resolves.toBe('missing');
    expect(await readdir(join(root, 'pg_wal'))).toEqual([]);
    await expect(restore(true)).resolves.toBe('partial');
    await expectServed(data);
  });

  it.each([
    ['.lz4', (d: Buffer) => compressFrame({ method: 'lz4' }, d)],
    ['.zst', (d: Buffer) => compressFrame({ method: 'zstd' }, d)],
    ['.gz', async (d: Buffer) => gzipSync(d)],
  ])('serves a compressed %s.partial padded with zeros to the segment size', async (suffix, compress) => {
    const data = walData(200_000);
    await writeFile(join(archive, `${SEGMENT}${suffix}.partial`), await compress(data));
    await expect(restore(true)).resolves.toBe('partial');
    await expectServed(data);
  });

  it('serves only the whole frames of a compressed .partial cut by a crash', async () => {
    const first = walData(100_000);
    const second = Buffer.alloc(50_000, 0xcd);
    const frames = Buffer.concat([await compressFrame({ method: 'lz4' }, first), await compressFrame({ method: 'lz4' }, second)]);
    await writeFile(join(archive, `${SEGMENT}.lz4.partial`), frames.subarray(0, frames.length - 10));
    await expect(restore(true)).resolves.toBe('partial');
    await expectServed(first);
  });

  it('refuses a .partial that is not the newest file on its timeline, and one with nothing written yet', async () => {
    await writeFile(join(archive, SEGMENT + '.partial'), walData(MB).fill(0, 300_000));
    await writeFile(join(archive, '000000010000000000000006.partial'), Buffer.alloc(MB));
    await expect(restore(true)).resolves.toBe('missing'); // a later segment of timeline 1 exists: 5 is a hole
    await expect(restore(true, '000000010000000000000006')).resolves.toBe('missing'); // zeros: nothing to replay
    // A later timeline does not count: its own newest file decides for it.
    await rm(join(archive, '000000010000000000000006.partial'));
    await writeFile(join(archive, '000000020000000000000007.partial'), walData(MB, 2, 7));
    await expect(restore(true)).resolves.toBe('partial');
  });

  it('rejects a .partial whose page header is not its segment\'s as ARCHIVE_DAMAGED', async () => {
    await writeFile(join(archive, SEGMENT + '.partial'), walData(MB, 1, 6));
    const err = await restore(true).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalstreamError);
    expect((err as WalstreamError).code).toBe('ARCHIVE_DAMAGED');
    expect(await readdir(join(root, 'pg_wal'))).toEqual([]);
  });

  it('walstream restore --include-partial exits 0 with the padded segment, 1 without the flag', async () => {
    await writeFile(join(archive, SEGMENT + '.partial'), walData(MB).fill(0, 4096));
    expect(await restoreMain([SEGMENT, dest, '-D', archive, '--prefetch', '0'])).toBe(1);
    expect(await restoreMain([SEGMENT, dest, '-D', archive, '--prefetch', '0', '--include-partial'])).toBe(0);
    await expectServed(walData(4096));
  });
});
