/**
 * Compression without a server: pg_receivewal's -Z syntax, frames decoded by the standard tools,
 * cut files decoded to their whole frames, the compressed segment writer's durability rules (a sync
 * leaves whole frames; an earlier run's .partial is replaced only by one holding at least as much),
 * and restore of each format.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CompressionMethod, compressFrame, decodeFrames, decompressFile, loadCodec, parseCompression, takeFrameSpace } from '../../src/archive/codec.js';
import { DirectorySink } from '../../src/archive/directory.js';
import { FRAME_BYTES } from '../../src/archive/compressed-writer.js';
import { restoreWalFile } from '../../src/restore.js';
import { useTempDirs } from './temp-dirs.js';

const tempDir = useTempDirs('walstream-codec-');
const METHODS = [
  { method: 'gzip', suffix: '.gz', cli: ['gzip', '-dc'] },
  { method: 'lz4', suffix: '.lz4', cli: ['lz4', '-dc'] },
  { method: 'zstd', suffix: '.zst', cli: ['zstd', '-dc'] },
] as const;
const SEGMENT = '000000010000000000000003';
const MB = 1 << 20;

/** WAL-like bytes: half random, half repeated, so every method compresses and none trivially. */
function walLike(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  const random = randomBytes(length);
  for (let i = 0; i < length; i++) out[i] = (i >> 6) % 2 === 0 ? random[i]! : (i * seed) & 0x0f;
  return out;
}

describe('parseCompression (pg_receivewal -Z syntax)', () => {
  it.each([
    ['gzip', { method: 'gzip' }],
    ['gzip:9', { method: 'gzip', level: 9 }],
    ['gzip:level=5', { method: 'gzip', level: 5 }],
    ['5', { method: 'gzip', level: 5 }],
    ['0', { method: 'none' }],
    ['none', { method: 'none' }],
    ['lz4', { method: 'lz4' }],
    ['zstd:level=19', { method: 'zstd', level: 19 }],
    ['ZSTD', { method: 'zstd' }],
  ])('%s', (spec, expected) => {
    expect(parseCompression(spec)).toEqual(expected);
  });

  it.each(['brotli', 'gzip:99', 'gzip:fast', 'zstd:level=30', 'none:3', '10', 'lz4:workers=2'])('refuses %s with one line', (spec) => {
    expect(() => parseCompression(spec)).toThrow(/^invalid compression "[^"\n]+": [^\n]+$/);
  });
});

describe.each(METHODS)('$method frames', ({ method, suffix, cli }) => {
  it('concatenated frames decode with the standard tool and with decompressFile', async () => {
    const parts = [walLike(300_000, 3), walLike(5, 5), walLike(70_000, 7)];
    const frames = await Promise.all(parts.map((p) => compressFrame({ method }, p)));
    const file = path.join(tempDir(), `${SEGMENT}${suffix}`);
    writeFileSync(file, Buffer.concat(frames));
    const expected = Buffer.concat(parts);
    expect(execFileSync(cli[0], [...cli.slice(1), file], { maxBuffer: 8 * MB }).equals(expected)).toBe(true);
    expect((await decompressFile(path.basename(file), readFileSync(file))).equals(expected)).toBe(true);
  });

  it('incompressible and empty input round-trip through the standard tool too', async () => {
    const parts = [randomBytes(200_000), Buffer.alloc(0), Buffer.from('x')];
    const frames = await Promise.all(parts.map((p) => compressFrame({ method }, p)));
    const file = path.join(tempDir(), `${SEGMENT}${suffix}`);
    writeFileSync(file, Buffer.concat(frames));
    expect(execFileSync(cli[0], [...cli.slice(1), file], { maxBuffer: 8 * MB }).equals(Buffer.concat(parts))).toBe(true);
    expect((await decompressFile(path.basename(file), readFileSync(file))).equals(Buffer.concat(parts))).toBe(true);
  });

  it('a cut file decodes to its whole frames, and says why it stopped', async () => {
    const a = walLike(200_000, 2);
    const b = walLike(200_000, 4);
    const frames = [await compressFrame({ method }, a), await compressFrame({ method }, b)];
    const whole = Buffer.concat(frames);
    for (const cut of [frames[0]!.length, frames[0]!.length + 7, whole.length - 1]) {
      const result = await decodeFrames(method, whole.subarray(0, cut));
      // gzip yields the decodable part of a cut member too; lz4/zstd only whole frames.
      expect(Buffer.concat([a, b]).subarray(0, result.data.length).equals(result.data)).toBe(true);
      expect(result.data.length).toBeGreaterThanOrEqual(a.length);
      if (cut > frames[0]!.length) expect(result.error).toBeTruthy();
    }
    await expect(decompressFile(`${SEGMENT}${suffix}`, whole.subarray(0, whole.length - 1))).rejects.toThrow(/could not decompress/);
  });
});

