/**
 * cleanup and status over any ArchiveReader (the interface a directory and a bucket both implement):
 * an in-memory archive must give the same answers as a directory holding the same files, and the
 * reader's own faults (an unreachable archive, a refused delete) surface as one-line WalstreamErrors.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readArchiveReport } from '../../src/archive/archive-status.js';
import { cleanupArchive } from '../../src/archive/cleanup.js';
import { gapMarkerName } from '../../src/archive/gaps.js';
import type { ArchiveEntry, ArchiveReader } from '../../src/archive/reader.js';
import { WalstreamError } from '../../src/errors.js';
import { segmentFileName } from '../../src/lsn.js';
import { useTempDirs } from './temp-dirs.js';

const MB = 1024 * 1024;
const tempDir = useTempDirs('walstream-reader-');

/** Files held in memory, as a bucket would hold them; records what was asked of it. */
class MemoryArchive implements ArchiveReader {
  readonly removed: string[] = [];
  readonly reads: { name: string; length?: number }[] = [];
  failRemove: string | null = null;
  unreachable = false;
  constructor(readonly files: Map<string, { data: Buffer; modifiedMs: number }>) {}
  describe(): string {
    return 'mem://archive';
  }
  locate(name: string): string {
    return `mem://archive/${name}`;
  }
  async check(): Promise<void> {
    if (this.unreachable) throw new WalstreamError('ARCHIVE_MISSING', 'could not reach mem://archive/: down; check it');
  }
  async entries(): Promise<ArchiveEntry[]> {
    return [...this.files].map(([name, f]) => ({ name, size: f.data.length, modifiedMs: f.modifiedMs }));
  }
  async openRead(name: string, length?: number): Promise<Readable | null> {
    this.reads.push({ name, length });
    const f = this.files.get(name);
    return f ? Readable.from([length === undefined ? f.data : f.data.subarray(0, length)]) : null;
  }
  async read(name: string): Promise<Buffer | null> {
    return this.files.get(name)?.data ?? null;
  }
  async remove(name: string): Promise<void> {
    if (name === this.failRemove) throw new WalstreamError('ARCHIVE_IO', `could not delete ${this.locate(name)}: AccessDenied (HTTP 403)`);
    this.files.delete(name);
    this.removed.push(name);
  }
}

/** A 1 MB segment's bytes: a long page header (PostgreSQL 15's magic), zeros after it. */
function segment(timeline: number, segno: number): Buffer {
  const data = Buffer.alloc(MB);
  data.writeUInt16LE(0xd110, 0);
  data.writeUInt16LE(0x0002 | 0x0004, 2);
  data.writeUInt32LE(timeline, 4);
  data.writeBigUInt64LE(BigInt(segno) * BigInt(MB), 8);
  data.writeBigUInt64LE(7312345678901234567n, 24);
  data.writeUInt32LE(MB, 32);
  data.writeUInt32LE(8192, 36);
  return data;
}

/** The same files in a directory and in memory (times from the directory's files, as an upload would differ). */
function twin(files: Record<string, Buffer | string>): { dir: string; mem: MemoryArchive } {
  const dir = tempDir();
  const mem = new Map<string, { data: Buffer; modifiedMs: number }>();
  let t = Date.now() - 3_600_000;
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(path.join(dir, name), content);
    mem.set(name, { data: Buffer.from(content), modifiedMs: (t += 1000) });
  }
  return { dir, mem: new MemoryArchive(mem) };
}

const NAMES = [
  '000000010000000000000001', '000000010000000000000002.partial', '000000010000000000000003.gz', '000000010000000000000002.00000028.backup',
  '00000002.history', '000000020000000000000004', '000000020000000000000005.partial.gz', 'README', '0000000100000000000000ab',
];

