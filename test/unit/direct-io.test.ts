/**
 * DirectorySink's O_DIRECT path on a real directory: whatever the sizes of the appends and wherever the
 * syncs fall (chunk boundaries, mid-block, several at once, appends racing a sync), the file holds
 * exactly the bytes appended, zeros after them, and a sync covers everything appended before it.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DirectorySink } from '../../src/archive/directory.js';
import { useTempDirs } from './temp-dirs.js';
import { AlignedBuffers, directIoWorks } from '../../src/archive/direct-io.js';
import { isPromise } from '../../src/archive/sink.js';

const tempDir = useTempDirs('walstream-dio-');

/** Deterministic pseudo-random numbers (xorshift32), so a failure can be replayed. */
function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x % n;
  };
}

function pattern(length: number, seed: number): Buffer {
  const data = Buffer.alloc(length);
  const next = prng(seed);
  for (let i = 0; i < length; i++) data[i] = next(251) + 1; // never 0: zeros would hide a hole
  return data;
}

const supported = directIoWorks(os.tmpdir(), new AlignedBuffers(1, 1));

describe.skipIf(!supported)('DirectorySink with O_DIRECT (the temp directory accepts it)', () => {
  it('is used for a new segment file', () => {
    const sink = new DirectorySink(tempDir());
    sink.openSegment('000000010000000000000001', 1 << 20);
    expect(sink.directIo).toBe(true);
  });

  for (const seed of [1, 2, 3, 4]) {
    it(`random appends and syncs (seed ${seed}): every sync covers what came before it, the file is exact`, async () => {
      const dir = tempDir();
      const segment = 4 << 20; // four staging chunks
      const data = pattern(segment, seed);
      const next = prng(seed * 7919);
      const sink = new DirectorySink(dir);
      const writer = sink.openSegment('000000010000000000000002', segment);
      const partial = path.join(dir, '000000010000000000000002.partial');
      let position = 0;
      while (position < segment) {
        const size = Math.min(segment - position, [1, 7, 4096, 5000, 65536, 131072 + 3, 1 << 20][next(7)] + next(300));
        const wrote = writer.write(data.subarray(position, position + size));
        if (isPromise(wrote)) await wrote;
        position += size;
        const roll = next(10);
        if (roll < 3) {
          // A sync, then more appends before awaiting it: the sync must still cover its own prefix.
          const covered = position;
          const synced = writer.sync();
          if (roll === 0 && position < segment) {
            const more = Math.min(segment - position, 1 + next(9000));
            const w = writer.write(data.subarray(position, position + more));
            if (isPromise(w)) await w;
            position += more;
          }
          await synced;
          const onDisk = readFileSync(partial);
          expect(onDisk.length).toBe(segment);
          expect(onDisk.subarray(0, covered).equals(data.subarray(0, covered))).toBe(true);
        } else if (roll === 3) {
          await Promise.all([writer.sync(), writer.sync()]); // two at once
          expect(readFileSync(partial).subarray(0, position).equals(data.subarray(0, position))).toBe(true);
        }
      }
      await writer.close('complete');
      expect(readdirSync(dir)).toEqual(['000000010000000000000002']);
      expect(readFileSync(path.join(dir, '000000010000000000000002')).equals(data)).toBe(true);
    });
  }

  it('WAL that trickles in reaches the file within milliseconds without a sync, and counts as written then', async () => {
    const dir = tempDir();
    const sink = new DirectorySink(dir);
    const writer = sink.openSegment('000000010000000000000008', 1 << 20);
    const data = pattern(300, 3);
    writer.write(data);
    expect(writer.unwritten?.()).toBe(300);
    const partial = path.join(dir, '000000010000000000000008.partial');
    for (let i = 0; i < 200 && (writer.unwritten?.() !== 0 || !readFileSync(partial).subarray(0, 300).equals(data)); i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(writer.unwritten?.()).toBe(0);
    expect(readFileSync(partial).subarray(0, 300).equals(data)).toBe(true);
    await writer.close('partial');
  });

  it('a partial close keeps the bytes and zeros after them', async () => {
    const dir = tempDir();
    const data = pattern(3 * 4096 + 123, 9);
    const sink = new DirectorySink(dir);
    const writer = sink.openSegment('000000010000000000000003', 1 << 20);
    writer.write(data);
    await writer.close('partial');
    const onDisk = readFileSync(path.join(dir, '000000010000000000000003.partial'));
    expect(onDisk.length).toBe(1 << 20);
    expect(onDisk.subarray(0, data.length).equals(data)).toBe(true);
    expect(onDisk.subarray(data.length).every((b) => b === 0)).toBe(true);
    expect(existsSync(path.join(dir, '000000010000000000000003'))).toBe(false);
  });

  it('makes the writer wait once every staging chunk is under I/O, and loses nothing', async () => {
    const dir = tempDir();
    const segment = 32 << 20; // more than the 8 MiB of staging chunks
    const data = pattern(segment, 5);
    const sink = new DirectorySink(dir);
    const writer = sink.openSegment('000000010000000000000004', segment);
    let waits = 0;
    for (let position = 0; position < segment; position += 128 << 10) {
      const wrote = writer.write(data.subarray(position, position + (128 << 10)));
      if (isPromise(wrote)) {
        waits++;
        await wrote;
      }
    }
    await writer.close('complete');
    expect(waits).toBeGreaterThan(0);
    expect(readFileSync(path.join(dir, '000000010000000000000004')).equals(data)).toBe(true);
  });

  it('never goes direct for a reused .partial (a padded block must not clobber what is beyond)', async () => {
    const dir = tempDir();
    const sink = new DirectorySink(dir);
    const first = sink.openSegment('000000010000000000000005', 1 << 20);
    first.write(Buffer.alloc(10_000, 9));
    await first.close('partial');
    const again = sink.openSegment('000000010000000000000005', 1 << 20);
    again.write(Buffer.alloc(10, 9));
    await again.sync();
    await again.close('partial');
    const onDisk = readFileSync(path.join(dir, '000000010000000000000005.partial'));
    expect(onDisk.subarray(0, 10_000).every((b) => b === 9)).toBe(true);
  });

  it('synchronous mode (preallocate): each syncNow is one blocking O_DSYNC write and covers everything before it', async () => {
    const dir = tempDir();
    const segment = 2 << 20;
    const data = pattern(segment, 11);
    const next = prng(77);
    const sink = new DirectorySink(dir, { preallocate: true });
    await sink.check();
    const writer = sink.openSegment('000000010000000000000007', segment);
    expect(sink.directIo).toBe(true);
    expect(typeof writer.syncNow).toBe('function');
    const partial = path.join(dir, '000000010000000000000007.partial');
    let position = 0;
    while (position < segment) {
      const size = Math.min(segment - position, [1, 200, 300, 4096, 9000, 200_000][next(6)] + next(50));
      expect(isPromise(writer.write(data.subarray(position, position + size)))).toBe(false);
      position += size;
      // Staged: what came since the last sync, within the current chunk (a full chunk is written at once).
      expect(writer.unwritten?.()).toBe(Math.min(size, position % (1 << 20)));
      writer.syncNow!();
      expect(writer.unwritten?.()).toBe(0);
      if (next(4) === 0) {
        const onDisk = readFileSync(partial);
        expect(onDisk.subarray(0, position).equals(data.subarray(0, position))).toBe(true);
        expect(onDisk.subarray(position).every((b) => b === 0)).toBe(true);
      }
    }
    await writer.close('complete');
    expect(readFileSync(path.join(dir, '000000010000000000000007')).equals(data)).toBe(true);
    await sink.close();
  });

  it('is not used with noSync, or when turned off', () => {
    for (const options of [{ noSync: true }, { noSync: true, preallocate: true }, { directIo: false }]) {
      const sink = new DirectorySink(tempDir(), options);
      sink.openSegment('000000010000000000000006', 1 << 20);
      expect(sink.directIo).toBe(false);
    }
  });
});
