/**
 * verifyArchive on real WAL (fixtures/wal, made by scripts/make-wal-fixtures.mjs from PostgreSQL 15:
 * timeline 1's segments 7, 8 (with an XLOG_SWITCH), 9 and 0A.partial, timeline 2's 0A after a
 * promotion, 00000002.history) with no server: the intact archive passes with pg_waldump's record
 * counts; each kind of damage fails naming the file.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyArchive } from '../../src/walfile/verify-archive.js';
import { useTempDirs } from './temp-dirs.js';

const fixtures = fileURLToPath(new URL('../../fixtures/wal/', import.meta.url));
const waldump = JSON.parse(readFileSync(path.join(fixtures, 'waldump.json'), 'utf8')) as { records: Record<string, number>; total: number; systemId: string; switchPoint: string };
const tempDir = useTempDirs('walstream-verify-');

/** A copy of the fixture archive (no watermark). */
function archive(): string {
  const dir = tempDir();
  for (const name of readdirSync(fixtures)) if (/^[0-9A-F]{8}/.test(name)) copyFileSync(path.join(fixtures, name), path.join(dir, name));
  return dir;
}

/** Every problem as "FILE: problem". */
function problems(result: Awaited<ReturnType<typeof verifyArchive>>): string[] {
  return result.files.flatMap((f) => f.problems.map((p) => `${f.file}: ${p}`));
}

function patch(dir: string, name: string, offset: number, edit: (b: Buffer) => void): void {
  const file = path.join(dir, name);
  const bytes = readFileSync(file);
  edit(bytes.subarray(offset));
  writeFileSync(file, bytes);
}

describe('verifyArchive on the fixtures', () => {
  it('passes the intact archive across the timeline switch, with pg_waldump\'s record count per file', async () => {
    const result = await verifyArchive({ directory: archive(), writeWatermark: false });
    expect(problems(result)).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.segments).toBe(5);
    expect(result.systemId).toBe(waldump.systemId);
    expect(Object.fromEntries(result.files.map((f) => [f.file, f.records]))).toEqual(waldump.records);
    expect(result.records).toBe(waldump.total);
    expect(result.bytes).toBe(5 * 1048576);
  });

  it('fails a flipped byte inside a record, naming the segment and the record', async () => {
    const dir = archive();
    // Inside timeline 1's segment 9, well past its first page: some record's data or header.
    patch(dir, '000000010000000000000009', 300_001, (b) => { b[0] ^= 0x10; });
    const result = await verifyArchive({ directory: dir, writeWatermark: false });
    expect(result.ok).toBe(false);
    const found = problems(result);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^000000010000000000000009: record at 0\/94[0-9A-F]{4} .*(CRC-32C|prev-link|length)/);
  });

  it('fails a flipped bit anywhere across a page of records (28 places), naming the segment each time', async () => {
    for (let offset = 3 * 8192 + 24; offset < 4 * 8192; offset += 8 * 37) {
      const dir = archive();
      patch(dir, '000000010000000000000007', offset, (b) => { b[0] ^= 0x01; });
      const result = await verifyArchive({ directory: dir, writeWatermark: false });
      expect(problems(result)[0], `offset ${offset}`).toMatch(/^000000010000000000000007: record at 0\/70[0-9A-F]{4} /);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails a deleted middle segment, naming the gap', async () => {
    const dir = archive();
    rmSync(path.join(dir, '000000010000000000000008'));
    const result = await verifyArchive({ directory: dir, writeWatermark: false });
    expect(problems(result)).toEqual(['000000010000000000000009: gap: segment 000000010000000000000008 before it is missing']);
  });

  it('fails a history file whose switch point is wrong: earlier, later, or a few bytes off', async () => {
    for (const point of ['0/A0F2D0', '0/9F0000', '0/B00010']) {
      const dir = archive();
      writeFileSync(path.join(dir, '00000002.history'), `1\t${point}\tno recovery target specified\n`);
      const result = await verifyArchive({ directory: dir, writeWatermark: false });
      expect(result.ok, point).toBe(false);
      expect(problems(result).join('\n'), point).toMatch(/0000000[12]000000000000000[9A](\.partial)?: .*(switch point|history)/);
    }
  });

  it('fails a segment from another cluster (another system identifier in its long header)', async () => {
    const dir = archive();
    patch(dir, '000000010000000000000008', 24, (b) => { b.writeBigUInt64LE(b.readBigUInt64LE(0) + 1n); });
    const result = await verifyArchive({ directory: dir, writeWatermark: false });
    expect(problems(result)[0]).toMatch(/^000000010000000000000008: belongs to database system \d+, the archive's is \d+/);
  });

  it('fails a missing history file for timeline 2, and a truncated complete segment', async () => {
    const dir = archive();
    rmSync(path.join(dir, '00000002.history'));
    const r1 = await verifyArchive({ directory: dir, writeWatermark: false });
    expect(problems(r1).join('\n')).toMatch(/00000002000000000000000A: timeline 2 has no history file 00000002.history/);
    const dir2 = archive();
    writeFileSync(path.join(dir2, '000000010000000000000009'), readFileSync(path.join(dir2, '000000010000000000000009')).subarray(0, 500_000));
    const r2 = await verifyArchive({ directory: dir2, writeWatermark: false });
    expect(problems(r2)).toEqual(['000000010000000000000009: is 500000 bytes, not the segment size 1048576']);
  });

  it('skips the newest timeline\'s .partial (the segment being written)', async () => {
    const dir = archive();
    copyFileSync(path.join(dir, '00000002000000000000000A'), path.join(dir, '00000002000000000000000B.partial'));
    const result = await verifyArchive({ directory: dir, writeWatermark: false });
    expect(result.ok).toBe(true);
    expect(result.skipped).toEqual([{ file: '00000002000000000000000B.partial', reason: 'the segment being written (a .partial of the newest timeline)' }]);
  });
});
