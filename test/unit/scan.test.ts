import { describe, expect, it } from 'vitest';
import { decodeLongPageHeader, findResumePoint, newestCompleteSegment, parseArchivedName, segmentFileProblem } from '../../src/archive/scan.js';

const MB = 1 << 20;

describe('findResumePoint (pg_receivewal\'s FindStreamingStart)', () => {
  it('is null for an empty archive or one without segments', () => {
    expect(findResumePoint([], MB)).toBeNull();
    expect(findResumePoint(['00000002.history', 'README', 'x.tmp'], MB)).toBeNull();
  });
  it('starts after the newest complete segment', () => {
    const r = findResumePoint(['000000010000000000000003', '000000010000000000000005', '000000010000000000000004'], MB);
    expect(r).toMatchObject({ startLsn: 6n * BigInt(MB), timeline: 1 });
    expect(r!.from.fileName).toBe('000000010000000000000005');
  });
  it('restarts at the start of a .partial segment', () => {
    const r = findResumePoint(['000000010000000000000005', '000000010000000000000006.partial'], MB);
    expect(r).toMatchObject({ startLsn: 6n * BigInt(MB), timeline: 1 });
  });
  it('prefers a complete segment over a .partial of the same number', () => {
    expect(findResumePoint(['000000010000000000000006.partial', '000000010000000000000006'], MB)).toMatchObject({ startLsn: 7n * BigInt(MB) });
  });
  it('picks the higher timeline for the same segment, and the higher segment over the higher timeline', () => {
    expect(findResumePoint(['000000010000000000000007.partial', '000000020000000000000007.partial', '00000002.history'], MB))
      .toMatchObject({ startLsn: 7n * BigInt(MB), timeline: 2 });
    expect(findResumePoint(['000000020000000000000007', '000000010000000000000009'], MB)).toMatchObject({ startLsn: 10n * BigInt(MB), timeline: 1 });
  });
  it('uses the segment size for names (16 MB: 256 per xlogid; 1 MB: 4096)', () => {
    expect(findResumePoint(['0000000100000001000000FF'], 16 * MB)).toMatchObject({ startLsn: 0x2_00000000n });
    expect(findResumePoint(['000000010000000100000FFF'], MB)).toMatchObject({ startLsn: 0x2_00000000n });
    // a name impossible at this size is not a segment
    expect(findResumePoint(['000000010000000000000100'], 16 * MB)).toBeNull();
  });
  it('counts compressed segments as archived', () => {
    expect(findResumePoint(['000000010000000000000005', '000000010000000000000006.gz'], MB)).toMatchObject({ startLsn: 7n * BigInt(MB) });
    expect(parseArchivedName('000000010000000000000006.partial.gz', MB)).toMatchObject({ partial: true, segno: 6n });
  });
});

describe('findResumePoint: never past WAL that is not durably archived', () => {
  it('resumes at an unfinished .partial below the newest segment on the same timeline (a completion that failed, e.g. disk full)', () => {
    const r = findResumePoint(['0000000100000000000002E2', '0000000100000000000002E3.partial', '0000000100000000000002E4.partial'], MB);
    expect(r).toMatchObject({ startLsn: 0x2e3n * BigInt(MB), timeline: 1 });
    expect(r!.from.fileName).toBe('0000000100000000000002E3.partial');
    // the later segment completed before the earlier one failed
    expect(findResumePoint(['0000000100000000000002E3.partial', '0000000100000000000002E4'], MB)).toMatchObject({ startLsn: 0x2e3n * BigInt(MB) });
  });
  it('leaves an older timeline\'s last .partial alone (a timeline switch keeps it by design)', () => {
    expect(findResumePoint(['000000010000000000000007.partial', '00000002.history', '000000020000000000000007', '000000020000000000000008.partial'], MB))
      .toMatchObject({ startLsn: 8n * BigInt(MB), timeline: 2 });
  });
  it('treats set-aside segments as not archived', () => {
    expect(findResumePoint(['00000001000000000000011E'], MB, ['00000001000000000000011F'])).toMatchObject({ startLsn: 0x11fn * BigInt(MB), timeline: 1 });
    expect(findResumePoint(['00000001000000000000011E', '00000001000000000000011F', '000000010000000000000120.partial'], MB, ['00000001000000000000011F']))
      .toMatchObject({ startLsn: 0x11fn * BigInt(MB) });
    expect(findResumePoint([], MB, ['00000001000000000000011F'])).toMatchObject({ startLsn: 0x11fn * BigInt(MB) });
  });
  it('does not take set-aside or lock files for segments', () => {
    expect(findResumePoint(['00000001000000000000011E', '00000001000000000000011F.damaged', '000000010000000000000120.partial.before-gap', 'walstream.lock'], MB))
      .toMatchObject({ startLsn: 0x11fn * BigInt(MB) });
  });
});