describe('lz4 (liblz4 as WebAssembly, on a worker thread for the writer)', () => {
  it('an input past one 4 MiB block becomes a frame of several blocks that lz4 -d decodes', async () => {
    const data = Buffer.concat([walLike(5 * MB, 17), randomBytes(3 * MB), walLike(1 * MB, 19)]); // a stored block in the middle
    const frame = await compressFrame({ method: 'lz4' }, data);
    const file = path.join(tempDir(), `${SEGMENT}.lz4`);
    writeFileSync(file, frame);
    expect(execFileSync('lz4', ['-dc', file], { maxBuffer: 16 * MB }).equals(data)).toBe(true);
    expect(frame.length).toBeLessThan(data.length);
  });

  it('a frame space compresses in a slot of the worker\'s shared memory, and a stored block when the input does not shrink', async () => {
    await loadCodec('lz4'); // the worker and its shared memory
    const data = walLike(FRAME_BYTES, 23);
    const space = takeFrameSpace({ method: 'lz4' }, FRAME_BYTES);
    data.copy(space.input);
    const frame = await space.compress(data.length);
    expect((await decompressFile(`${SEGMENT}.lz4`, Buffer.from(frame.bytes))).equals(data)).toBe(true);
    frame.release();
    const noise = randomBytes(FRAME_BYTES);
    const again = takeFrameSpace({ method: 'lz4' }, FRAME_BYTES);
    noise.copy(again.input);
    const stored = await again.compress(noise.length);
    expect(stored.bytes.length).toBe(noise.length + 15);
    expect((await decompressFile(`${SEGMENT}.lz4`, Buffer.from(stored.bytes))).equals(noise)).toBe(true);
    stored.release();
  });

  it('frames of several spaces compressed at once each hold their own input', async () => {
    await loadCodec('lz4');
    const parts = Array.from({ length: 12 }, (_, i) => walLike(200_000 + i * 1000, i + 40));
    const spaces = parts.map((p) => { const s = takeFrameSpace({ method: 'lz4' }, FRAME_BYTES); p.copy(s.input); return s; });
    const frames = await Promise.all(spaces.map((s, i) => s.compress(parts[i]!.length)));
    for (const [i, frame] of frames.entries()) {
      expect((await decompressFile(`${SEGMENT}.lz4`, Buffer.from(frame.bytes))).equals(parts[i]!)).toBe(true);
      frame.release();
    }
  });

  it('past the shared memory\'s 32 slots (grown one by one from 8) a frame is compressed on this thread, and every frame holds its input', async () => {
    await loadCodec('lz4');
    const parts = Array.from({ length: 40 }, (_, i) => walLike(FRAME_BYTES - i * 997, i + 70));
    const spaces = parts.map((p) => { const s = takeFrameSpace({ method: 'lz4' }, FRAME_BYTES); p.copy(s.input); return s; });
    const frames = await Promise.all(spaces.map((s, i) => s.compress(parts[i]!.length))); // none released yet: 40 slots wanted
    for (const [i, frame] of frames.entries()) expect((await decompressFile(`${SEGMENT}.lz4`, Buffer.from(frame.bytes))).equals(parts[i]!)).toBe(true);
    for (const frame of frames) frame.release();
  });

  it('many frames at once come back in order of their own inputs', async () => {
    const parts = Array.from({ length: 12 }, (_, i) => walLike(100_000 + i * 1000, i + 1));
    const frames = await Promise.all(parts.map((p) => compressFrame({ method: 'lz4' }, p)));
    for (const [i, frame] of frames.entries()) expect((await decompressFile(`${SEGMENT}.lz4`, frame)).equals(parts[i]!)).toBe(true);
  });
});

