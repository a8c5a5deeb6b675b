/**
 * Checks WAL page headers as the bytes stream past, so a segment whose pages are not WAL (random
 * bytes, zeros, another cluster's) is never renamed complete. Mirrors the header checks of
 * XLogReaderValidatePageHeader (src/backend/access/transam/xlogreader.c): magic, page address,
 * timeline never going down, and in a segment's long header the system identifier and segment size;
 * zero-filled pages only where the server leaves them, after an XLOG_SWITCH to the segment's end.
 * Pure: no I/O; a page header split across pieces is carried over.
 */
import { formatLsn } from './lsn.js';

/** XLogPageHeaderData up to xlp_pageaddr (magic, info, tli, pageaddr): the fields checked on every page. */
const SHORT_CHECKED = 16;
/** XLogLongPageHeaderData up to xlp_xlog_blcksz. */
const LONG_CHECKED = 40;
/** xlp_info bit of a long header (access/xlog_internal.h). */
const XLP_LONG_HEADER = 0x0002;
/** Whether `magic` is an XLOG_PAGE_MAGIC: every release's is 0xD1xx (0xD106 in 13 … 0xD118 in 18). */
export function isWalPageMagic(magic: number): boolean {
  return (magic & 0xff00) === 0xd100;
}

export interface PageCheckOptions {
  segmentSize: number;
  /** The timeline being streamed: no page may claim a later one. */
  timeline: number;
  /** The server's system identifier (IDENTIFY_SYSTEM), compared with each long header; omit to skip. */
  systemId?: string;
}

const u16 = (bytes: Uint8Array, i: number): number => bytes[i] | (bytes[i + 1] << 8);
const u32 = (bytes: Uint8Array, i: number): number => (u16(bytes, i) | (u16(bytes, i + 2) << 16)) >>> 0;

/** One checker per stream: call check() with every piece of WAL in order. */
export class PageHeaderChecker {
  private readonly options: PageCheckOptions;
  private blockSize = 0;
  private magic = 0;
  private latestTimeline = 0;
  /** Bytes of a header that began in an earlier piece. */
  private readonly carry = Buffer.alloc(LONG_CHECKED);
  private carryFill = 0;
  private carryNeed = 0;
  private carrySegmentStart = 0n;
  /** Where the previous piece ended, to skip bigint work for the next, contiguous one. */
  private nextLsn = -1n;
  private nextInSegment = 0;
  private nextSegmentStart = 0n;
  /** Segment start of the latest valid page, and of a segment whose tail is zero-filled (after a switch). */
  private validSegment = -1n;
  private zeroSegment = -1n;
  private carryPageOffset = 0;

  constructor(options: PageCheckOptions) {
    this.options = options;
  }

  /**
   * Check the page headers that start (or finish) in `data`, which holds the WAL at `lsn`. Returns what
   * is wrong (one line naming the LSN), or null. Runs per piece of WAL: bigint work once per call,
   * per page only number arithmetic.
   */
  check(lsn: bigint, data: Uint8Array): string | null {
    const segmentSize = this.options.segmentSize;
    let startInSegment: number;
    let segmentStart: bigint;
    if (lsn === this.nextLsn && this.nextInSegment < segmentSize) {
      // Contiguous with the previous piece (the usual case): no bigint arithmetic.
      startInSegment = this.nextInSegment;
      segmentStart = this.nextSegmentStart;
    } else {
      startInSegment = Number(lsn % BigInt(segmentSize));
      segmentStart = lsn - BigInt(startInSegment);
    }
    const endInSegment = startInSegment + data.length;
    if (endInSegment < segmentSize) {
      this.nextLsn = lsn + BigInt(data.length);
      this.nextInSegment = endInSegment;
      this.nextSegmentStart = segmentStart;
    } else {
      this.nextLsn = -1n; // crossing a segment: the next call works it out
    }
    // No page starts inside `data` and no header is pending: nothing to check.
    const step = this.blockSize > 0 ? this.blockSize : segmentSize;
    if (this.carryNeed === 0 && startInSegment % step !== 0 && Math.floor(startInSegment / step) === Math.floor((endInSegment - 1) / step)) return null;
    return this.checkPages(startInSegment, segmentStart, data);
  }

