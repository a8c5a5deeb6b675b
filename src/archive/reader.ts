/**
 * Reading an archive back, wherever it is: the interface `restore`, `cleanup` and `status` use, with a
 * directory implementation here (node built-ins only: `walstream restore` starts once per segment and
 * must stay light) and the bucket one in s3-store.ts. Writing goes through WalSink (sink.ts).
 */
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { WalstreamError } from '../errors.js';

/** A stored file: its name in the archive and its size in bytes. */
export interface ArchiveEntry {
  name: string;
  size: number;
  /**
   * When it was last written, ms since the epoch, where the archive says (a file's mtime, an object's
   * LastModified: its upload); `status` reports WAL's age from it.
   */
  modifiedMs?: number;
}

/** An archive's files, read-only except for remove (cleanup). */
export interface ArchiveReader {
  /** Where the archive is, for messages: a directory path or s3://bucket/prefix. */
  describe(): string;
  /** Where one file is, for messages. */
  locate(name: string): string;
  /** Throws ARCHIVE_MISSING with what to check when the archive cannot be read at all. */
  check(): Promise<void>;
  /** Every file directly in the archive, with sizes. */
  entries(): Promise<ArchiveEntry[]>;
  /**
   * A file's bytes as a stream (only its first `length` bytes when given: a header), or null when absent
   * (ARCHIVE_IO when it cannot be read).
   */
  openRead(name: string, length?: number): Promise<Readable | null>;
  /** A file's whole content, or null when absent. */
  read(name: string): Promise<Buffer | null>;
  /** Delete a file (absent is fine). */
  remove(name: string): Promise<void>;
  /** Optional: store a small file whole (verify's watermark in a bucket; a directory writes through DirectorySink). */
  put?(name: string, data: Uint8Array): Promise<void>;
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}

/**
 * An archive directory, as `walstream receive -D` writes it.
 *
 * @example
 * ```ts
 * import { DirectoryReader } from 'pg-walstream';
 *
 * const archive = new DirectoryReader('/var/lib/walstream/archive');
 * for (const { name, size } of await archive.entries()) console.log(name, size);
 * ```
 */
export class DirectoryReader implements ArchiveReader {
  constructor(readonly directory: string) {}

  describe(): string {
    return this.directory;
  }

  locate(name: string): string {
    return join(this.directory, name);
  }

  async check(): Promise<void> {
    let isDir: boolean;
    try {
      isDir = (await stat(this.directory)).isDirectory();
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new WalstreamError('ARCHIVE_MISSING', `archive directory "${this.directory}" does not exist; check the archive path (it must be the directory walstream receive writes to)`, { cause: err });
      }
      throw new WalstreamError('ARCHIVE_IO', `cannot access archive directory "${this.directory}": ${(err as Error).message}; check its permissions`, { cause: err });
    }
    if (!isDir) throw new WalstreamError('ARCHIVE_MISSING', `archive path "${this.directory}" is not a directory; point it at the archive directory`);
  }

  async entries(): Promise<ArchiveEntry[]> {
    const names = await readdir(this.directory);
    const result: ArchiveEntry[] = [];
    for (const name of names) {
      try {
        const s = await stat(join(this.directory, name));
        if (s.isFile()) result.push({ name, size: s.size, modifiedMs: s.mtimeMs });
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err; // removed meanwhile: not there
      }
    }
    return result;
  }

  async openRead(name: string, length?: number): Promise<Readable | null> {
    const path = this.locate(name);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw new WalstreamError('ARCHIVE_IO', `cannot open archived file "${path}": ${(err as Error).message}; check its permissions`, { cause: err });
    }
    let regular = false;
    try {
      regular = (await handle.stat()).isFile();
    } catch {
      regular = false;
    }
    if (!regular) {
      await handle.close().catch(() => undefined);
      throw new WalstreamError('ARCHIVE_IO', `archived path "${path}" is not a regular file; remove or rename it`);
    }
    if (length !== undefined) return createReadStream('', { fd: handle, start: 0, end: Math.max(0, length - 1), highWaterMark: Math.max(1, Math.min(length, 1 << 20)) });
    return createReadStream('', { fd: handle, highWaterMark: 1 << 20 });
  }

  async read(name: string): Promise<Buffer | null> {
    try {
      return await readFile(this.locate(name));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw new WalstreamError('ARCHIVE_IO', `cannot read archived "${this.locate(name)}": ${(err as Error).message}; check its permissions`, { cause: err });
    }
  }

  async remove(name: string): Promise<void> {
    await rm(this.locate(name), { force: true });
  }
}

/** The first `length` bytes of an archived file (fewer if it is shorter); null when absent. */
export async function readArchiveHead(archive: ArchiveReader, name: string, length: number): Promise<Buffer | null> {
  const stream = await archive.openRead(name, length);
  if (!stream) return null;
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      got += (chunk as Buffer).length;
      if (got >= length) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, length);
}