describe.each(METHODS)('DirectorySink with $method', ({ method, suffix }) => {
  async function writeSegment(dir: string, data: Buffer, mode: 'complete' | 'partial', syncEvery = 0): Promise<void> {
    const sink = new DirectorySink(dir, { compression: { method } });
    const writer = await sink.openSegment(SEGMENT, MB);
    for (let at = 0; at < data.length; at += 100_000) {
      await writer.write(data.subarray(at, Math.min(data.length, at + 100_000)));
      if (syncEvery && at % syncEvery === 0) await writer.sync();
    }
    await writer.close(mode);
  }

  it('writes NAME.EXT.partial, then NAME.EXT when complete, with frames of the configured size', async () => {
    const dir = tempDir();
    const data = walLike(MB);
    const sink = new DirectorySink(dir, { compression: { method } });
    const writer = await sink.openSegment(SEGMENT, MB);
    await writer.write(data.subarray(0, 600_000));
    expect(writer.unwritten!()).toBe(600_000); // still in the frame being filled: not reported as written
    await writer.sync();
    expect(writer.unwritten!()).toBe(0);
    expect(readdirSync(dir)).toEqual([`${SEGMENT}${suffix}.partial`]);
    const partial = readFileSync(path.join(dir, `${SEGMENT}${suffix}.partial`));
    expect((await decompressFile(`${SEGMENT}${suffix}.partial`, partial)).equals(data.subarray(0, 600_000))).toBe(true);
    await writer.write(data.subarray(600_000));
    await writer.close('complete');
    expect(readdirSync(dir)).toEqual([`${SEGMENT}${suffix}`]);
    expect((await decompressFile(`${SEGMENT}${suffix}`, readFileSync(path.join(dir, `${SEGMENT}${suffix}`)))).equals(data)).toBe(true);
    expect(FRAME_BYTES).toBeLessThanOrEqual(MB);
  });

  it('keeps an earlier run\'s .partial until the new stream holds as much, then replaces it', async () => {
    const dir = tempDir();
    const data = walLike(MB, 9);
    await writeSegment(dir, data.subarray(0, 700_000), 'partial');
    const name = `${SEGMENT}${suffix}.partial`;
    const earlier = readFileSync(path.join(dir, name));
    // A restart streams the segment again from offset 0 and stops before reaching 700,000 bytes:
    // the earlier .partial (more data) stays, the temporary file is gone.
    await writeSegment(dir, data.subarray(0, 300_000), 'partial', 100_000);
    expect(readdirSync(dir)).toEqual([name]);
    expect(readFileSync(path.join(dir, name)).equals(earlier)).toBe(true);
    // A restart that gets further replaces it, with no stale or doubled bytes.
    await writeSegment(dir, data.subarray(0, 900_000), 'partial', 100_000);
    expect(readdirSync(dir)).toEqual([name]);
    expect((await decompressFile(name, readFileSync(path.join(dir, name)))).equals(data.subarray(0, 900_000))).toBe(true);
    // And one that completes the segment leaves only NAME.EXT.
    await writeSegment(dir, data, 'complete');
    expect(readdirSync(dir)).toEqual([`${SEGMENT}${suffix}`]);
    expect((await decompressFile(`${SEGMENT}${suffix}`, readFileSync(path.join(dir, `${SEGMENT}${suffix}`)))).equals(data)).toBe(true);
  });

  it('an earlier .partial cut inside a frame counts only its decodable bytes', async () => {
    const dir = tempDir();
    const data = walLike(MB, 11);
    await writeSegment(dir, data.subarray(0, 500_000), 'partial', 100_000);
    const name = `${SEGMENT}${suffix}.partial`;
    const file = path.join(dir, name);
    const bytes = readFileSync(file);
    writeFileSync(file, Buffer.concat([bytes.subarray(0, bytes.length - 40), Buffer.alloc(4096)])); // a torn last write
    const kept = (await decodeFrames(method as CompressionMethod, readFileSync(file))).data.length;
    expect(kept).toBeLessThan(500_000);
    await writeSegment(dir, data.subarray(0, kept + 1000), 'partial', 100_000);
    expect((await decompressFile(name, readFileSync(file))).equals(data.subarray(0, kept + 1000))).toBe(true);
  });

  it('restore decompresses it to the full segment', async () => {
    const dir = tempDir();
    const data = walLike(MB, 13);
    await writeSegment(dir, data, 'complete');
    const dest = path.join(tempDir(), 'RECOVERYXLOG');
    expect(await restoreWalFile({ archiveDir: dir, walFileName: SEGMENT, destination: dest })).toBe('restored');
    expect(readFileSync(dest).equals(data)).toBe(true);
    expect(existsSync(`${dest}.walstream-tmp-${process.pid}`)).toBe(false);
  });
});
