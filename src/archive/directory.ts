/**
 * The local-directory sink: NAME.partial while written, fsync, rename to NAME when complete, fsync the
 * directory. A .partial is full segment size from the start (ftruncate: zeros after the data, as
 * pg_receivewal's, without writing every segment twice as its zero pre-padding does).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { WalstreamError } from '../errors.js';
import type { CloseMode, WalSegmentWriter, WalSink } from './sink.js';

const fdatasync = promisify(fs.fdatasync);
const fsyncFd = promisify(fs.fsync);
const closeFd = promisify(fs.close);

export interface DirectorySinkOptions {
  /** Skip every fsync: faster, not crash-safe. For tests only (pg_receivewal's --no-sync). */
  noSync?: boolean;
}

function ioError(what: string, file: string, err: unknown): WalstreamError {
  const reason = (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err);
  return new WalstreamError('ARCHIVE_IO', `could not ${what} "${file}": ${reason}; check the archive directory's disk space and permissions`, { cause: err });
}

/** fsync a directory so a rename or a new file in it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const fd = await fs.promises.open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

class DirectorySegmentWriter implements WalSegmentWriter {
  /** Async operations on this fd run one after another (never close while an fsync runs). */
  private queue: Promise<void> = Promise.resolve();
  private position = 0;

  constructor(
    private readonly sink: DirectorySink,
    private readonly fd: number,
    private readonly name: string,
  ) {}

  write(data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      try {
        done += fs.writeSync(this.fd, data, done, data.length - done, this.position + done);
      } catch (err) {
        throw ioError('write', this.sink.pathOf(this.name + '.partial'), err);
      }
    }
    this.position += data.length;
  }

  sync(): Promise<void> {
    if (this.sink.noSync) return this.queue;
    this.queue = this.queue.then(() => fdatasync(this.fd)).catch((err) => { throw ioError('fsync', this.sink.pathOf(this.name + '.partial'), err); });
    return this.queue;
  }

  syncNow(): void {
    if (this.sink.noSync) return;
    try {
      fs.fdatasyncSync(this.fd);
    } catch (err) {
      throw ioError('fsync', this.sink.pathOf(this.name + '.partial'), err);
    }
  }

  close(mode: CloseMode): Promise<void> {
    const partial = this.sink.pathOf(this.name + '.partial');
    const final = this.sink.pathOf(this.name);
    this.queue = this.queue.then(async () => {
      try {
        if (!this.sink.noSync) await fsyncFd(this.fd);
        await closeFd(this.fd);
        if (mode === 'complete') {
          await fs.promises.rename(partial, final);
          if (!this.sink.noSync) await syncDirectory(this.sink.directory);
        }
      } catch (err) {
        throw ioError(mode === 'complete' ? 'complete' : 'close', partial, err);
      }
    });
    return this.queue;
  }
}

/**
 * Archive into a local directory, the way pg_receivewal lays it out. Subclass it (or wrap its
 * writers) to add a step after each durable segment, such as an upload.
 *
 * @example
 * ```ts
 * import { Archiver, DirectorySink } from 'pg-walstream';
 *
 * const sink = new DirectorySink('/var/lib/walstream/archive');
 * await new Archiver({ connection: 'host=primary user=replicator', sink }).run();
 * ```
 */
export class DirectorySink implements WalSink {
  readonly directory: string;
  readonly noSync: boolean;

  constructor(directory: string, options: DirectorySinkOptions = {}) {
    this.directory = directory;
    this.noSync = options.noSync ?? false;
  }

  /** Absolute path of a file in the archive. */
  pathOf(name: string): string {
    return path.join(this.directory, name);
  }

  /** Throws WalstreamError('ARCHIVE_MISSING') unless the directory exists and is writable. */
  async check(): Promise<void> {
    try {
      const stat = await fs.promises.stat(this.directory);
      if (!stat.isDirectory()) throw new Error('not a directory');
      await fs.promises.access(this.directory, fs.constants.W_OK);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException)?.code === 'ENOENT' ? 'does not exist' : (err as Error).message;
      throw new WalstreamError('ARCHIVE_MISSING', `archive directory "${this.directory}" ${reason}; create it (mkdir) or pass an existing directory with -D`);
    }
  }

  async list(): Promise<string[]> {
    return fs.promises.readdir(this.directory);
  }

  async readHead(name: string, length: number): Promise<Uint8Array | null> {
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(this.pathOf(name), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw ioError('open', this.pathOf(name), err);
    }
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buf, 0, length, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  openSegment(name: string, segmentSize: number): WalSegmentWriter {
    const partial = this.pathOf(name + '.partial');
    try {
      // Reuse an existing .partial in place (its data is rewritten from offset 0 with the same bytes),
      // so a crash now never loses what an earlier run made durable.
      let fd: number;
      try {
        fd = fs.openSync(partial, 'r+');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        fd = fs.openSync(partial, 'w');
      }
      if (fs.fstatSync(fd).size !== segmentSize) fs.ftruncateSync(fd, segmentSize);
      return new DirectorySegmentWriter(this, fd, name);
    } catch (err) {
      throw ioError('create', partial, err);
    }
  }

  async writeFile(name: string, content: Uint8Array): Promise<void> {
    const final = this.pathOf(name);
    const temp = this.pathOf(`${name}.tmp`);
    try {
      const handle = await fs.promises.open(temp, 'w');
      try {
        await handle.writeFile(content);
        if (!this.noSync) await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.promises.rename(temp, final);
      if (!this.noSync) await syncDirectory(this.directory);
    } catch (err) {
      await fs.promises.rm(temp, { force: true }).catch(() => {});
      throw ioError('write', final, err);
    }
  }
}
