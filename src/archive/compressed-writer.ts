/**
 * A segment written compressed (NAME.gz.partial etc., renamed to NAME.gz when complete). WAL is
 * gathered into frames of FRAME_BYTES; each frame is compressed off the event loop (gzip and zstd on
 * libuv's thread pool, lz4 on its worker thread, codec.ts) while the next one fills (up to
 * codec.ts's framesInFlight() at once, then write() makes the receiver wait: memory stays flat) and
 * frames are appended to the file in order. A sync also closes the frame being filled, so what is
 * durable is always whole frames: a decodable prefix of the segment, whatever moment a crash picks.
 */
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import type { CloseMode, WalSegmentWriter } from './sink.js';
import { type Compression, type FrameSpace, framesInFlight, takeFrameSpace } from './codec.js';

const fdatasync = promisify(fs.fdatasync);
const closeFd = promisify(fs.close);

/** Uncompressed bytes per frame: large enough that frame headers and a fresh dictionary cost little. */
export const FRAME_BYTES = 1 << 20;

/** What the writer needs of its archive. */
export interface CompressedFileHost {
  readonly noSync: boolean;
  /** fsync the archive directory (a new name or a rename must survive a crash). */
  syncDirectory(): Promise<void>;
  /** Wrap a failed file operation into the archive's one-line error. */
  ioError(what: string, file: string, err: unknown): Error;
}

export interface CompressedSegmentPaths {
  /** NAME.EXT.partial: the segment while it is written. */
  partial: string;
  /** NAME.EXT: the segment once complete. */
  final: string;
  /**
   * Set when an earlier run left a .partial holding `keepLength` decodable bytes (known once it is
   * decoded): the new stream goes to this temporary file, which replaces the old .partial only once it
   * holds at least as much (so a crash meanwhile never loses what the earlier run made durable).
   */
  temp?: string;
  keepLength?: Promise<number>;
}

export class CompressedSegmentWriter implements WalSegmentWriter {
  /** Where the frame being filled gathers (taken at the first byte of each frame). */
  private staging: FrameSpace | null = null;
  private staged = 0;
  /** Uncompressed bytes accepted by write(), and those whose frames are in the file. */
  private accepted = 0;
  private inFile = 0;
  private filePosition = 0;
  private framesInFlight = 0;
  private readonly maxInFlight: number;
  /** Frames are appended in this order; its promise settles once the newest is in the file. */
  private appendChain: Promise<void> = Promise.resolve();
  /** Syncs and the close run one after another. */
  private syncChain: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  private roomWaiters: Array<() => void> = [];
  /** The file being written: paths.temp until it replaced the old .partial, then paths.partial. */
  private current: string;
  private entrySynced = false;

  constructor(
    private readonly host: CompressedFileHost,
    private readonly compression: Compression,
    private readonly fd: number,
    private readonly paths: CompressedSegmentPaths,
  ) {
    this.current = paths.temp ?? paths.partial;
    this.maxInFlight = framesInFlight(compression.method);
  }

  unwritten(): number {
    return this.accepted - this.inFile;
  }

  write(data: Uint8Array): void | Promise<void> {
    if (this.failure) throw this.failure;
    let done = 0;
    while (done < data.length) {
      const n = Math.min(data.length - done, FRAME_BYTES - this.staged);
      (this.staging ??= takeFrameSpace(this.compression, FRAME_BYTES)).input.set(data.subarray(done, done + n), this.staged);
      this.staged += n;
      done += n;
      if (this.staged === FRAME_BYTES) this.closeFrame();
    }
    this.accepted += data.length;
    if (this.framesInFlight >= this.maxInFlight) return new Promise<void>((resolve) => this.roomWaiters.push(resolve)).then(() => this.throwIfFailed());
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** Hand the frame being filled to the compressor; its output is appended after the frames before it. */
  private closeFrame(): void {
    if (this.staged === 0) return;
    const space = this.staging!;
    const inputLength = this.staged;
    this.staging = null;
    this.staged = 0;
    this.framesInFlight++;
    const compressed = space.compress(inputLength);
    compressed.catch(() => {}); // reported through the chain below
    this.appendChain = this.appendChain.then(async () => {
      let frame: { bytes: Uint8Array; release(): void } | undefined;
      try {
        frame = await compressed; // awaited even after a failure: its space is released below
        if (this.failure) return;
        // A write into the page cache of a frame (a fraction of 1 MiB) takes microseconds: done here,
        // it leaves the thread pool to the compressors and the syncs.
        const bytes = frame.bytes;
        for (let done = 0; done < bytes.length;) {
          done += fs.writeSync(this.fd, bytes, done, bytes.length - done, this.filePosition + done);
        }
        this.filePosition += bytes.length;
        this.inFile += inputLength;
      } catch (err) {
        this.failure ??= this.host.ioError('write', this.current, err);
      } finally {
        frame?.release();
        this.framesInFlight--;
        this.roomWaiters.shift()?.();
      }
    });
  }

  /** Every frame so far in the file and on disk; the temporary file takes the .partial's place once it holds as much. */
  sync(): Promise<void> {
    this.closeFrame();
    const appended = this.appendChain;
    this.syncChain = this.syncChain.then(async () => {
      await appended;
      this.throwIfFailed();
      try {
        if (!this.host.noSync) await fdatasync(this.fd);
        if (this.paths.temp && this.current === this.paths.temp && this.inFile >= await (this.paths.keepLength ?? 0)) {
          await fs.promises.rename(this.paths.temp, this.paths.partial);
          this.current = this.paths.partial;
          this.entrySynced = false;
        }
        if (!this.entrySynced && !this.host.noSync) await this.host.syncDirectory();
        this.entrySynced = true;
      } catch (err) {
        throw (this.failure ??= this.host.ioError('fsync', this.current, err));
      }
    });
    return this.syncChain;
  }

  close(mode: CloseMode): Promise<void> {
    const closed = this.sync(); // hands the frame being filled to the compressor
    return closed.then(
      async () => {
        await closeFd(this.fd);
        try {
          if (mode === 'complete') {
            await fs.promises.rename(this.current, this.paths.final);
            // The stream replaced an earlier run's .partial without ever renaming over it.
            if (this.current === this.paths.temp) await fs.promises.rm(this.paths.partial, { force: true });
          } else if (this.current === this.paths.temp) {
            await fs.promises.rm(this.paths.temp, { force: true }); // the earlier .partial holds more
          }
          if (!this.host.noSync) await this.host.syncDirectory();
        } catch (err) {
          throw this.host.ioError(mode === 'complete' ? 'complete' : 'close', this.current, err);
        }
      },
      async (err) => {
        await closeFd(this.fd).catch(() => {});
        throw err;
      },
    );
  }
}
