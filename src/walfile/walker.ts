/**
 * Walks one WAL segment's pages and records, as PostgreSQL's reader does (access/transam/xlogreader.c:
 * XLogReaderValidatePageHeader, XLogDecodeNextRecord, ValidXLogRecordHeader, ValidXLogRecord), and
 * says what is wrong with it: page headers (magic, flags, timeline, page address, the long header's
 * system identifier, segment and block size), every record's length, prev-link and CRC-32C, records
 * continued across pages and into the next segment (XLP_FIRST_IS_CONTRECORD, xlp_rem_len), and the
 * XLOG_SWITCH record after which the rest of a segment is ignored. Pure: bytes in, a verdict out.
 * A record is never copied: its CRC is computed piece by piece as its pages go past, so a walk needs
 * only the 24-byte header of a record that crosses into the next segment (ChainState).
 */
import { formatLsn } from '../lsn.js';
import { isWalPageMagic } from '../page-check.js';
import { crc32cRange } from './crc32c.js';
import { type PageWalkState, inModule, moduleWalkPages } from './wal-wasm.js';
import {
  LONG_PAGE_HEADER, RECORD_CRC_OFFSET, RECORD_HEADER, RM_XLOG_ID, SHORT_PAGE_HEADER, XLOG_SWITCH, XLP_ALL_FLAGS,
  XLP_FIRST_IS_CONTRECORD, XLP_FIRST_IS_OVERWRITE_CONTRECORD, XLP_LONG_HEADER, XLR_INFO_MASK, maxAlign, u16, u32, u64,
} from './format.js';

/** A record whose bytes continue on a later page. */
export interface PendingRecord {
  start: bigint;
  total: number;
  got: number;
  /** Its first min(got, 24) bytes: the record header. */
  header: Uint8Array;
  /** CRC-32C so far of the bytes after the header (ValidXLogRecord adds the header last). */
  crc: number;
  /** Only its end is known (the walk began inside it): no CRC, not counted (as XLogFindNextRecord skips it). */
  skip: boolean;
  /** File it started in, credited when it completes; null when counted elsewhere. */
  creditTo: string | null;
}

/** Where a walk stands at the end of a segment: all it needs to check the next segment's first records. */
export interface ChainState {
  /** Start of the segment this state continues into. */
  next: bigint;
  /** Start of the last complete record: the next record's xl_prev. Null when unknown. */
  prev: bigint | null;
  /** A record crossing into the next segment; null at a record boundary. */
  pending: PendingRecord | null;
}

/** One segment file's bytes. */
export interface SegmentInput {
  fileName: string;
  timeline: number;
  segno: bigint;
  segmentSize: number;
  data: Uint8Array;
  /** A .partial: valid WAL may end before the segment does (zeros after it, or the file is shorter). */
  partial: boolean;
}

/** What the archive around a segment says it must hold. Fields left undefined are set by the first segment that shows them. */
export interface WalkContext {
  systemId?: string;
  magic?: number;
  blockSize?: number;
  /** Where the file's timeline begins (its history's switch point): pages from there on carry its timeline, pages before an earlier one. */
  timelineBegins?: bigint;
  /** Where the file's timeline ends (a child timeline's switch point): no record may start at or cross it. */
  timelineEnds?: bigint;
  /** An LSN at which a record must end (a child timeline's switch point inside this segment). */
  boundary?: bigint;
  /** Complete records, credited to the file each started in. */
  credit(fileName: string, records: number): void;
}

export interface WalkResult {
  /** The first fault, one line naming the LSN; null when the segment is sound. */
  problem: string | null;
  /** The chain at the segment's end; null after a fault or where WAL ended (a .partial). */
  state: ChainState | null;
  /** Where valid WAL ended inside a .partial; null when it runs to the segment's end. */
  endOfWal: bigint | null;
  /** Whether a record ended at ctx.boundary. */
  boundaryFound: boolean;
  /** How the segment begins, for joining a walk begun afresh to the chain before it (parallel.ts); with `head` only. */
  head?: SegmentHead;
}

/**
 * What a walk begun afresh (from = null) saw at the segment's start and could not check without the
 * segment before it: the record continued onto page 0 (skipped, as XLogFindNextRecord does) and the
 * first record whose prev-link went unchecked.
 */
export interface SegmentHead {
  /** Page 0's xlp_info and xlp_rem_len (-1 when the segment has no page header). */
  info: number;
  remaining: number;
  /** The continued record's bytes in this segment (page headers left out) when page 0 continues one that ends in it; else null. */
  continuation: Uint8Array | null;
  /** The first record whose header was complete, its start and its xl_prev; null when there was none. */
  firstStart: bigint | null;
  firstPrev: bigint | null;
}

