/**
 * The prefetch helper's one write: an archived segment, decoded, into the spool, atomically (written
 * under a temporary name, renamed) and only when it is the whole segment its name says (the checks the archiver applies to a finished segment,
 * scan.ts segmentFileProblem: full size, long page header with the name's page address, timeline and
 * the segment size). A file that fails them is never spooled: the restore call then reads the archive
 * itself and reports the damage to PostgreSQL.
 */
import { copyFile, open, readFile, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { COMPRESSION_SUFFIX } from '../archive/codec.js';
import { LONG_HEADER_LENGTH, parseArchivedName, segmentFileProblem } from '../archive/scan.js';
import { isValidSegmentSize } from '../lsn.js';
import { decodeArchivedFile } from './decode.js';
import { TEMP_PREFIX } from './spool.js';

/** The archive file holding segment `name` complete (plain first, as restore.ts tries them), or null. */
export async function archivedSegmentFile(archiveDir: string, name: string): Promise<string | null> {
  for (const suffix of Object.values(COMPRESSION_SUFFIX)) {
    const path = join(archiveDir, name + suffix);
    try {
      const handle = await open(path, 'r');
      await handle.close();
      return path;
    } catch {
      // absent or unreadable: try the next form
    }
  }
  return null;
}

/**
 * Put segment `name` from `archiveDir` into `spoolDir` as NAME: decoded into `.tmp.NAME`, checked,
 * renamed. Resolves why it was not spooled (absent, damaged, unreadable), or null when it was.
 * Leaves no temp file behind.
 */
export async function spoolSegment(archiveDir: string, spoolDir: string, name: string, segmentSize: number): Promise<string | null> {
  const source = await archivedSegmentFile(archiveDir, name);
  const segment = parseArchivedName(name, segmentSize);
  if (!source || !segment) return 'not archived';
  const temp = join(spoolDir, TEMP_PREFIX + name);
  let out: FileHandle | null = null;
  try {
    if (source.endsWith(name)) {
      await copyFile(source, temp); // copy_file_range: no trip through this process
    } else {
      await copyDecoded(source, temp);
    }
    out = await open(temp, 'r+');
    const size = (await out.stat()).size;
    const head = Buffer.alloc(LONG_HEADER_LENGTH);
    await out.read(head, 0, LONG_HEADER_LENGTH, 0);
    const problem = segmentFileProblem(segment, size, head, segmentSize);
    if (problem) throw new Error(`${source} ${problem}`);
    await out.close(); // not fsynced, as restore_command = 'cp' does not: see spool.ts helperServing
    out = null;
    await rename(temp, join(spoolDir, name));
    return null;
  } catch (err) {
    await out?.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    return (err as Error).message;
  }
}

/** Decode `source` into a new file `temp`: the decoded parts in one writev, no concatenated copy. */
async function copyDecoded(source: string, temp: string): Promise<void> {
  const parts = await decodeArchivedFile(source, await readFile(source));
  const out = await open(temp, 'w');
  try {
    let rest = parts.filter((part) => part.length > 0);
    while (rest.length > 0) {
      let { bytesWritten } = await out.writev(rest);
      if (bytesWritten <= 0) throw new Error(`could not write ${temp}`);
      while (rest.length > 0 && bytesWritten >= rest[0]!.length) bytesWritten -= rest.shift()!.length;
      if (bytesWritten > 0) rest[0] = rest[0]!.subarray(bytesWritten);
    }
  } finally {
    await out.close();
  }
}

/**
 * The segment size of archived segment `name` (plain or compressed): its decoded size when that is a
 * valid segment size its name can have and its long page header says the same; null otherwise. For a
 * helper started before the size was known (a compressed first segment).
 */
export async function archivedSegmentSize(archiveDir: string, name: string): Promise<number | null> {
  const source = await archivedSegmentFile(archiveDir, name);
  if (!source) return null;
  try {
    const parts = await decodeArchivedFile(source, await readFile(source));
    const size = parts.reduce((sum, part) => sum + part.length, 0);
    const segment = isValidSegmentSize(size) ? parseArchivedName(name, size) : null;
    const head = Buffer.concat(parts, LONG_HEADER_LENGTH);
    return segment && segmentFileProblem(segment, size, head, size) === null ? size : null;
  } catch {
    return null;
  }
}
