/**
 * What an existing archive holds: where streaming resumes, and which cluster it belongs to.
 * The resume rule mirrors pg_receivewal's FindStreamingStart (src/bin/pg_basebackup/pg_receivewal.c).
 */
import { parseSegmentFileName } from '../lsn.js';
import type { WalSink } from './sink.js';
import { isWalPageMagic } from '../page-check.js';
import { type CompressionMethod, compressionOfName, decodeFrames } from './codec.js';

/** One segment file found in the archive. */
export interface ArchivedSegment {
  name: string;
  /** The file name as stored (NAME or NAME.partial, possibly with a compression suffix). */
  fileName: string;
  timeline: number;
  segno: bigint;
  partial: boolean;
  /** How the file is compressed (from its suffix). */
  compression: CompressionMethod;
}

/**
 * Parse an archive file name into a segment entry: NAME, NAME.partial, and their compressed forms
 * NAME.gz / NAME.gz.partial (pg_receivewal's order; NAME.partial.gz too) and likewise .lz4, .zst.
 * Null for anything else.
 */
export function parseArchivedName(fileName: string, segmentSize: number): ArchivedSegment | null {
  let partial = fileName.endsWith('.partial');
  let { base, method } = compressionOfName(partial ? fileName.slice(0, -'.partial'.length) : fileName);
  if (!partial && base.endsWith('.partial')) { // NAME.partial.gz, as other tools compress a .partial
    partial = true;
    base = base.slice(0, -'.partial'.length);
  }
  const parsed = parseSegmentFileName(base, segmentSize);
  return parsed ? { name: base, fileName, timeline: parsed.timeline, segno: parsed.segno, partial, compression: method } : null;
}

/** Segments in the archive, newest first: higher segment number, then higher timeline, then complete before .partial. */
function sortNewestFirst(segments: ArchivedSegment[]): ArchivedSegment[] {
  return [...segments].sort((a, b) => {
    if (a.segno !== b.segno) return a.segno > b.segno ? -1 : 1;
    if (a.timeline !== b.timeline) return b.timeline - a.timeline;
    return Number(a.partial) - Number(b.partial);
  });
}

/** Where to resume from an archive listing. */
export interface ResumePoint {
  /** First LSN to request: the next segment after a complete one, the start of a .partial's segment. */
  startLsn: bigint;
  timeline: number;
  /** The file that decided it. */
  from: ArchivedSegment;
}

/**
 * Resume point from an archive listing: the first WAL not durably archived. As pg_receivewal: the
 * newest segment decides; after a complete one start at the next segment, after a .partial at the
 * start of its segment. Unlike it, a .partial below the newest segment on the same timeline (a
 * segment whose completion failed while the next one was already being written, e.g. on a full
 * disk) is where streaming resumes, so nothing after a failed write counts as archived.
 * `notArchived`: segment names to treat as absent and unfinished (set aside as damaged).
 * Null for an archive with no segment.
 */
export function findResumePoint(fileNames: string[], segmentSize: number, notArchived: string[] = []): ResumePoint | null {
  const listed = fileNames.map((n) => parseArchivedName(n, segmentSize)).filter((s): s is ArchivedSegment => s !== null);
  const setAside = notArchived.map((n) => parseArchivedName(n, segmentSize)).filter((s): s is ArchivedSegment => s !== null)
    .map((s) => ({ ...s, partial: true }));
  const segments = [...listed.filter((s) => !notArchived.includes(s.fileName)), ...setAside];
  const newest = sortNewestFirst(segments)[0];
  if (!newest) return null;
  const complete = new Set(segments.filter((s) => !s.partial).map((s) => s.name));
  let from = newest;
  let segno = newest.partial ? newest.segno : newest.segno + 1n;
  for (const s of segments) {
    if (s.partial && !complete.has(s.name) && s.timeline === newest.timeline && s.segno < segno) {
      from = s;
      segno = s.segno;
    }
  }
  return { startLsn: segno * BigInt(segmentSize), timeline: from.timeline, from };
}

/** The newest complete segment of a listing (the one resume trusts), compressed or not, or null. */
export function newestCompleteSegment(fileNames: string[], segmentSize: number): ArchivedSegment | null {
  const complete = fileNames.map((n) => parseArchivedName(n, segmentSize)).filter((s): s is ArchivedSegment => s !== null && !s.partial);
  return sortNewestFirst(complete)[0] ?? null;
}

/**
 * A segment file's size and first `length` bytes as WAL, decompressing a compressed one whole (its
 * size is then what it decodes to). A compressed file that does not decode to its end gives `problem`.
 * Null size when the file is absent, or when the sink cannot read compressed files.
 */
