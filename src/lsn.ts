/**
 * LSNs as bigint, and the WAL file-name arithmetic that goes with them.
 * Mirrors PostgreSQL's access/xlog_internal.h (XLogFileName, XLByteToSeg, XLogSegmentOffset).
 */
import { WalstreamError } from './errors.js';

/** Parse PostgreSQL's `X/X` notation ("16/B374D848") into a bigint; throws WalstreamError('BAD_LSN') otherwise. */
export function parseLsn(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!match) {
    throw new WalstreamError('BAD_LSN', `invalid LSN "${text}": expected two hexadecimal numbers like 0/3000060`);
  }
  return (BigInt('0x' + match[1]) << 32n) | BigInt('0x' + match[2]);
}

/** Format an LSN as PostgreSQL prints it: uppercase hex, no padding ("16/B374D848"). */
export function formatLsn(lsn: bigint): string {
  const hi = Number(lsn >> 32n);
  const lo = Number(lsn & 0xffffffffn);
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

/** True when `size` is a segment size PostgreSQL accepts: a power of two from 1 MB to 1 GB. */
export function isValidSegmentSize(size: number): boolean {
  return Number.isInteger(size) && size >= 1 << 20 && size <= 1 << 30 && (size & (size - 1)) === 0;
}

/** Segment number holding `lsn` (XLByteToSeg). */
export function segmentNumber(lsn: bigint, segmentSize: number): bigint {
  return lsn / BigInt(segmentSize);
}

/** Offset of `lsn` within its segment (XLogSegmentOffset). */
export function segmentOffset(lsn: bigint, segmentSize: number): number {
  return Number(lsn % BigInt(segmentSize));
}

/** First LSN of the segment holding `lsn`. */
export function segmentStart(lsn: bigint, segmentSize: number): bigint {
  return lsn - (lsn % BigInt(segmentSize));
}

/** Segments per "xlogid" (4 GB of WAL): the divisor in file names (XLogSegmentsPerXLogId). */
function segmentsPerXLogId(segmentSize: number): bigint {
  return 0x100000000n / BigInt(segmentSize);
}

function hex8(value: bigint | number): string {
  return value.toString(16).toUpperCase().padStart(8, '0');
}

/** File name of segment `segno` on `timeline` (XLogFileName): TTTTTTTTXXXXXXXXYYYYYYYY. */
export function segmentFileName(timeline: number, segno: bigint, segmentSize: number): string {
  const perId = segmentsPerXLogId(segmentSize);
  return hex8(timeline) + hex8(segno / perId) + hex8(segno % perId);
}

/** File name of the segment holding `lsn` on `timeline`: walFileName(1, 0x16B374D848n, 16 MB) → '0000000100000016000000B3'. */
export function walFileName(timeline: number, lsn: bigint, segmentSize: number): string {
  return segmentFileName(timeline, segmentNumber(lsn, segmentSize), segmentSize);
}

/** Name of the history file of `timeline` (TLHistoryFileName): '00000002.history'. */
export function historyFileName(timeline: number): string {
  return hex8(timeline) + '.history';
}

/** A parsed segment file name. */
export interface SegmentName {
  timeline: number;
  segno: bigint;
}

const SEGMENT_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;

/** Parse a 24-hex-digit segment name; null for anything else (history files, .partial, junk). */
export function parseSegmentFileName(name: string, segmentSize: number): SegmentName | null {
  const match = SEGMENT_NAME.exec(name);
  if (!match) return null;
  const perId = segmentsPerXLogId(segmentSize);
  const low = BigInt('0x' + match[3]);
  if (low >= perId) return null;
  return { timeline: parseInt(match[1], 16), segno: BigInt('0x' + match[2]) * perId + low };
}

/** Parse a size as `SHOW wal_segment_size` prints it ("16MB", "1GB", "1024kB") into bytes. */
export function parseSizeSetting(text: string): number {
  const match = /^(\d+)\s*(B|kB|MB|GB|TB)?$/.exec(text.trim());
  if (!match) throw new WalstreamError('BAD_SEGMENT_SIZE', `unrecognised wal_segment_size "${text}"`);
  const unit = { B: 1, kB: 1024, MB: 1 << 20, GB: 1 << 30, TB: 2 ** 40 }[match[2] ?? 'B']!;
  return Number(match[1]) * unit;
}
