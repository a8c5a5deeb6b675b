import { describe, expect, it } from 'vitest';
import {
  formatLsn, historyFileName, isValidSegmentSize, parseLsn, parseSegmentFileName, parseSizeSetting,
  segmentFileName, segmentNumber, segmentOffset, segmentStart, walFileName,
} from '../../src/lsn.js';

const MB = 1 << 20;

describe('LSN text', () => {
  it('parses and formats as PostgreSQL prints', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(formatLsn(0x16b374d848n)).toBe('16/B374D848');
    expect(formatLsn(0n)).toBe('0/0');
    expect(parseLsn('0/3000060')).toBe(0x3000060n);
    expect(parseLsn('ffffffff/ffffffff')).toBe(0xffffffffffffffffn);
    expect(formatLsn(0xffffffffffffffffn)).toBe('FFFFFFFF/FFFFFFFF');
  });
  it.each(['', '0', '0/', '/0', '1/2/3', 'G/0', '123456789/0', '0x1/0', '-1/0', '1 /0'])('rejects %j', (text) => {
    expect(() => parseLsn(text)).toThrow(/invalid LSN/);
  });
  it('round-trips', () => {
    for (const lsn of [1n, 0xffffffffn, 0x100000000n, 0x123456789abcdefn]) expect(parseLsn(formatLsn(lsn))).toBe(lsn);
  });
});

describe('segments and file names', () => {
  it('names segments like XLogFileName for 16 MB and 1 MB', () => {
    expect(walFileName(1, 0x16b374d848n, 16 * MB)).toBe('0000000100000016000000B3');
    expect(walFileName(1, 0x3000060n, 16 * MB)).toBe('000000010000000000000003');
    // 1 MB segments: 4096 per xlogid
    expect(walFileName(1, 0x3000060n, MB)).toBe('000000010000000000000030');
    expect(walFileName(2, 0x1_00000000n + 5n * BigInt(MB), MB)).toBe('000000020000000100000005');
    expect(walFileName(0x1f, 0xffffffff_ffffffffn, 1 << 30)).toBe('0000001FFFFFFFFF00000003');
  });
  it('offsets and starts', () => {
    expect(segmentNumber(0x3000060n, 16 * MB)).toBe(3n);
    expect(segmentOffset(0x3000060n, 16 * MB)).toBe(0x60);
    expect(segmentStart(0x3000060n, 16 * MB)).toBe(0x3000000n);
    expect(segmentStart(0x3000000n, 16 * MB)).toBe(0x3000000n);
  });
  it('parses names back', () => {
    expect(parseSegmentFileName('000000020000000100000005', MB)).toEqual({ timeline: 2, segno: 4096n + 5n });
    expect(parseSegmentFileName('0000000100000016000000B3', 16 * MB)).toEqual({ timeline: 1, segno: 0x16n * 256n + 0xb3n });
    expect(parseSegmentFileName('000000010000000000000100', 16 * MB)).toBeNull(); // 256 > 255 per xlogid
    expect(parseSegmentFileName('00000002.history', MB)).toBeNull();
    expect(parseSegmentFileName('000000010000000000000003.partial', MB)).toBeNull();
    expect(parseSegmentFileName('00000001000000000000000a', MB)).toBeNull();
    for (const segno of [0n, 1n, 4095n, 4096n, 123456n]) {
      expect(parseSegmentFileName(segmentFileName(3, segno, MB), MB)).toEqual({ timeline: 3, segno });
    }
  });
  it('history names', () => {
    expect(historyFileName(2)).toBe('00000002.history');
    expect(historyFileName(0x1a)).toBe('0000001A.history');
  });
  it('segment sizes', () => {
    expect(isValidSegmentSize(MB)).toBe(true);
    expect(isValidSegmentSize(1 << 30)).toBe(true);
    expect(isValidSegmentSize(1 << 19)).toBe(false);
    expect(isValidSegmentSize(3 * MB)).toBe(false);
    expect(isValidSegmentSize(2 ** 31)).toBe(false);
    expect(parseSizeSetting('16MB')).toBe(16 * MB);
    expect(parseSizeSetting('1GB')).toBe(1 << 30);
    expect(parseSizeSetting('1024kB')).toBe(MB);
    expect(() => parseSizeSetting('lots')).toThrow(/wal_segment_size/);
  });
});
