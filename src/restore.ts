/**
 * Fetch one file out of a walstream archive directory for PostgreSQL recovery: the library half of
 * `restore_command` (the command-line half is src/cli/restore.ts, which must stay light, so this module
 * imports only node built-ins, errors.ts and lsn.ts).
 *
 * The contract PostgreSQL expects of restore_command (RestoreArchivedFile in
 * src/backend/access/transam/xlogarchive.c): copy archive file %f to path %p, succeed only when the copy
 * is complete, and report "not there" separately from "broken". PostgreSQL removes %p before running the
 * command and reads it only after exit 0 (checking a segment's size), so the file is written at %p itself:
 * nothing else is ever created in the data directory, not even a temp file beside %p.
 */
import { open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { WalstreamError } from './errors.js';
import { wholeFileDecoder } from './archive/codec.js';
import { readServablePartial } from './restore/partial.js';
import { type ArchiveReader, DirectoryReader } from './archive/reader.js';
import { isValidSegmentSize, parseSegmentFileName } from './lsn.js';

/**
 * How an archived file may be stored besides plain: the suffix on its name and a factory for the stream
 * that undoes it. Candidates are tried in this order after the plain name. This is the extension point
 * for `.lz4` and `.zst`: add a row whose `create` returns a Transform producing the original bytes.
 */
interface Decompressor {
  suffix: string;
  /** Format name used in error messages. */
  format: string;
  create: () => Transform;
}

const DECOMPRESSORS: readonly Decompressor[] = [
  { suffix: '.gz', format: 'gzip', create: () => createGunzip() },
  { suffix: '.lz4', format: 'lz4', create: () => wholeFileDecoder('lz4') },
  { suffix: '.zst', format: 'zstd', create: () => wholeFileDecoder('zstd') },
];

/** The largest output a segment may have (1 GB); reading stops past it instead of filling the disk. */
const MAX_SEGMENT_BYTES = 1 << 30;

/** A 24-hex-digit WAL segment name, as PostgreSQL's IsXLogFileName (access/xlog_internal.h) accepts it. */
const SEGMENT_NAME = /^[0-9A-F]{24}$/;

/** 'partial': absent, and served from its newest `.partial` (padded to a whole segment) under `includePartial`. */
export type RestoreResult = 'restored' | 'missing' | 'partial';

export interface RestoreOptions {
  /** The archive directory (what was given to `walstream receive -D`); or give `archive`. */
  archiveDir?: string;
  /** The archive to read (a DirectoryReader, or an S3Store for a bucket); takes the place of archiveDir. */
  archive?: ArchiveReader;
  /** The file recovery asks for (%f): a segment name, a `.history`, `.backup` or `.partial` name. */
  walFileName: string;
  /** Where to put it (%p), usually pg_wal/RECOVERYXLOG or pg_wal/RECOVERYHISTORY. */
  destination: string;
  /**
   * When the segment is absent but `NAME.partial` (or a compressed `NAME.EXT.partial`) is the newest file
   * of the archive on its timeline, serve it padded with zeros to a whole segment. Default false.
   */
  includePartial?: boolean;
}

/**
 * Copy `walFileName` out of `archiveDir` to `destination`, trying the plain file and then each compressed
 * form (NAME.gz, .lz4, .zst). Resolves 'restored' once `destination` holds the complete, fsynced content,
 * 'partial' when `includePartial` served the segment's newest `.partial` instead (see RestoreOptions), or
 * 'missing' when there is nothing to serve, leaving `destination` untouched. Throws WalstreamError:
 * ARCHIVE_MISSING when the archive directory does not exist, ARCHIVE_DAMAGED when the archived copy is
 * corrupt (undecodable compression, a segment whose size is not a valid segment size, a .partial whose
 * page header is not its segment's), ARCHIVE_IO for other I/O failures, BAD_OPTION for a file name that
 * is not a plain name. After a throw `destination` does not exist (a partly written one is removed).
 */
export async function restoreWalFile(opts: RestoreOptions): Promise<RestoreResult> {
  checkFileName(opts.walFileName);
  const archive = opts.archive ?? new DirectoryReader(requireDir(opts.archiveDir));
  await archive.check();

  const found = await openFirstCandidate(archive, opts.walFileName);
  if (!found) {
    if (!opts.includePartial || !SEGMENT_NAME.test(opts.walFileName)) return 'missing';
    const partial = await readServablePartial(archive, opts.walFileName);
    if (!partial) return 'missing';
    await writeDestination(opts.destination, async (out) => {
      await out.write(partial.data);
      await out.truncate(partial.segmentSize); // zeros after the data, as a .partial on disk has them
    });
    return 'partial';
  }
  try {
    await writeDestination(opts.destination, async (out) => {
      const written = await streamInto(found, out, SEGMENT_NAME.test(opts.walFileName));
      if (SEGMENT_NAME.test(opts.walFileName)) checkSegment(found.path, opts.walFileName, written);
    });
  } finally {
    found.input.destroy();
  }
  return 'restored';
}

function requireDir(dir: string | undefined): string {
  if (dir === undefined) throw new WalstreamError('BAD_OPTION', 'no archive given: pass archiveDir or archive');
  return dir;
}

/** Only plain names: %f never carries a directory, and anything else could read outside the archive. */
function checkFileName(name: string): void {
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
    throw new WalstreamError(
      'BAD_OPTION',
      `invalid WAL file name "${name}"; pass a plain file name such as 000000010000000000000001 or 00000002.history (%f)`,
    );
  }
}

