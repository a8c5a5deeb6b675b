import { describe, expect, it } from 'vitest';
import { PageHeaderChecker } from '../../src/page-check.js';

const MB = 1 << 20;
const BLOCK = 8192;
const SYSTEM = 7300000000000000001n;

/** `pages` WAL pages starting at segment-aligned `start`: valid headers (magic 0xD110), filler after them. */
function walPages(start: bigint, pages: number, fields: { timeline?: number; badAddressAt?: number; magicAt?: [number, number] } = {}): Buffer {
  const buf = Buffer.alloc(pages * BLOCK, 0x5a);
  for (let i = 0; i < pages; i++) {
    const lsn = start + BigInt(i * BLOCK);
    const page = buf.subarray(i * BLOCK);
    const long = lsn % BigInt(MB) === 0n;
    page.writeUInt16LE(fields.magicAt?.[0] === i ? fields.magicAt[1] : 0xd110, 0);
    page.writeUInt16LE(long ? 0x0002 : 0, 2);
    page.writeUInt32LE(fields.timeline ?? 1, 4);
    page.writeBigUInt64LE(fields.badAddressAt === i ? lsn + 1n : lsn, 8);
    if (long) {
      page.writeBigUInt64LE(SYSTEM, 24);
      page.writeUInt32LE(MB, 32);
      page.writeUInt32LE(BLOCK, 36);
    }
  }
  return buf;
}

const checker = (timeline = 1) => new PageHeaderChecker({ segmentSize: MB, timeline, systemId: SYSTEM.toString() });

/** Feed `data` at `lsn` cut at `cuts`; the first problem, or null. */
function feed(c: PageHeaderChecker, lsn: bigint, data: Buffer, cuts: number[] = []): string | null {
  let at = 0;
  for (const cut of [...cuts.filter((x) => x > 0 && x < data.length).sort((a, b) => a - b), data.length]) {
    const problem = c.check(lsn + BigInt(at), data.subarray(at, cut));
    if (problem) return problem;
    at = cut;
  }
  return null;
}

describe('PageHeaderChecker', () => {
  const start = 3n * BigInt(MB);
  it('accepts real-shaped WAL across a segment boundary, however it is split (headers cut in two included)', () => {
    const wal = walPages(start, 128 + 3); // the whole segment 3 and three pages of segment 4
    expect(feed(checker(), start, wal)).toBeNull();
    for (let seed = 1; seed < 200; seed++) {
      const cuts = Array.from({ length: 12 }, (_, i) => ((seed * 7919 + i * 104729) % wal.length));
      cuts.push(BLOCK * 5 + 3, BLOCK * 128 + 17); // inside a short header and inside the long one
      expect(feed(checker(), start, wal, cuts), `seed ${seed}`).toBeNull();
    }
  });
  it('refuses random bytes and zeros where a page header must be', () => {
    expect(feed(checker(), start, Buffer.alloc(3 * BLOCK))).toMatch(/WAL page at 0\/300000 has magic 0x0000: not WAL/);
    const random = Buffer.from(Array.from({ length: 2 * BLOCK }, (_, i) => (i * 2654435761) >>> 24));
    expect(feed(checker(), start, random)).toMatch(/not WAL/);
  });
  it('names a page that claims another address, a later timeline, or another magic', () => {
    expect(feed(checker(), start, walPages(start, 8, { badAddressAt: 5 }))).toMatch(/WAL page at 0\/30A000 says it is the page at 0\/30A001/);
    expect(feed(checker(1), start, walPages(start, 2, { timeline: 2 }))).toMatch(/timeline 2, streaming timeline 1/);
    expect(feed(checker(), start, walPages(start, 4, { magicAt: [2, 0xd106] }))).toMatch(/magic 0xd106, earlier pages 0xd110/);
  });
  it('checks the long header against the server: system identifier, segment size', () => {
    const other = walPages(start, 1);
    other.writeBigUInt64LE(SYSTEM + 1n, 24);
    expect(feed(checker(), start, other)).toMatch(/belongs to database system 7300000000000000002/);
    const size = walPages(start, 1);
    size.writeUInt32LE(16 * MB, 32);
    expect(feed(checker(), start, size)).toMatch(/segment size 16777216/);
  });
  it('allows zero-filled pages after a valid page up to the segment end (after pg_switch_wal), nowhere else', () => {
    const switched = Buffer.concat([walPages(start, 3), Buffer.alloc((128 - 3) * BLOCK), walPages(start + BigInt(MB), 2)]);
    expect(feed(checker(), start, switched, [3 * BLOCK + 5, 100 * BLOCK + 7])).toBeNull();
    const resumed = Buffer.concat([walPages(start, 3), Buffer.alloc(2 * BLOCK), walPages(start + BigInt(5 * BLOCK), 1)]);
    expect(feed(checker(), start, resumed)).toMatch(/WAL page at 0\/30A000 follows zero-filled pages of its segment/);
    expect(feed(checker(), start, Buffer.alloc(BLOCK))).toMatch(/not WAL/); // a segment cannot start zero-filled
  });
  it('allows pages of an earlier timeline before the switch (a new timeline\'s first segment)', () => {
    const wal = Buffer.concat([walPages(start, 2, { timeline: 1 }), walPages(start + BigInt(2 * BLOCK), 2, { timeline: 2 })]);
    expect(feed(checker(2), start, wal)).toBeNull();
    const down = Buffer.concat([walPages(start, 2, { timeline: 2 }), walPages(start + BigInt(2 * BLOCK), 2, { timeline: 1 })]);
    expect(feed(checker(2), start, down)).toMatch(/timeline 1, after a page of timeline 2/);
  });
});