describe('cleanupArchive over an ArchiveReader', () => {
  it.each([
    { oldestKept: '000000020000000000000004' },
    { oldestKept: '000000020000000000000006', extension: '.gz' },
    { oldestKept: '000000010000000000000002.00000028.backup' },
  ])('removes what it removes from a directory of the same names (%j)', async (opts) => {
    const { dir, mem } = twin(Object.fromEntries(NAMES.map((n) => [n, n])));
    const fromDir = await cleanupArchive({ archiveDir: dir, ...opts });
    const fromMem = await cleanupArchive({ archive: mem, ...opts });
    expect(fromMem).toEqual(fromDir);
    expect(fromMem.length).toBeGreaterThan(0);
    expect(mem.removed.sort()).toEqual(fromDir);
    expect(await cleanupArchive({ archive: mem, ...opts, dryRun: true })).toEqual([]);
  });

  it('--dry-run asks the archive to remove nothing', async () => {
    const { mem } = twin(Object.fromEntries(NAMES.map((n) => [n, n])));
    expect(await cleanupArchive({ archive: mem, oldestKept: '0000000300000001000000FF', dryRun: true })).toHaveLength(3);
    expect(mem.removed).toEqual([]);
    expect(mem.files.size).toBe(NAMES.length);
  });

  it('an unreachable archive before a bad name; a refused delete stops there, in one line', async () => {
    const { mem } = twin(Object.fromEntries(NAMES.map((n) => [n, n])));
    mem.unreachable = true;
    await expect(cleanupArchive({ archive: mem, oldestKept: 'junk' })).rejects.toMatchObject({ code: 'ARCHIVE_MISSING' });
    mem.unreachable = false;
    await expect(cleanupArchive({ archive: mem, oldestKept: 'junk' })).rejects.toMatchObject({ code: 'BAD_OPTION' });
    mem.failRemove = '000000010000000000000002.partial';
    const err = await cleanupArchive({ archive: mem, oldestKept: '0000000300000001000000FF' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ARCHIVE_IO' });
    expect((err as Error).message).toBe('could not delete mem://archive/000000010000000000000002.partial: AccessDenied (HTTP 403); ' +
      'check that the archive lets you remove it (for a bucket: s3:DeleteObject), then run cleanup again');
    expect(mem.removed).toEqual(['000000010000000000000001']); // in name order, stopped at the failure
  });

  it('without an archive: BAD_OPTION', async () => {
    await expect(cleanupArchive({ oldestKept: '000000010000000000000001' })).rejects.toMatchObject({ code: 'BAD_OPTION' });
  });
});

describe('readArchiveReport over an ArchiveReader', () => {
  const files = () => ({
    [segmentFileName(1, 1n, MB)]: segment(1, 1),
    [segmentFileName(1, 2n, MB)]: segment(1, 2),
    [segmentFileName(1, 4n, MB)]: segment(1, 4),
    [`${segmentFileName(1, 5n, MB)}.partial`]: segment(1, 5),
    [`${segmentFileName(1, 3n, MB)}.damaged`]: 'set aside',
    [gapMarkerName(1, 3n * BigInt(MB), 4n * BigInt(MB))]: '',
    '00000002.history': '1\t0/5000000\tno recovery target specified\n',
  });

  it('gives the directory\'s report, with times from the entries and only a header read per segment tried', async () => {
    const { dir, mem } = twin(files());
    const fromDir = await readArchiveReport(dir);
    const fromMem = await readArchiveReport(mem);
    const strip = (r: typeof fromDir) => ({ ...r, directory: '', lastWriteMs: 0, newest: r.newest && { ...r.newest, mtimeMs: 0 }, partials: r.partials.map((p) => ({ ...p, mtimeMs: 0 })) });
    expect(strip(fromMem)).toEqual(strip(fromDir));
    expect(fromMem).toMatchObject({ directory: 'mem://archive', segmentSize: MB, segmentSizeKnown: true, systemId: '7312345678901234567', segments: 3, setAside: [`${segmentFileName(1, 3n, MB)}.damaged`] });
    expect(fromMem.gaps).toHaveLength(1);
    expect(fromMem.gaps[0]!.marker?.fileName).toBe(gapMarkerName(1, 3n * BigInt(MB), 4n * BigInt(MB)));
    // Times are the archive's: the newest segment's and the newer .partial's modifiedMs.
    expect(fromMem.newest!.mtimeMs).toBe(mem.files.get(segmentFileName(1, 4n, MB))!.modifiedMs);
    expect(fromMem.lastWriteMs).toBe(mem.files.get(`${segmentFileName(1, 5n, MB)}.partial`)!.modifiedMs);
    expect(mem.reads.length).toBeGreaterThan(0);
    for (const r of mem.reads) expect(r.length).toBeLessThanOrEqual(64);
  });

  it('rejects when the archive cannot be reached', async () => {
    const { mem } = twin(files());
    mem.unreachable = true;
    await expect(readArchiveReport(mem)).rejects.toMatchObject({ code: 'ARCHIVE_MISSING' });
  });
});