describe('segmentFileProblem: is the newest complete segment whole?', () => {
  const segment = newestCompleteSegment(['00000002000000000000011E', '00000002000000000000011F', '000000020000000000000120.partial', '00000002000000000000011D.gz'], MB)!;
  const header = (fields: { magic?: number; timeline?: number; address?: bigint; size?: number } = {}) => {
    const head = Buffer.alloc(40);
    head.writeUInt16LE(fields.magic ?? 0xd110, 0);
    head.writeUInt16LE(0x0002, 2);
    head.writeUInt32LE(fields.timeline ?? 2, 4);
    head.writeBigUInt64LE(fields.address ?? 0x11fn * BigInt(MB), 8);
    head.writeBigUInt64LE(7300000000000000001n, 24);
    head.writeUInt32LE(fields.size ?? MB, 32);
    head.writeUInt32LE(8192, 36);
    return head;
  };
  it('picks the newest complete, uncompressed segment', () => {
    expect(segment.fileName).toBe('00000002000000000000011F');
    expect(newestCompleteSegment(['000000010000000000000001.partial'], MB)).toBeNull();
  });
  it('accepts a whole segment', () => {
    expect(segmentFileProblem(segment, MB, header(), MB)).toBeNull();
  });
  it('names each way a segment can be damaged', () => {
    expect(segmentFileProblem(segment, 0, null, MB)).toBe(`is 0 bytes, not ${MB}`);
    expect(segmentFileProblem(segment, 300_000, header(), MB)).toBe(`is 300000 bytes, not ${MB}`);
    expect(segmentFileProblem(segment, MB, Buffer.alloc(40), MB)).toMatch(/long page header/);
    expect(segmentFileProblem(segment, MB, header({ magic: 0x1234 }), MB)).toMatch(/magic 0x1234/);
    expect(segmentFileProblem(segment, MB, header({ timeline: 3 }), MB)).toMatch(/timeline 3 in its first page, 2 in its name/);
    // A new timeline's first segment is a copy of the old one up to the switch: its first page keeps timeline 1.
    expect(segmentFileProblem(segment, MB, header({ timeline: 1 }), MB)).toBeNull();
    expect(segmentFileProblem(segment, MB, header({ address: 0x11en * BigInt(MB) }), MB)).toMatch(/page address 11E00000.*expected 11F00000/);
    expect(segmentFileProblem(segment, MB, header({ size: 16 * MB }), MB)).toMatch(/segment size 16777216/);
  });
});

describe('decodeLongPageHeader', () => {
  it('reads the fields of XLogLongPageHeaderData (little-endian)', () => {
    const head = Buffer.alloc(40);
    head.writeUInt16LE(0xd110, 0); // PG 15's XLOG_PAGE_MAGIC
    head.writeUInt16LE(0x0002 | 0x0004, 2); // XLP_LONG_HEADER | XLP_BKP_REMOVABLE
    head.writeUInt32LE(2, 4);
    head.writeBigUInt64LE(0x3000000n, 8);
    head.writeBigUInt64LE(7300000000000000001n, 24);
    head.writeUInt32LE(MB, 32);
    head.writeUInt32LE(8192, 36);
    expect(decodeLongPageHeader(head)).toEqual({ magic: 0xd110, timeline: 2, pageAddress: 0x3000000n, systemId: '7300000000000000001', segmentSize: MB, blockSize: 8192 });
  });
  it('is null for zeros (a fresh .partial) and for short input', () => {
    expect(decodeLongPageHeader(Buffer.alloc(40))).toBeNull();
    expect(decodeLongPageHeader(Buffer.alloc(20, 0xff))).toBeNull();
  });
});
