/**
 * `walstream.verified`: how far `verify` has checked an archive, so the next run reads only what is
 * new. JSON: the last verified segment (timeline, name, end LSN), the archive's system identifier and
 * sizes, and the record chain at that segment's end (the last record's LSN, for the next record's
 * prev-link, and a record crossing into the next segment: its header and CRC so far), so the next
 * run checks the first records after the mark exactly as a single run would. Written atomically
 * (temp file, fsync, rename, fsync of the directory) through DirectorySink.writeFile.
 */
import { type ArchiveReader, DirectoryReader } from '../archive/reader.js';
import { formatLsn, parseLsn } from '../lsn.js';
import type { ChainState } from './walker.js';

/** The watermark's file name in the archive directory. */
export const WATERMARK_FILE = 'walstream.verified';

export interface Watermark {
  timeline: number;
  /** The last verified segment's name (24 hex digits). */
  segment: string;
  segno: bigint;
  /** Its end: where the next segment starts. */
  endLsn: bigint;
  systemId: string;
  segmentSize: number;
  blockSize: number;
  magic: number;
  /** The record chain at endLsn. */
  chain: ChainState;
}

interface WatermarkJson {
  version: 1;
  timeline: number;
  segment: string;
  segno: string;
  endLsn: string;
  systemId: string;
  segmentSize: number;
  blockSize: number;
  magic: number;
  lastRecordLsn: string | null;
  crossingRecord: { start: string; total: number; got: number; header: string; crc: number; skip: boolean; creditTo: string | null } | null;
  verifiedAt: string;
}

/** The watermark as the JSON written to the file. */
export function encodeWatermark(mark: Watermark): string {
  const p = mark.chain.pending;
  const json: WatermarkJson = {
    version: 1, timeline: mark.timeline, segment: mark.segment, segno: mark.segno.toString(), endLsn: formatLsn(mark.endLsn),
    systemId: mark.systemId, segmentSize: mark.segmentSize, blockSize: mark.blockSize, magic: mark.magic,
    lastRecordLsn: mark.chain.prev === null ? null : formatLsn(mark.chain.prev),
    crossingRecord: p ? { start: formatLsn(p.start), total: p.total, got: p.got, header: Buffer.from(p.header).toString('hex'), crc: p.crc, skip: p.skip, creditTo: p.creditTo } : null,
    verifiedAt: new Date().toISOString(),
  };
  return JSON.stringify(json, null, 2) + '\n';
}

/** Parse a watermark file's text; throws an Error saying what is wrong with it. */
export function decodeWatermark(text: string): Watermark {
  const j = JSON.parse(text) as WatermarkJson;
  if (j.version !== 1 || typeof j.segment !== 'string' || !/^\d+$/.test(j.segno)) throw new Error('not a version 1 watermark');
  const endLsn = parseLsn(j.endLsn);
  const p = j.crossingRecord;
  return {
    timeline: j.timeline, segment: j.segment, segno: BigInt(j.segno), endLsn, systemId: j.systemId,
    segmentSize: j.segmentSize, blockSize: j.blockSize, magic: j.magic,
    chain: {
      next: endLsn,
      prev: j.lastRecordLsn === null ? null : parseLsn(j.lastRecordLsn),
      pending: p ? { start: parseLsn(p.start), total: p.total, got: p.got, header: Uint8Array.from(Buffer.from(p.header, 'hex')), crc: p.crc, skip: p.skip, creditTo: p.creditTo } : null,
    },
  };
}

/** The archive's watermark, or null when there is none. Throws when it exists but cannot be read or parsed. */
export async function readWatermark(archive: ArchiveReader): Promise<Watermark | null> {
  const bytes = await archive.read(WATERMARK_FILE);
  if (bytes === null) return null;
  try {
    return decodeWatermark(bytes.toString('utf8'));
  } catch (err) {
    throw new Error(`${WATERMARK_FILE} is not a watermark (${(err as Error).message}); remove it or run verify --all`);
  }
}

let directoryModule: Promise<typeof import('../archive/directory.js')> | null = null;

/**
 * Load what writeWatermark() needs for a directory (the archive's writer, a few dozen milliseconds of
 * module loading) now, while the caller waits on something else: verify calls it once its first reads are under way.
 */
export function prepareWatermarkWrite(): void {
  directoryModule ??= import('../archive/directory.js');
  directoryModule.catch(() => {}); // a failure is reported by writeWatermark
}

/** Write the watermark durably and atomically (a directory: temp file, fsync, rename; a bucket: one PUT). */
export async function writeWatermark(archive: ArchiveReader, mark: Watermark): Promise<void> {
  const bytes = Buffer.from(encodeWatermark(mark));
  if (archive instanceof DirectoryReader) {
    prepareWatermarkWrite();
    const { DirectorySink } = await directoryModule!;
    await new DirectorySink(archive.directory).writeFile(WATERMARK_FILE, bytes);
  } else if (archive.put) {
    await archive.put(WATERMARK_FILE, bytes);
  }
}

/** Remove the watermark (nothing verified any more). */
export async function removeWatermark(archive: ArchiveReader): Promise<void> {
  await archive.remove(WATERMARK_FILE);
}