/** What wholeRecords() passed besides where it stopped: how many records, and the offset of the last. */
let runRecords = 0;
let runLast = 0;

/**
 * The records from `pos` on that lie whole on the page and are sound with nothing to note: the right
 * prev-link, CRC-32C, not past `endsAt`, not ending at `boundaryAt`, not XLOG_SWITCH. Returns the
 * offset of the first record that is not such a one (the page's end, the end of WAL, a record that
 * continues on the next page, one with a fault or with something to note), which the walk then
 * takes the general way; runRecords and runLast say what was passed.
 */
function wholeRecords(d: Uint8Array, pos: number, pageEnd: number, prevLo: number, prevHi: number, segLo: number, segHi: number, endsAt: number, boundaryAt: number): number {
  let records = 0;
  let last = 0;
  while (pos + 4 <= pageEnd) {
    const total = u32(d, pos);
    if (total < RECORD_HEADER || pos >= endsAt || pos + total > pageEnd) break;
    if (u32(d, pos + 8) !== prevLo || u32(d, pos + 12) !== prevHi) break;
    let crc = crc32cRange(d, pos + RECORD_HEADER, pos + total, 0);
    crc = crc32cRange(d, pos, pos + RECORD_CRC_OFFSET, crc);
    if (crc !== u32(d, pos + RECORD_CRC_OFFSET)) break;
    const end = maxAlign(pos + total);
    if (end > endsAt || end === boundaryAt) break;
    if (d[pos + 17] === RM_XLOG_ID && (d[pos + 16]! & ~XLR_INFO_MASK) === XLOG_SWITCH) break;
    records++;
    last = pos;
    prevLo = segLo + pos;
    prevHi = segHi;
    pos = end;
  }
  runRecords = records;
  runLast = last;
  return pos;
}

function copyPending(p: PendingRecord): PendingRecord {
  return { ...p, header: new Uint8Array(p.header) };
}

const hex = (n: number): string => '0x' + n.toString(16).padStart(8, '0');

/**
 * Walk segment `input` continuing from `from` (the state the previous segment of the same chain
 * ended with; null to start afresh, skipping a leading continuation as XLogFindNextRecord does).
 * Stops at the first fault. `from` is not modified.
 */
