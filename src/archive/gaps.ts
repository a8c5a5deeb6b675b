/**
 * Gap markers: an empty file in the archive whose name records WAL the archive knowingly lacks
 * (`receive --on-slot-limit=release` advanced the slot past it, so the server may have removed it).
 * Name: `walstream.gap.TTTTTTTT.FFFFFFFFFFFFFFFF-TTTTTTTTTTTTTTTT`: the timeline (8 hex digits), then the
 * first missing LSN and the LSN where archiving resumed (16 hex digits each, the X/X halves joined).
 * Everything is in the name, so the marker can be made on a full disk (it takes no data block), and
 * `status` / `verify` read it from a listing alone.
 */
import { formatLsn } from '../lsn.js';

/** WAL the archive lacks on purpose, from a marker's name. */
export interface GapMarker {
  /** The marker's file name. */
  fileName: string;
  timeline: number;
  /** First LSN missing from the archive. */
  fromLsn: bigint;
  /** LSN where archiving resumed (exclusive end of the gap). */
  toLsn: bigint;
}

const PREFIX = 'walstream.gap.';
const MARKER = /^walstream\.gap\.([0-9A-F]{8})\.([0-9A-F]{16})-([0-9A-F]{16})$/;

const hex = (value: bigint | number, width: number) => value.toString(16).toUpperCase().padStart(width, '0');

/** The marker name for WAL [fromLsn, toLsn) missing on `timeline`. */
export function gapMarkerName(timeline: number, fromLsn: bigint, toLsn: bigint): string {
  return `${PREFIX}${hex(timeline, 8)}.${hex(fromLsn, 16)}-${hex(toLsn, 16)}`;
}

/** Parse one file name; null for anything that is not a gap marker. */
export function parseGapMarker(fileName: string): GapMarker | null {
  const match = MARKER.exec(fileName);
  if (!match) return null;
  return { fileName, timeline: parseInt(match[1]!, 16), fromLsn: BigInt('0x' + match[2]), toLsn: BigInt('0x' + match[3]) };
}

/** The gap markers among an archive listing, oldest gap first. */
export function listGapMarkers(fileNames: string[]): GapMarker[] {
  return fileNames.map(parseGapMarker).filter((m): m is GapMarker => m !== null)
    .sort((a, b) => (a.fromLsn < b.fromLsn ? -1 : a.fromLsn > b.fromLsn ? 1 : a.timeline - b.timeline));
}

/** A marker in words: "timeline 1, 0/3000000 to 0/9000000". */
export function describeGap(marker: GapMarker): string {
  return `timeline ${marker.timeline}, ${formatLsn(marker.fromLsn)} to ${formatLsn(marker.toLsn)}`;
}
