/**
 * DirectorySink on a real directory: .partial full size from the start, rename only when complete, and
 * in preallocate mode (synchronous) zero-filled files with the next one prepared in the background.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DirectorySink } from '../../src/archive/directory.js';
import { useTempDirs } from './temp-dirs.js';

const SEG = 1 << 20;
const tempDir = useTempDirs('walstream-dir-');
/** Bytes of `file` in the page cache (util-linux fincore), or null where fincore is missing. */
function residentBytes(file: string): number | null {
  try {
    return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim());
  } catch {
    return null;
  }
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('DirectorySink', () => {
  it('writes NAME.partial at full size with zeros after the data, and renames only on completion', async () => {
    const dir = tempDir();
    const sink = new DirectorySink(dir);
    const writer = sink.openSegment('000000010000000000000001', SEG);
    writer.write(Buffer.from('hello'));
    await writer.sync();
    const partial = path.join(dir, '000000010000000000000001.partial');
    expect(statSync(partial).size).toBe(SEG);
    const content = readFileSync(partial);
    expect(content.subarray(0, 5).toString()).toBe('hello');
    expect(content.subarray(5).every((b) => b === 0)).toBe(true);
    expect(existsSync(path.join(dir, '000000010000000000000001'))).toBe(false);
    writer.write(Buffer.alloc(SEG - 5, 1));
    await writer.close('complete');
    expect(readdirSync(dir)).toEqual(['000000010000000000000001']);
  });

  it('reuses an existing .partial in place, rewriting from offset 0', async () => {
    const dir = tempDir();
    const sink = new DirectorySink(dir);
    const first = sink.openSegment('000000010000000000000002', SEG);
    first.write(Buffer.alloc(1000, 9));
    await first.close('partial');
    const again = sink.openSegment('000000010000000000000002', SEG);
    again.write(Buffer.alloc(10, 9));
    await again.close('partial');
    const content = readFileSync(path.join(dir, '000000010000000000000002.partial'));
    expect(content.length).toBe(SEG);
    expect(content.subarray(0, 1000).every((b) => b === 9)).toBe(true); // nothing made durable earlier was lost
  });

  it('preallocate: zero-filled segments, the next one prepared in the background, the spare removed at close', async () => {
    const dir = tempDir();
    const sink = new DirectorySink(dir, { preallocate: true });
    await sink.check();
    const first = sink.openSegment('000000010000000000000003', SEG);
    await until(() => existsSync(path.join(dir, '.walstream-spare')));
    expect(statSync(path.join(dir, '.walstream-spare')).size).toBe(SEG);
    // With direct I/O the zeros went straight to the device (1 MiB writes, no 16 MB fdatasync at the
    // end for a commit's O_DSYNC write to wait behind): nothing of the spare sits in the page cache.
    const resident = residentBytes(path.join(dir, '.walstream-spare'));
    if (sink.directIo && resident !== null) expect(resident).toBe(0);
    first.write(Buffer.alloc(SEG, 5));
    await first.close('complete');
    const spareInode = statSync(path.join(dir, '.walstream-spare')).ino;
    const second = sink.openSegment('000000010000000000000004', SEG); // takes the spare
    expect(statSync(path.join(dir, '000000010000000000000004.partial')).ino).toBe(spareInode);
    second.write(Buffer.from('x'));
    second.syncNow!();
    const content = readFileSync(path.join(dir, '000000010000000000000004.partial'));
    expect(content.length).toBe(SEG);
    expect(content[0]).toBe(0x78);
    expect(content.subarray(1).every((b) => b === 0)).toBe(true);
    await second.close('partial');
    await sink.close();
    expect(readdirSync(dir).sort()).toEqual(['000000010000000000000003', '000000010000000000000004.partial']);
  });
});

describe('DirectorySink start-up', () => {
  it('check() changes nothing; only the lock holder removes a spare left behind (a second archiver must not take the first one\'s)', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, '.walstream-spare'), Buffer.alloc(4096));
    const first = new DirectorySink(dir);
    await first.check();
    expect(existsSync(path.join(dir, '.walstream-spare'))).toBe(true);
    await first.lock();
    expect(existsSync(path.join(dir, '.walstream-spare'))).toBe(false);
    writeFileSync(path.join(dir, '.walstream-spare'), Buffer.alloc(4096)); // the holder's own spare
    const second = new DirectorySink(dir);
    await second.check();
    await expect(second.lock()).rejects.toMatchObject({ code: 'ARCHIVE_LOCKED' });
    expect(existsSync(path.join(dir, '.walstream-spare'))).toBe(true);
    await first.close();
  });
});