  private checkPages(startInSegment: number, segmentStart: bigint, data: Uint8Array): string | null {
    const segmentSize = this.options.segmentSize;
    let offset = 0;
    if (this.carryNeed > 0) {
      const take = Math.min(this.carryNeed - this.carryFill, data.length);
      this.carry.set(data.subarray(0, take), this.carryFill);
      this.carryFill += take;
      offset = take;
      if (this.carryFill < this.carryNeed) return null;
      this.carryNeed = 0;
      const problem = this.checkHeader(this.carrySegmentStart, this.carryPageOffset, this.carry, 0);
      if (problem) return problem;
    }
    for (;;) {
      const at = startInSegment + offset; // may pass the segment's end: then the next segment's start
      // The next page start at or after `at`. The first long header tells the block size; before it
      // (a stream starting mid-segment) only segment starts are known.
      const step = this.blockSize > 0 ? this.blockSize : segmentSize;
      const pageOffset = at % step === 0 ? at : at + step - (at % step);
      const from = pageOffset - startInSegment;
      if (from >= data.length) return null;
      const pageSegmentStart = pageOffset >= segmentSize ? segmentStart + BigInt(segmentSize) : segmentStart;
      const inSegment = pageOffset % segmentSize;
      const need = inSegment === 0 ? LONG_CHECKED : SHORT_CHECKED;
      if (data.length - from < need) {
        this.carry.set(data.subarray(from), 0);
        this.carryFill = data.length - from;
        this.carryNeed = need;
        this.carrySegmentStart = pageSegmentStart;
        this.carryPageOffset = inSegment;
        return null;
      }
      const problem = this.checkHeader(pageSegmentStart, inSegment, data, from);
      if (problem) return problem;
      offset = from + need;
    }
  }

  /** "WAL page at X/Y", for an error only (nothing is built per page on the good path). */
  private where(segmentStart: bigint, pageOffset: number): string {
    return `WAL page at ${formatLsn(segmentStart + BigInt(pageOffset))}`;
  }

  /** The header at `bytes[at]` (little-endian fields read in place: no view or copy per page). */
  private checkHeader(segmentStart: bigint, pageOffset: number, bytes: Uint8Array, at: number): string | null {
    const magic = u16(bytes, at);
    const info = u16(bytes, at + 2);
    const timeline = u32(bytes, at + 4);
    const addressLow = u32(bytes, at + 8);
    const addressHigh = u32(bytes, at + 12);
    if (magic === 0 && info === 0 && timeline === 0 && addressLow === 0 && addressHigh === 0) {
      // After an XLOG_SWITCH record the rest of the segment is sent as it is on disk, zeros (no page
      // headers). Only there: after a valid page of the same segment, and to its end.
      if (pageOffset !== 0 && this.validSegment === segmentStart) {
        this.zeroSegment = segmentStart;
        return null;
      }
    } else if (this.zeroSegment === segmentStart) {
      return `${this.where(segmentStart, pageOffset)} follows zero-filled pages of its segment`;
    }
    if (!isWalPageMagic(magic)) return `${this.where(segmentStart, pageOffset)} has magic 0x${magic.toString(16).padStart(4, '0')}: not WAL`;
    if (this.magic !== 0 && magic !== this.magic) return `${this.where(segmentStart, pageOffset)} has magic 0x${magic.toString(16)}, earlier pages 0x${this.magic.toString(16)}`;
    // Segments are aligned to their size (≤ 1 GB): the low word never carries into the high one.
    if (addressHigh !== Number(segmentStart >> 32n) || addressLow !== Number(segmentStart & 0xffffffffn) + pageOffset) {
      return `${this.where(segmentStart, pageOffset)} says it is the page at ${formatLsn((BigInt(addressHigh) << 32n) | BigInt(addressLow))}`;
    }
    if (timeline < 1 || timeline > this.options.timeline) return `${this.where(segmentStart, pageOffset)} is of timeline ${timeline}, streaming timeline ${this.options.timeline}`;
    if (timeline < this.latestTimeline) return `${this.where(segmentStart, pageOffset)} is of timeline ${timeline}, after a page of timeline ${this.latestTimeline}`;
    if (pageOffset === 0) {
      if ((info & XLP_LONG_HEADER) === 0) return `${this.where(segmentStart, pageOffset)} starts a segment without a long page header`;
      const systemId = ((BigInt(u32(bytes, at + 28)) << 32n) | BigInt(u32(bytes, at + 24))).toString();
      const segmentSize = u32(bytes, at + 32);
      const blockSize = u32(bytes, at + 36);
      if (this.options.systemId !== undefined && systemId !== this.options.systemId) return `${this.where(segmentStart, pageOffset)} belongs to database system ${systemId}, not the server's ${this.options.systemId}`;
      if (segmentSize !== this.options.segmentSize) return `${this.where(segmentStart, pageOffset)} says segment size ${segmentSize}, the server uses ${this.options.segmentSize}`;
      if (blockSize < 1024 || blockSize > 65536 || (blockSize & (blockSize - 1)) !== 0) return `${this.where(segmentStart, pageOffset)} says block size ${blockSize}`;
      if (this.blockSize !== 0 && blockSize !== this.blockSize) return `${this.where(segmentStart, pageOffset)} says block size ${blockSize}, earlier ${this.blockSize}`;
      this.blockSize = blockSize;
    }
    this.magic = magic;
    this.latestTimeline = timeline;
    this.validSegment = segmentStart;
    return null;
  }
}
