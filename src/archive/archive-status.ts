/**
 * What an archive holds (a directory or a bucket, through ArchiveReader), for `walstream status` and monitoring: the newest segment and when
 * it was written, the timelines present, gaps (segments missing between ones present, each matched
 * with a gap marker when walstream recorded it), `.partial` files, files set aside. Reads the listing
 * and a few file headers and times; never the WAL itself (that is `verify`).
 */
import { isValidSegmentSize, segmentFileName } from '../lsn.js';
import { isWalPageMagic } from '../page-check.js';
import { type GapMarker, listGapMarkers } from './gaps.js';
import { type ArchiveReader, DirectoryReader, readArchiveHead } from './reader.js';
import { type ArchivedSegment, LONG_HEADER_LENGTH, decodeLongPageHeader, parseArchivedName } from './scan.js';

/** Segments missing between two that are present. */
export interface ArchiveGap {
  timeline: number;
  /** First and last missing segment names. */
  firstMissing: string;
  lastMissing: string;
  /** How many segments are missing. */
  missing: number;
  fromLsn: bigint;
  toLsn: bigint;
  /** The marker walstream wrote when it made this gap knowingly (slot released, --start-at-server-position), if any. */
  marker: GapMarker | null;
}

/** A segment file with its modification time (in a bucket: when it was uploaded). */
export interface DatedSegment extends ArchivedSegment {
  mtimeMs: number;
}

/** The state of an archive. */
export interface ArchiveReport {
  /** Where the archive is: its directory, or s3://BUCKET/PREFIX. */
  directory: string;
  segmentSize: number;
  /** False when no uncompressed segment header could be read and 16 MB was assumed. */
  segmentSizeKnown: boolean;
  systemId: string | null;
  /** Complete segments. */
  segments: number;
  timelines: number[];
  /** The newest complete segment. */
  newest: DatedSegment | null;
  /** Every .partial segment, newest first; `belowNewest` when a newer segment of its timeline exists (a failed completion). */
  partials: (DatedSegment & { belowNewest: boolean })[];
  /** When WAL was last written: the newest complete segment's or a newer .partial's modification time. */
  lastWriteMs: number | null;
  /** End of the newest complete segment (everything before it is archived, gaps aside). */
  archivedLsn: bigint | null;
  gaps: ArchiveGap[];
  markers: GapMarker[];
  /** Files walstream set aside (NAME.damaged, NAME.partial.before-gap). */
  setAside: string[];
}

const DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024;
const UNCOMPRESSED = /^[0-9A-F]{24}(\.partial)?$/;

/** Segment size and system identifier from the long page header of the newest readable uncompressed segment. */
async function readArchiveHeader(archive: ArchiveReader, names: string[]): Promise<{ segmentSize: number; systemId: string } | null> {
  for (const name of names.filter((n) => UNCOMPRESSED.test(n)).sort().reverse()) {
    try {
      const head = await readArchiveHead(archive, name, LONG_HEADER_LENGTH);
      const header = head && decodeLongPageHeader(head);
      if (header && isWalPageMagic(header.magic) && isValidSegmentSize(header.segmentSize) && header.systemId !== '0') {
        return { segmentSize: header.segmentSize, systemId: header.systemId };
      }
    } catch {
      // unreadable: try the next one
    }
  }
  return null;
}