export function walkSegment(input: SegmentInput, ctx: WalkContext, from: ChainState | null, options?: { head?: boolean }): WalkResult {
  // A plain Uint8Array view: its subarray (for native CRC calls) is cheaper than a Buffer's.
  const d = new Uint8Array(input.data.buffer, input.data.byteOffset, input.data.length);
  // A segment read into the WebAssembly module's memory (wal-wasm.ts) is walked there.
  const inWasm = inModule(d);
  const head: SegmentHead | undefined = options?.head ? { info: -1, remaining: -1, continuation: null, firstStart: null, firstPrev: null } : undefined;
  const segmentSize = input.segmentSize;
  const segmentStart = input.segno * BigInt(segmentSize);
  const segHi = Number(segmentStart >> 32n);
  const segLo = Number(segmentStart & 0xffffffffn); // + an offset stays below 2^32: segments are size-aligned
  const lsn = (offset: number): bigint => segmentStart + BigInt(offset);
  const at = (offset: number): string => formatLsn(lsn(offset));
  const fail = (problem: string): WalkResult => ({ problem, state: null, endOfWal: null, boundaryFound: false, head });

  if (d.length > segmentSize || (!input.partial && d.length !== segmentSize)) return fail(`is ${d.length} bytes, not the segment size ${segmentSize}`);
  const chained = from !== null && from.next === segmentStart;
  let pending = chained && from.pending ? copyPending(from.pending) : null;
  let prevHi = -1;
  let prevLo = 0;
  if (chained && from.prev !== null) {
    prevHi = Number(from.prev >> 32n);
    prevLo = Number(from.prev & 0xffffffffn);
  }
  const endsAt = ctx.timelineEnds === undefined ? Infinity : Number(ctx.timelineEnds - segmentStart);
  const boundaryAt = ctx.boundary === undefined ? -1 : Number(ctx.boundary - segmentStart);
  let boundaryFound = boundaryAt === 0 && pending === null;
  // Timeline 1 is all timeline 1; a later one without its history file can only be held to "not later".
  const checkBegins = ctx.timelineBegins !== undefined || input.timeline === 1;
  const beginsAt = ctx.timelineBegins === undefined ? -Infinity : Number(ctx.timelineBegins - segmentStart);
  const timeline = input.timeline;
  let latestTimeline = 0;
  let blockSize = ctx.blockSize ?? 0;
  let records = 0;
  let endOfWal = -1;
  let switched = false;
  let continuation: Uint8Array | null = null;

  /** Header checks once a record's first 24 bytes are at hand (ValidXLogRecordHeader). */
  const headerProblem = (header: Uint8Array, h: number, start: bigint | number): string | null => {
    if (prevHi < 0) {
      if (head !== undefined && head.firstStart === null) {
        head.firstStart = typeof start === 'number' ? lsn(start) : start;
        head.firstPrev = u64(header, h + 8);
      }
    } else if (u32(header, h + 8) !== prevLo || u32(header, h + 12) !== prevHi) {
      const startText = typeof start === 'number' ? at(start) : formatLsn(start);
      return `record at ${startText} has prev-link ${formatLsn(u64(header, h + 8))}, the record before it is at ${formatLsn((BigInt(prevHi) << 32n) | BigInt(prevLo))}`;
    }
    return null;
  };
  const recordEnded = (endOffset: number, isSwitch: boolean, start: bigint | number): string | null => {
    if (endOffset > endsAt) return `record at ${typeof start === 'number' ? at(start) : formatLsn(start)} ends at ${at(endOffset)}, past the switch point ${formatLsn(ctx.timelineEnds!)} where the history says timeline ${timeline} ended`;
    if (endOffset === boundaryAt) boundaryFound = true;
    switched = isSwitch;
    return null;
  };

  const pageWalk: PageWalkState = { prevLo: 0, prevHi: 0, records: 0, pending: null };
  pages: for (let page = 0; page < d.length; page += blockSize) {
    if (inWasm && page > 0 && prevHi >= 0 && ctx.magic !== undefined && (pending === null || (!pending.skip && pending.creditTo === input.fileName))) {
      // Ordinary pages are walked in the module (wal-wasm.ts); it stops where this loop must look.
      pageWalk.prevLo = prevLo;
      pageWalk.prevHi = prevHi;
      pageWalk.pending = pending && { start: Number(pending.start - segmentStart), total: pending.total, got: pending.got, crc: pending.crc, header: pending.header };
      const next = moduleWalkPages(d, page, blockSize, segLo, segHi, ctx.magic, timeline, checkBegins ? beginsAt : 0, endsAt, boundaryAt, pageWalk);
      if (next !== page) {
        records += pageWalk.records;
        prevLo = pageWalk.prevLo;
        prevHi = pageWalk.prevHi;
        const p = pageWalk.pending;
        pending = p && { start: lsn(p.start), total: p.total, got: p.got, header: p.header, crc: p.crc, skip: false, creditTo: input.fileName };
        latestTimeline = timeline;
        page = next;
        if (page >= d.length) break;
      }
    }
    if (d.length - page < SHORT_PAGE_HEADER) {
      endOfWal = page; // only a .partial is shorter than a segment
      break;
    }
    const magic = u16(d, page);
    const info = u16(d, page + 2);
    const pageTimeline = u32(d, page + 4);
    const addrLo = u32(d, page + 8);
    const addrHi = u32(d, page + 12);
    const remaining = u32(d, page + 16);
    if (input.partial && (magic | info | pageTimeline | addrLo | addrHi) === 0) {
      endOfWal = page; // never written: WAL ended before this page
      break;
    }
    if (!isWalPageMagic(magic)) return fail(`page at ${at(page)} has magic 0x${magic.toString(16).padStart(4, '0')}: not WAL`);
    if (ctx.magic === undefined) ctx.magic = magic;
    else if (magic !== ctx.magic) return fail(`page at ${at(page)} has magic 0x${magic.toString(16)}, the archive's pages 0x${ctx.magic.toString(16)} (another PostgreSQL version)`);
    if ((info & ~XLP_ALL_FLAGS) !== 0) return fail(`page at ${at(page)} has invalid info bits 0x${info.toString(16)}`);
    if (addrHi !== segHi || addrLo !== segLo + page) return fail(`page at ${at(page)} says it is the page at ${formatLsn(u64(d, page + 8))}`);
    if (pageTimeline < 1 || pageTimeline > timeline) return fail(`page at ${at(page)} is of timeline ${pageTimeline}, the file's is ${timeline}`);
    if (pageTimeline < latestTimeline) return fail(`page at ${at(page)} is of timeline ${pageTimeline}, after a page of timeline ${latestTimeline}`);
    // A new timeline's first segment is the parent's copied up to the switch point (xlog.c
    // XLogInitNewTimeline): pages starting before it keep an earlier timeline, later ones carry the new one.
    if (checkBegins && (page >= beginsAt ? pageTimeline !== timeline : pageTimeline >= timeline)) {
      return fail(ctx.timelineBegins === undefined ? `page at ${at(page)} is of timeline ${pageTimeline}, the file's is ${timeline}`
        : `page at ${at(page)} is of timeline ${pageTimeline}, but the history says timeline ${timeline} begins at ${formatLsn(ctx.timelineBegins)}`);
    }
    latestTimeline = pageTimeline;
    let pos = page + SHORT_PAGE_HEADER;
    if (page === 0) {
      if (head !== undefined) {
        head.info = info;
        head.remaining = remaining;
      }
      if ((info & XLP_LONG_HEADER) === 0) return fail(`page at ${at(page)} starts the segment without a long page header`);
      if (d.length < LONG_PAGE_HEADER) return fail(`is ${d.length} bytes: a long page header does not fit`);
      const systemId = u64(d, 24).toString();
      const headerSegmentSize = u32(d, 32);
      const headerBlockSize = u32(d, 36);
      if (ctx.systemId === undefined) ctx.systemId = systemId;
      else if (systemId !== ctx.systemId) return fail(`belongs to database system ${systemId}, the archive's is ${ctx.systemId}`);
      if (headerSegmentSize !== segmentSize) return fail(`says segment size ${headerSegmentSize}, the archive's is ${segmentSize}`);
      if (headerBlockSize < 1024 || headerBlockSize > 65536 || (headerBlockSize & (headerBlockSize - 1)) !== 0) return fail(`says WAL block size ${headerBlockSize}`);
      if (blockSize !== 0 && headerBlockSize !== blockSize) return fail(`says WAL block size ${headerBlockSize}, the archive's is ${blockSize}`);
      blockSize = ctx.blockSize = headerBlockSize;
      pos = LONG_PAGE_HEADER;
    } else if (blockSize === 0) {
      return fail('has no long page header to give the block size');
    }
    const pageEnd = Math.min(page + blockSize, d.length);

    if (pending !== null) {
      if ((info & XLP_FIRST_IS_CONTRECORD) === 0) {
        if ((info & XLP_FIRST_IS_OVERWRITE_CONTRECORD) !== 0) {
          // The record was never finished and the server wrote over its rest (xlogreader.c: an
          // XLOG_OVERWRITE_CONTRECORD record starts this page, prev-linked to the abandoned record).
          if (!pending.skip) {
            prevHi = Number(pending.start >> 32n);
            prevLo = Number(pending.start & 0xffffffffn);
          }
          pending = null;
        } else {
          return fail(`record at ${formatLsn(pending.start)} (length ${pending.total}) continues on the page at ${at(page)}, which has no continuation flag`);
        }
      } else if (remaining !== pending.total - pending.got) {
        return fail(`page at ${at(page)} continues a record with ${remaining} bytes, the record at ${formatLsn(pending.start)} has ${pending.total - pending.got} left`);
      }
    } else if ((info & XLP_FIRST_IS_CONTRECORD) !== 0) {
      if (page === 0 && !chained) {
        // Starting inside a record whose beginning is not at hand: skip to its end.
        pending = { start: lsn(0), total: remaining, got: 0, header: new Uint8Array(RECORD_HEADER), crc: 0, skip: true, creditTo: null };
        prevHi = -1;
        // Kept for the walk that joins this one to the segment before (it finishes the record); only one that can end here.
        if (head !== undefined && remaining <= d.length) continuation = new Uint8Array(remaining);
      } else {
        return fail(`page at ${at(page)} continues a record, but the previous record ended before it`);
      }
    }

    while (pos < pageEnd) {
      if (pending !== null) {
        const p = pending;
        const n = Math.min(p.total - p.got, pageEnd - pos);
        if (!p.skip) {
          let k = 0;
          if (p.got < RECORD_HEADER) {
            k = Math.min(RECORD_HEADER - p.got, n);
            for (let i = 0; i < k; i++) p.header[p.got + i] = d[pos + i]!; // a few bytes: no view to allocate
            if (p.got + k === RECORD_HEADER) {
              const problem = headerProblem(p.header, 0, p.start);
              if (problem) return fail(problem);
            }
          }
          if (n > k) p.crc = crc32cRange(d, pos + k, pos + n, p.crc);
        } else if (continuation !== null) {
          continuation.set(d.subarray(pos, pos + n), p.got);
        }
        p.got += n;
        pos += n;
        if (p.got < p.total) continue; // on the next page
        pending = null;
        if (continuation !== null) {
          head!.continuation = continuation;
          continuation = null;
        }
        if (!p.skip) {
          const crc = crc32cRange(p.header, 0, RECORD_CRC_OFFSET, p.crc);
          if (crc !== u32(p.header, RECORD_CRC_OFFSET)) return fail(`record at ${formatLsn(p.start)} (length ${p.total}) fails its CRC-32C check: computed ${hex(crc)}, stored ${hex(u32(p.header, RECORD_CRC_OFFSET))}`);
          if (p.creditTo !== null) {
            if (p.creditTo === input.fileName) records++;
            else ctx.credit(p.creditTo, 1);
          }
          prevHi = Number(p.start >> 32n);
          prevLo = Number(p.start & 0xffffffffn);
        }
        const isSwitch = !p.skip && p.header[17] === RM_XLOG_ID && (p.header[16] & ~XLR_INFO_MASK) === XLOG_SWITCH;
        pos = maxAlign(pos);
        const problem = recordEnded(pos, isSwitch, p.start);
        if (problem) return fail(problem);
        if (switched) break pages;
        continue;
      }
      if (prevHi >= 0) {
        // The usual case, records that fit on the page one after another: checked by a small loop
        // that the JIT compiles early (this function is large, and a worker walks only a few segments).
        const next = wholeRecords(d, pos, pageEnd, prevLo, prevHi, segLo, segHi, endsAt, boundaryAt);
        if (next !== pos) {
          records += runRecords;
          prevHi = segHi;
          prevLo = segLo + runLast;
          pos = next;
          continue;
        }
      }
      // A record starts here (pos is 8-aligned, so its length word is on this page).
      if (pos + 4 > pageEnd) {
        endOfWal = pos;
        break pages;
      }
      const total = u32(d, pos);
      if (total === 0) {
        endOfWal = pos; // xlogreader.c: "invalid record length ... wanted 24, got 0": the end of WAL
        break pages;
      }
      if (total < RECORD_HEADER) return fail(`record at ${at(pos)} has length ${total}, less than a record header`);
      if (pos >= endsAt) return fail(`record at ${at(pos)} is past the switch point ${formatLsn(ctx.timelineEnds!)} where the history says timeline ${timeline} ended`);
      if (pos + total > pageEnd) {
        pending = { start: lsn(pos), total, got: 0, header: new Uint8Array(RECORD_HEADER), crc: 0, skip: false, creditTo: input.fileName };
        continue;
      }
      // The whole record is on this page (the usual case): checked in place.
      const problem = headerProblem(d, pos, pos);
      if (problem) return fail(problem);
      let crc = crc32cRange(d, pos + RECORD_HEADER, pos + total, 0);
      crc = crc32cRange(d, pos, pos + RECORD_CRC_OFFSET, crc);
      if (crc !== u32(d, pos + RECORD_CRC_OFFSET)) return fail(`record at ${at(pos)} (length ${total}) fails its CRC-32C check: computed ${hex(crc)}, stored ${hex(u32(d, pos + RECORD_CRC_OFFSET))}`);
      records++;
      prevHi = segHi;
      prevLo = segLo + pos;
      const start = pos;
      pos = maxAlign(pos + total);
      const ended = recordEnded(pos, d[start + 17] === RM_XLOG_ID && (d[start + 16] & ~XLR_INFO_MASK) === XLOG_SWITCH, start);
      if (ended) return fail(ended);
      if (switched) break pages;
    }
  }

  if (records > 0) ctx.credit(input.fileName, records);
  const prev = prevHi >= 0 ? (BigInt(prevHi) << 32n) | BigInt(prevLo) : null;
  const next = segmentStart + BigInt(segmentSize);
  // After XLOG_SWITCH the rest of the segment is ignored (xlogreader.c: the record "extends" to the segment's end).
  if (switched) return { problem: null, state: { next, prev, pending: null }, endOfWal: null, boundaryFound, head };
  if (endOfWal >= 0) {
    if (!input.partial) return fail(`WAL ends at ${at(endOfWal)}, inside a complete segment and with no XLOG_SWITCH before it`);
    return { problem: null, state: null, endOfWal: pending ? pending.start : lsn(endOfWal), boundaryFound, head };
  }
  if (input.partial) return { problem: null, state: null, endOfWal: pending ? pending.start : null, boundaryFound, head };
  return { problem: null, state: { next, prev, pending }, endOfWal: null, boundaryFound, head };
}