export async function readSegmentHead(sink: WalSink, segment: ArchivedSegment, length: number): Promise<{ size: number | null; head: Uint8Array | null; problem?: string }> {
  if (segment.compression === 'none') {
    const size = sink.size ? await sink.size(segment.fileName) : null;
    return { size, head: await sink.readHead(segment.fileName, length) };
  }
  const content = sink.readFile ? await sink.readFile(segment.fileName) : null;
  if (!content) return { size: null, head: null };
  const decoded = await decodeFrames(segment.compression, content);
  const problem = decoded.error && !segment.partial ? `does not decompress (${decoded.error})` : undefined;
  return { size: decoded.data.length, head: decoded.data.subarray(0, length), problem };
}

/**
 * What is wrong with a complete segment file, from its size and first bytes, or null when it looks
 * like the segment its name says: full size, and a long page header (access/xlog_internal.h
 * XLogLongPageHeaderData) with an XLOG page magic (0xD1xx in every release), the name's timeline,
 * the segment's own start as page address, and the archive's segment size.
 */
export function segmentFileProblem(segment: ArchivedSegment, size: number | null, head: Uint8Array | null, segmentSize: number, decodeProblem?: string): string | null {
  if (size === null) return 'is missing';
  if (decodeProblem) return decodeProblem;
  if (size !== segmentSize) return `is ${size} bytes, not ${segmentSize}`;
  const header = head ? decodeLongPageHeader(head) : null;
  if (!header) return 'does not start with a WAL long page header';
  if (!isWalPageMagic(header.magic)) return `has page magic 0x${header.magic.toString(16)}, not a WAL page`;
  // A new timeline's first segment starts as a copy of the old one (xlog.c XLogFileCopy): its first
  // pages keep the old timeline. Only a later timeline than the name's is wrong.
  if (header.timeline < 1 || header.timeline > segment.timeline) return `has timeline ${header.timeline} in its first page, ${segment.timeline} in its name`;
  const expectedAddress = segment.segno * BigInt(segmentSize);
  if (header.pageAddress !== expectedAddress) return `has page address ${header.pageAddress.toString(16).toUpperCase()} in its first page, expected ${expectedAddress.toString(16).toUpperCase()}`;
  if (header.segmentSize !== segmentSize) return `says segment size ${header.segmentSize}, the server uses ${segmentSize}`;
  return null;
}

/** Bit in xlp_info marking a long page header (XLP_LONG_HEADER, access/xlog_internal.h). */
const XLP_LONG_HEADER = 0x0002;
/** Bytes needed to read the long page header up to xlp_xlog_blcksz. */
export const LONG_HEADER_LENGTH = 40;

/** Fields of a segment's long page header (XLogLongPageHeaderData); integers in the server's byte order (little-endian here). */
export interface LongPageHeader {
  magic: number;
  timeline: number;
  pageAddress: bigint;
  systemId: string;
  segmentSize: number;
  blockSize: number;
}

/** Decode the long page header at the start of a segment; null when the bytes do not hold one (zeros, short). */
export function decodeLongPageHeader(head: Uint8Array): LongPageHeader | null {
  if (head.length < LONG_HEADER_LENGTH) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const info = view.getUint16(2, true);
  if ((info & XLP_LONG_HEADER) === 0) return null;
  return {
    magic: view.getUint16(0, true),
    timeline: view.getUint32(4, true),
    pageAddress: view.getBigUint64(8, true),
    systemId: view.getBigUint64(24, true).toString(),
    segmentSize: view.getUint32(32, true),
    blockSize: view.getUint32(36, true),
  };
}

/**
 * The system identifier the archive belongs to, read from the long page header of its newest
 * segment that has one (a fresh .partial may still be zeros). Null for an archive with no segment.
 * Compressed files are decompressed to read it. `names` is the sink's listing (the caller lists once
 * and asks several questions of it).
 */
export async function archiveSystemId(sink: WalSink, segmentSize: number, names: string[]): Promise<{ systemId: string; fileName: string } | null> {
  const segments = sortNewestFirst(
    names.map((n) => parseArchivedName(n, segmentSize)).filter((s): s is ArchivedSegment => s !== null),
  );
  for (const segment of segments) {
    const { head } = await readSegmentHead(sink, segment, LONG_HEADER_LENGTH);
    const header = head ? decodeLongPageHeader(head) : null;
    // Only a whole header counts: a .partial may hold just the first bytes of one (the rest zeros).
    if (header && isWalPageMagic(header.magic) && header.systemId !== '0' && header.segmentSize === segmentSize) {
      return { systemId: header.systemId, fileName: segment.fileName };
    }
  }
  return null;
}
