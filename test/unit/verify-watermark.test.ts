/**
 * The watermark (walstream.verified): a second run reads only segments after it, continuing the
 * record chain (prev-link, a record crossing the boundary) exactly; --all and --from re-check.
 * Also CRC-32C itself: the native and table implementations agree with the standard check value.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { verifyArchive } from '../../src/walfile/verify-archive.js';
import { WATERMARK_FILE, readWatermark } from '../../src/walfile/watermark.js';
import { DirectoryReader } from '../../src/archive/reader.js';
import { crc32c, crc32cImplementation, crc32cTs } from '../../src/walfile/crc32c.js';
import { useTempDirs } from './temp-dirs.js';

const fixtures = fileURLToPath(new URL('../../fixtures/wal/', import.meta.url));
const waldump = JSON.parse(readFileSync(path.join(fixtures, 'waldump.json'), 'utf8')) as { records: Record<string, number>; total: number };
const tempDir = useTempDirs('walstream-verify-mark-');
const TL1 = ['000000010000000000000007', '000000010000000000000008', '000000010000000000000009'];

function copy(dir: string, names: string[]): void {
  for (const name of names) copyFileSync(path.join(fixtures, name), path.join(dir, name));
}

describe('the verify watermark', () => {
  it('second run reads only what is new, continues the chain, and --all re-checks everything', async () => {
    const dir = tempDir();
    copy(dir, TL1.slice(0, 2));
    const first = await verifyArchive({ directory: dir });
    expect(first.ok).toBe(true);
    expect(first.watermark).toBe('000000010000000000000008');
    expect((await readWatermark(new DirectoryReader(dir)))?.segment).toBe('000000010000000000000008');

    // Damage an already verified segment: the next run never reads it, so it still passes.
    const damaged = path.join(dir, TL1[0]!);
    const bytes = readFileSync(damaged);
    bytes[500_000] ^= 0xff;
    writeFileSync(damaged, bytes);
    copy(dir, [TL1[2]!, '00000001000000000000000A.partial', '00000002000000000000000A', '00000002.history']);
    const read: string[] = [];
    const second = await verifyArchive({ directory: dir, onProgress: (p) => read.push(p.file) });
    expect(second.files.flatMap((f) => f.problems)).toEqual([]);
    expect(read).toEqual(['000000010000000000000009', '00000001000000000000000A.partial', '00000002000000000000000A']);
    expect(second.startedAfter).toBe('000000010000000000000008');
    expect(second.watermark).toBe('00000002000000000000000A');
    // The chain carried over the mark: every record pg_waldump counts in the new files (a record
    // crossing from 8 into 9 counts for 8, which the first run read).
    expect(second.files.map((f) => f.records)).toEqual([waldump.records['000000010000000000000009'], waldump.records['00000001000000000000000A.partial'], waldump.records['00000002000000000000000A']]);

    const third = await verifyArchive({ directory: dir });
    expect(third.segments).toBe(0);
    expect(third.ok).toBe(true);

    const all = await verifyArchive({ directory: dir, all: true });
    expect(all.ok).toBe(false);
    expect(all.files.filter((f) => f.problems.length > 0).map((f) => f.file)).toEqual([TL1[0]]);
    // --all rewrites the mark to what it verified: nothing before the damaged oldest segment.
    expect(await readWatermark(new DirectoryReader(dir))).toBeNull();
    expect((await verifyArchive({ directory: dir })).files.map((f) => f.file)[0]).toBe(TL1[0]);
  });

  it('checks a prev-link across the mark: a segment swapped for another cluster\'s after the mark fails', async () => {
    const dir = tempDir();
    copy(dir, TL1.slice(0, 2));
    expect((await verifyArchive({ directory: dir })).ok).toBe(true);
    // Segment 9 with its records' prev-links broken at its first complete record: patch the
    // watermark's last record LSN instead, as if segment 8 had ended with another record.
    const mark = JSON.parse(readFileSync(path.join(dir, WATERMARK_FILE), 'utf8'));
    mark.lastRecordLsn = '0/8FFF00';
    mark.crossingRecord = null;
    writeFileSync(path.join(dir, WATERMARK_FILE), JSON.stringify(mark));
    copy(dir, [TL1[2]!]);
    const result = await verifyArchive({ directory: dir });
    expect(result.files.flatMap((f) => f.problems).join('\n')).toMatch(/continues a record, but the previous record ended|prev-link 0\/[0-9A-F]+, the record before it is at 0\/8FFF00/);
  });

  it('--from starts at a segment and leaves the watermark alone', async () => {
    const dir = tempDir();
    copy(dir, TL1);
    const result = await verifyArchive({ directory: dir, from: TL1[1] });
    expect(result.files.map((f) => f.file)).toEqual(TL1.slice(1));
    expect(result.ok).toBe(true);
    expect(readdirSync(dir)).not.toContain(WATERMARK_FILE);
    await expect(verifyArchive({ directory: dir, from: 'nonsense' })).rejects.toThrow(/--from "nonsense" is not a WAL segment name/);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('CRC-32C', () => {
  it('gives the standard check value, continues across pieces, and the table agrees with the native one', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32cTs(Buffer.from('123456789'))).toBe(0xe3069283);
    const data = randomBytes(100_000);
    const whole = crc32cTs(data);
    expect(crc32c(data)).toBe(whole);
    for (const cut of [1, 7, 383, 384, 5000, 99_999]) expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(whole);
    expect(['native', 'ts']).toContain(crc32cImplementation);
  });
});
