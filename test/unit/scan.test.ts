import { describe, expect, it } from 'vitest';
import { decodeLongPageHeader, findResumePoint, parseArchivedName } from '../../src/archive/scan.js';

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