/** Gaps within each timeline, and between a timeline's first segment and the timelines below it. */
function findGaps(segments: ArchivedSegment[], segmentSize: number, markers: GapMarker[]): ArchiveGap[] {
  const size = BigInt(segmentSize);
  const byTimeline = new Map<number, bigint[]>();
  for (const s of segments) {
    const list = byTimeline.get(s.timeline);
    if (list) list.push(s.segno);
    else byTimeline.set(s.timeline, [s.segno]);
  }
  const gaps: ArchiveGap[] = [];
  const add = (timeline: number, first: bigint, last: bigint) => {
    const fromLsn = first * size;
    const toLsn = (last + 1n) * size;
    const marker = markers.find((m) => m.fromLsn <= fromLsn && m.toLsn >= toLsn) ?? null;
    gaps.push({ timeline, firstMissing: segmentFileName(timeline, first, segmentSize), lastMissing: segmentFileName(timeline, last, segmentSize), missing: Number(last - first + 1n), fromLsn, toLsn, marker });
  };
  let highestBelow: bigint | null = null;
  for (const timeline of [...byTimeline.keys()].sort((a, b) => a - b)) {
    const segnos = [...new Set(byTimeline.get(timeline)!)].sort((a, b) => (a < b ? -1 : 1));
    if (highestBelow !== null && segnos[0]! > highestBelow + 1n) add(timeline, highestBelow + 1n, segnos[0]! - 1n);
    for (let i = 1; i < segnos.length; i++) if (segnos[i]! > segnos[i - 1]! + 1n) add(timeline, segnos[i - 1]! + 1n, segnos[i]! - 1n);
    const top = segnos[segnos.length - 1]!;
    if (highestBelow === null || top > highestBelow) highestBelow = top;
  }
  return gaps;
}

/**
 * Read the state of the archive (see ArchiveReport): a directory, or any ArchiveReader (an S3Store for a
 * bucket, whose objects' upload times stand for modification times). `segmentSize` when known (from the
 * server); otherwise read from a segment's header, else 16 MB is assumed. Rejects when the archive
 * cannot be reached or listed.
 */
export async function readArchiveReport(archive: string | ArchiveReader, options: { segmentSize?: number } = {}): Promise<ArchiveReport> {
  const reader = typeof archive === 'string' ? new DirectoryReader(archive) : archive;
  await reader.check();
  const listing = await reader.entries();
  const names = listing.map((e) => e.name);
  const modified = new Map(listing.map((e) => [e.name, e.modifiedMs ?? 0]));
  const dated = <T extends ArchivedSegment>(segment: T): T & DatedSegment => ({ ...segment, mtimeMs: modified.get(segment.fileName) ?? 0 });
  const header = await readArchiveHeader(reader, names);
  const segmentSize = options.segmentSize ?? header?.segmentSize ?? DEFAULT_SEGMENT_SIZE;
  const segments = names.map((n) => parseArchivedName(n, segmentSize)).filter((s): s is ArchivedSegment => s !== null);
  const complete = segments.filter((s) => !s.partial).sort((a, b) => (a.segno !== b.segno ? (a.segno > b.segno ? -1 : 1) : b.timeline - a.timeline));
  const newest = complete[0] ? dated(complete[0]) : null;
  const completeNames = new Set(complete.map((s) => s.name));
  const topOf = (timeline: number) => segments.filter((s) => s.timeline === timeline).reduce((m, s) => (s.segno > m ? s.segno : m), -1n);
  const partials = segments.filter((s) => s.partial && !completeNames.has(s.name))
    .sort((a, b) => (a.segno > b.segno ? -1 : 1))
    .map((s) => ({ ...dated(s), belowNewest: s.segno < topOf(s.timeline) }));
  const written = [...(newest ? [newest] : []), ...partials.filter((p) => !newest || p.segno >= newest.segno)];
  const markers = listGapMarkers(names);
  return {
    directory: reader.describe(),
    segmentSize,
    segmentSizeKnown: options.segmentSize !== undefined || header !== null,
    systemId: header?.systemId ?? null,
    segments: complete.length,
    timelines: [...new Set(segments.map((s) => s.timeline))].sort((a, b) => a - b),
    newest,
    partials,
    lastWriteMs: written.length ? Math.max(...written.map((d) => d.mtimeMs)) : null,
    archivedLsn: newest ? (newest.segno + 1n) * BigInt(segmentSize) : null,
    gaps: findGaps(segments, segmentSize, markers),
    markers,
    setAside: names.filter((n) => /\.(damaged|before-gap)$/.test(n)).sort(),
  };
}