interface Candidate {
  /** Where it is, for messages. */
  path: string;
  input: Readable;
  decompressor: Decompressor | null;
}

/** Open the first existing candidate (plain, then each DECOMPRESSORS suffix); null when none exists. */
async function openFirstCandidate(archive: ArchiveReader, name: string): Promise<Candidate | null> {
  const candidates: Array<{ name: string; decompressor: Decompressor | null }> = [
    { name, decompressor: null },
    ...DECOMPRESSORS.map((d) => ({ name: name + d.suffix, decompressor: d })),
  ];
  for (const candidate of candidates) {
    const input = await archive.openRead(candidate.name);
    if (input) return { path: archive.locate(candidate.name), input, decompressor: candidate.decompressor };
  }
  return null;
}

/**
 * Write `destination` (%p) through `fill`, then fsync it and its directory. Any failure removes the
 * partly written file; the error from `fill` passes through, I/O errors become ARCHIVE_IO.
 */
async function writeDestination(destination: string, fill: (out: FileHandle) => Promise<void>): Promise<void> {
  let out: FileHandle;
  try {
    out = await open(destination, 'w');
  } catch (err) {
    throw new WalstreamError('ARCHIVE_IO', `cannot create "${destination}": ${errMessage(err)}; check that the destination directory exists and is writable`, {
      cause: err,
    });
  }
  let isOpen = true;
  try {
    await fill(out);
    try {
      await out.sync();
      isOpen = false;
      await out.close();
    } catch (err) {
      throw new WalstreamError('ARCHIVE_IO', `cannot write "${destination}": ${errMessage(err)}; check free space and permissions there`, {
        cause: err,
      });
    }
  } catch (err) {
    if (isOpen) await out.close().catch(() => undefined);
    await rm(destination, { force: true }).catch(() => undefined);
    throw err;
  }
  await syncDirectory(dirname(destination));
}

/** Copy the candidate's (decoded) bytes into `out`; returns the byte count. */
async function streamInto(source: Candidate, out: FileHandle, isSegment: boolean): Promise<number> {
  const input = source.input;
  let written = 0;
  let writeError: unknown = null;
  const sink = async (chunks: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of chunks) {
      written += chunk.length;
      if (isSegment && written > MAX_SEGMENT_BYTES) {
        throw new WalstreamError(
          'ARCHIVE_DAMAGED',
          `archived segment "${source.path}" decodes to more than 1 GB, larger than any WAL segment; the archived copy is damaged: replace it from another copy of the archive`,
        );
      }
      try {
        await out.write(chunk);
      } catch (err) {
        writeError = err;
        throw err;
      }
    }
  };

  const decoder = source.decompressor?.create() ?? null;
  let decodeError: unknown = null;
  decoder?.once('error', (err) => {
    decodeError = err;
  });
  try {
    if (decoder) await pipeline(input, decoder, sink);
    else await pipeline(input, sink);
  } catch (err) {
    if (err instanceof WalstreamError) throw err;
    if (decoder && err === decodeError) {
      throw new WalstreamError(
        'ARCHIVE_DAMAGED',
        `archived file "${source.path}" is not valid ${source.decompressor!.format} data (${errMessage(err)}); the archived copy is damaged: replace it from another copy of the archive`,
        { cause: err },
      );
    }
    if (err === writeError) {
      throw new WalstreamError('ARCHIVE_IO', `cannot write restored data: ${errMessage(err)}; check free space and permissions at the destination`, {
        cause: err,
      });
    }
    throw new WalstreamError('ARCHIVE_IO', `cannot read archived file "${source.path}": ${errMessage(err)}; check the archive's disk and permissions`, {
      cause: err,
    });
  }
  return written;
}

/** A segment must come out as a whole segment: a valid size, and a name possible for that size. */
function checkSegment(path: string, name: string, size: number): void {
  if (!isValidSegmentSize(size)) {
    throw new WalstreamError(
      'ARCHIVE_DAMAGED',
      `archived segment "${path}" holds ${size} bytes, not a WAL segment size (a power of two from 1 MB to 1 GB); the archived copy is truncated or damaged: replace it from another copy of the archive`,
    );
  }
  if (parseSegmentFileName(name, size) === null) {
    throw new WalstreamError(
      'ARCHIVE_DAMAGED',
      `archived segment "${path}" holds ${size} bytes, but segment name ${name} cannot exist with ${size}-byte segments; the archived copy is truncated or damaged: replace it from another copy of the archive`,
    );
  }
}

/** Make the rename durable; best effort (some filesystems refuse fsync on a directory). */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | null = null;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // The file itself is complete and fsynced; a crash before the directory entry is durable only means
    // recovery asks for the file again.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
