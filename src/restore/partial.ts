/**
 * `--include-partial`: the segment being written when the archiver stopped (NAME.partial, or a compressed
 * NAME.EXT.partial) served to recovery as a whole segment, so recovery replays everything the archiver
 * had made durable. Only the newest file of the archive on its timeline qualifies: a .partial below a
 * later segment is a hole (a completion that failed), not the end of the archive.
 *
 * What recovery gets is what pg_receivewal's documentation tells an operator to do by hand (rename the
 * .partial and copy it into pg_wal): the data, then zeros to the segment's size. PostgreSQL's reader
 * ends WAL at the first record that is not whole (xlogreader.c XLogReadRecord: a zero xl_tot_len, a bad
 * CRC), exactly as at the end of a server's own pg_wal.
 */
import type { ArchiveReader } from '../archive/reader.js';
import { WalstreamError } from '../errors.js';
import { isValidSegmentSize, parseSegmentFileName } from '../lsn.js';
import { isWalPageMagic } from '../page-check.js';
import { COMPRESSION_SUFFIX, compressionOfName, decodeFrames } from '../archive/codec.js';
import { decodeLongPageHeader, parseArchivedName } from '../archive/scan.js';

/** A .partial ready to serve: its decoded data (at most one segment) and the segment size to pad to. */
export interface ServablePartial {
  fileName: string;
  data: Buffer;
  segmentSize: number;
}

/**
 * The newest `.partial` of segment `name` in `archiveDir`, decoded (a compressed one up to its last whole
 * frame: a torn tail left by a crash was never made durable) and checked: a long page header with an XLOG
 * magic, the segment's own page address, a timeline no later than the name's, a valid segment size that
 * the name fits. Null when there is none, when it holds no page header yet (nothing to replay), or when
 * a later segment of its timeline is archived. Throws ARCHIVE_DAMAGED when its header is not its
 * segment's or a compressed one does not decode at all, ARCHIVE_IO when it cannot be read.
 */
export async function readServablePartial(archive: ArchiveReader, name: string): Promise<ServablePartial | null> {
  const found = await readFirstPartial(archive, name);
  if (!found) return null;
  const { method } = compressionOfName(found.fileName.slice(0, -'.partial'.length));
  const decoded = await decodeFrames(method, found.raw);
  const path = archive.locate(found.fileName);
  const damaged = (why: string) =>
    new WalstreamError('ARCHIVE_DAMAGED', `archived "${path}" ${why}; the archived copy is damaged: remove it or replace it from another copy of the archive`);
  if (decoded.error && decoded.data.length === 0 && found.raw.length > 0) throw damaged(`does not decode (${decoded.error})`);
  const header = decodeLongPageHeader(decoded.data);
  if (!header || header.magic === 0) return null; // created, nothing written yet
  if (!isWalPageMagic(header.magic)) throw damaged(`has page magic 0x${header.magic.toString(16)}, not a WAL page`);
  const segmentSize = header.segmentSize;
  const segment = isValidSegmentSize(segmentSize) ? parseSegmentFileName(name, segmentSize) : null;
  if (!segment) throw damaged(`says segment size ${segmentSize} in its page header, which segment ${name} cannot have`);
  if (header.pageAddress !== segment.segno * BigInt(segmentSize)) throw damaged(`has page address ${header.pageAddress.toString(16).toUpperCase()}, not that of segment ${name}`);
  if (header.timeline < 1 || header.timeline > segment.timeline) throw damaged(`has timeline ${header.timeline} in its first page, ${segment.timeline} in its name`);
  if (decoded.data.length > segmentSize) throw damaged(`holds ${decoded.data.length} bytes, more than a ${segmentSize}-byte segment`);
  if (await laterSegmentArchived(archive, segment.timeline, segment.segno, segmentSize)) return null;
  return { fileName: found.fileName, data: decoded.data, segmentSize };
}

/** The first of NAME.partial, NAME.gz.partial, NAME.lz4.partial, NAME.zst.partial that exists, read whole. */
async function readFirstPartial(archive: ArchiveReader, name: string): Promise<{ fileName: string; raw: Buffer } | null> {
  for (const suffix of Object.values(COMPRESSION_SUFFIX)) {
    const fileName = `${name}${suffix}.partial`;
    const raw = await archive.read(fileName);
    if (raw) return { fileName, raw };
  }
  return null;
}

/** Whether the archive holds any segment file (complete or not) of `timeline` after `segno`. */
async function laterSegmentArchived(archive: ArchiveReader, timeline: number, segno: bigint, segmentSize: number): Promise<boolean> {
  for (const { name } of await archive.entries()) {
    const s = parseArchivedName(name, segmentSize);
    if (s && s.timeline === timeline && s.segno > segno) return true;
  }
  return false;
}
