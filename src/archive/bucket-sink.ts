/**
 * The bucket archive: WAL goes into a local spool directory first (a DirectorySink: fsync, rename,
 * exactly as without a bucket), and each finished file is then uploaded (see uploader.ts). What the
 * archive holds is the union of the spool and the bucket, so resuming works when the spool was trimmed
 * (--keep-local) or lost.
 *
 * With `flushAfterUpload`, flushLimit() keeps the reported flush position (and so a slot's restart_lsn)
 * at the start of the oldest segment the bucket does not hold yet, or within the segment being written
 * at what its last partial upload covered: the primary never drops WAL that is only on this machine.
 */
import { readFile } from 'node:fs/promises';
import { parseSegmentFileName } from '../lsn.js';
import { COMPRESSION_SUFFIX, decodeFrames } from './codec.js';
import { DirectorySink } from './directory.js';
import type { S3Store } from './s3-store.js';
import { readArchiveHead } from './reader.js';
import type { UploadStatus } from '../archiver-status.js';
import { type CloseMode, type WalSegmentWriter, type WalSink, asideName } from './sink.js';
import { Uploader, type UploaderOptions } from './uploader.js';

export interface BucketSinkOptions extends UploaderOptions {
  /** Report flush only up to what the bucket holds (see flushLimit). Default false: after local fsync. */
  flushAfterUpload?: boolean;
  /** Seconds between uploads of the segment in progress as NAME.partial (default: none until it ends). */
  uploadPartialEverySeconds?: number;
  /** How long close() waits for queued uploads before leaving them for the next run (default 60 s). */
  drainTimeoutMs?: number;
}

/** How long resuming waits for the bucket's start-up listing (a store that answered HeadBucket). */
const LISTING_WAIT_MS = 30_000;

/** The segment being written: how far it is written and durable, and what its partial upload covers. */
interface OpenSegment {
  name: string;
  startLsn: bigint;
  written: number;
  synced: number;
  /** Raw WAL bytes of this segment the bucket holds as NAME.partial. */
  uploaded: number;
  uploading: Promise<void> | null;
}

/**
 * A WalSink into `s3://bucket/prefix` through a local spool directory (what `receive --target` uses).
 *
 * @example
 * ```ts
 * import { Archiver, BucketSink, DirectorySink, S3Store } from 'pg-walstream';
 *
 * const sink = new BucketSink(new DirectorySink('/var/lib/walstream/spool'), new S3Store('s3://wal-archive/cluster-a'), {
 *   flushAfterUpload: true,
 *   keepLocal: 16,
 * });
 * await new Archiver({ connection: 'host=primary user=replicator', slot: 'walstream', sink }).run();
 * ```
 */
export class BucketSink implements WalSink {
  readonly uploader: Uploader;
  private open: OpenSegment | null = null;
  /**
   * Segments finishing (fsync, rename) whose upload is not queued yet: between the next segment opening
   * and the enqueue, they still bound the flush limit.
   */
  private readonly finishing = new Set<OpenSegment>();
  private partialTimer: NodeJS.Timeout | null = null;
  /** Uploads of segments closed as .partial, which close() waits for (see finishPartial). */
  private readonly finalUploads = new Set<Promise<void>>();
  /** Called when flushLimit() may have moved (an upload was confirmed). */
  private flushListener: (() => void) | null = null;
  private started = false;
  private closing = false;
  /** The start-up listing of the bucket (background; see startUploads). */
  private listing: Promise<void> = Promise.resolve();
  /** Segment size, known from the first segment opened (needed to turn a segment name into an LSN). */
  private segmentSize: number | null = null;

  constructor(readonly spool: DirectorySink, readonly store: S3Store, private readonly options: BucketSinkOptions = {}) {
    this.uploader = new Uploader(store, (name) => spool.pathOf(name), options);
    this.uploader.onConfirmed = (name) => this.confirmed(name);
  }

  /**
   * The spool must be writable and the bucket must exist and let us in (else a one-line error). A
   * store that does not answer now (down, 5xx) is not fatal: WAL goes to the spool meanwhile, and the
   * listing that finds what the bucket lacks is retried in the background until it answers.
   */
  async check(): Promise<void> {
    await this.spool.check();
    if (this.started) return;
    this.started = true;
    let answered = true;
    try {
      await this.store.check();
    } catch (err) {
      if (!isTransient(err)) throw err;
      answered = false;
      this.options.log?.('warn', `${(err as Error).message.replace(/; check the bucket.*$/, '')}; archiving into the spool meanwhile, uploads start once the store answers`);
    }
    // Until the listing says what the bucket holds, every finished spool file counts as not uploaded.
    this.uploader.expect(await this.spoolFiles());
    const listing = this.startUploads();
    // Resuming needs what the bucket holds (the spool may have been trimmed): wait for the listing of a
    // store that answered, never for one that is down.
    this.listing = answered ? Promise.race([listing, new Promise<void>((r) => setTimeout(r, LISTING_WAIT_MS).unref())]) : Promise.resolve();
    const every = this.options.uploadPartialEverySeconds;
    if (every && every > 0) {
      this.partialTimer = setInterval(() => void this.uploadPartial(), every * 1000);
      this.partialTimer.unref();
    }
  }

  /** List the bucket (retried with backoff until it answers or the sink closes), then queue what it lacks. */
  private async startUploads(): Promise<void> {
    for (let attempt = 0; !this.closing; attempt++) {
      try {
        const [objects, spool] = await Promise.all([this.store.entries(), this.spoolFiles()]);
        this.uploader.start(objects, spool);
        return;
      } catch (err) {
        if (attempt === 0) this.options.log?.('warn', `${(err as Error).message}; retrying`);
        await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 30_000)).unref?.());
      }
    }
  }

  private async spoolFiles(): Promise<{ name: string; size: number }[]> {
    const names = await this.spool.list();
    return Promise.all(names.map(async (name) => ({ name, size: (await this.spool.size(name)) ?? -1 })));
  }

  lock(): Promise<void> {
    return this.spool.lock();
  }

  useFileMode(mode: number): void {
    this.spool.useFileMode(mode);
  }

  /** Spool and bucket together (the bucket as listed at start-up plus what was uploaded since). */
  async list(): Promise<string[]> {
    await this.listing;
    const names = new Set(await this.spool.list());
    for (const name of this.uploader.objects().keys()) names.add(name);
    return [...names];
  }

  async size(name: string): Promise<number | null> {
    const local = await this.spool.size(name);
    return local ?? this.uploader.objects().get(name) ?? null;
  }

  async readHead(name: string, length: number): Promise<Uint8Array | null> {
    const local = await this.spool.readHead(name, length);
    if (local || !this.uploader.objects().has(name)) return local;
    return readArchiveHead(this.store, name, length);
  }

  async readFile(name: string): Promise<Uint8Array | null> {
    return (await this.spool.readFile(name)) ?? (this.uploader.objects().has(name) ? this.store.read(name) : null);
  }

  /** A file only in the bucket is set aside there (copied under the new name, then deleted). */
  async setAside(name: string, reason: string): Promise<string> {
    if ((await this.spool.size(name)) !== null) return this.spool.setAside(name, reason);
    const taken = new Set(await this.list());
    const aside = asideName(name, reason, taken);
    const data = await this.store.read(name);
    if (data) await this.store.put(aside, data);
    await this.store.remove(name);
    this.uploader.forget(name);
    return aside;
  }

  async writeFile(name: string, content: Uint8Array): Promise<void> {
    await this.spool.writeFile(name, content);
    void this.uploader.enqueue(name);
  }

  async openSegment(name: string, segmentSize: number): Promise<WalSegmentWriter> {
    const inner = await this.spool.openSegment(name, segmentSize);
    const parsed = parseSegmentFileName(name, segmentSize)!;
    this.segmentSize = segmentSize;
    // A segment resumed after a reconnect or restart: the bucket's NAME.partial (always raw WAL of this
    // very segment, uploaded by us) already holds its first bytes, so the limit does not fall back.
    const uploaded = this.uploader.objects().get(`${name}.partial`) ?? 0;
    const open: OpenSegment = { name, startLsn: parsed.segno * BigInt(segmentSize), written: 0, synced: 0, uploaded, uploading: null };
    this.open = open;
    return this.wrap(inner, open);
  }

  /**
   * With flushAfterUpload: the highest LSN the bucket is known to hold contiguously from what this run
   * reports: the start of the oldest finished segment still on its way, else the segment in progress's
   * start plus its uploaded partial. Null when nothing limits (or flushAfterUpload is off).
   */
  flushLimit(): bigint | null {
    if (!this.options.flushAfterUpload) return null;
    let limit: bigint | null = null;
    const lower = (lsn: bigint) => { if (limit === null || lsn < limit) limit = lsn; };
    for (const name of this.uploader.pending()) {
      // A NAME.partial on its way is not a limit of its own: the segment in progress counts only what
      // its confirmed partial holds (below), and a finished segment's range is covered by its own upload
      // or by the segment that took its place (the next timeline's, which holds the same WAL up to the
      // switch). Counting it would pull the report back to the segment's start during every partial upload.
      if (name.endsWith('.partial')) continue;
      const start = this.segmentStartOf(name);
      if (start !== null) lower(start);
    }
    if (this.open) lower(this.open.startLsn + BigInt(this.open.uploaded));
    for (const f of this.finishing) lower(f.startLsn + BigInt(f.uploaded));
    return limit;
  }

  /** Upload figures for status() and the metrics. */
  uploadStatus(): UploadStatus {
    return { pendingFiles: this.uploader.pending().length, ...this.uploader.stats };
  }

  /** `listener` runs whenever flushLimit() may have moved. */
  onFlushLimit(listener: (() => void) | null): void {
    this.flushListener = listener;
  }

  /** Wait for queued uploads (up to drainTimeoutMs), then release the spool and the client. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.partialTimer) clearInterval(this.partialTimer);
    this.partialTimer = null;
    try {
      const deadline = Date.now() + (this.options.drainTimeoutMs ?? 60_000);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.finalUploads]),
        new Promise((r) => { timer = setTimeout(r, deadline - Date.now()); }),
      ]);
      clearTimeout(timer);
      const drained = await this.uploader.drain(Math.max(0, deadline - Date.now()));
      if (!drained) this.options.log?.('warn', `stopping with ${this.uploader.pending().length} file(s) not yet in the bucket; they stay in the spool and are uploaded by the next run`);
      this.uploader.close();
      await this.store.close();
    } finally {
      await this.spool.close();
    }
  }

  private wrap(inner: WalSegmentWriter, open: OpenSegment): WalSegmentWriter {
    const sink = this;
    const writer: WalSegmentWriter = {
      get writesDirect() { return inner.writesDirect; },
      write(data) {
        open.written += data.length;
        return inner.write(data);
      },
      async sync() {
        const upTo = open.written;
        await inner.sync();
        if (upTo > open.synced) open.synced = upTo;
      },
      async close(mode: CloseMode) {
        const upTo = open.written;
        sink.finishing.add(open);
        try {
          await inner.close(mode);
          open.synced = Math.max(open.synced, upTo);
          if (sink.open === open) sink.open = null;
          if (mode === 'complete') {
            // A partial upload still waiting is stale now; the bucket's NAME.partial goes once the
            // complete segment is confirmed there (never before: it may be the only copy off this machine).
            sink.uploader.cancel(`${open.name}.partial`);
            const complete = open.name + COMPRESSION_SUFFIX[sink.spool.compression.method];
            void sink.uploader.enqueue(complete).then((stored) => {
              if (stored && sink.uploader.objects().has(`${open.name}.partial`)) return sink.uploader.removeObject(`${open.name}.partial`);
            });
          } else {
            sink.finishPartial(open); // never waits here: a store that is down must not hold up a stop
          }
        } finally {
          sink.finishing.delete(open);
        }
      },
    };
    if (inner.unwritten) writer.unwritten = () => inner.unwritten!();
    if (inner.syncNow) {
      writer.syncNow = () => {
        inner.syncNow!();
        open.synced = open.written;
      };
    }
    return writer;
  }

  /**
   * Upload what is durable of the segment in progress (or one just closed as .partial) as plain
   * NAME.partial: raw WAL, whatever the spool's compression, so restore --include-partial reads it.
   * Returns without waiting when an upload of it is already under way.
   */
  private async uploadPartial(open: OpenSegment | null = this.open): Promise<void> {
    if (!open || open.synced <= open.uploaded) return;
    if (open.uploading) return open.uploading;
    open.uploading = (async () => {
      const upTo = open.synced;
      const data = await this.readPartial(open.name, upTo);
      if (!data || data.length <= open.uploaded) return;
      await this.uploader.enqueue(`${open.name}.partial`, data);
      if (this.uploader.objects().get(`${open.name}.partial`) === data.length) {
        open.uploaded = data.length;
        this.flushListener?.();
      }
    })().catch((err) => this.options.log?.('warn', `could not read ${open.name}.partial for upload: ${(err as Error).message}`))
      .finally(() => { open.uploading = null; });
    return open.uploading;
  }

  /** Upload a segment closed as .partial up to its end, after any periodic upload of it under way. */
  private finishPartial(open: OpenSegment): void {
    const task = (async () => {
      for (let round = 0; round < 3 && open.synced > open.uploaded; round++) await this.uploadPartial(open);
    })();
    this.finalUploads.add(task);
    void task.finally(() => this.finalUploads.delete(task));
  }

  /** The first `length` raw bytes of the spool's NAME(.EXT).partial (decoded when compressed). */
  private async readPartial(name: string, length: number): Promise<Uint8Array | null> {
    const method = this.spool.compression.method;
    if (method === 'none') {
      const head = await this.spool.readHead(`${name}.partial`, length);
      return head ? head.subarray(0, length) : null;
    }
    const file = await readFile(this.spool.pathOf(`${name}${COMPRESSION_SUFFIX[method]}.partial`)).catch(() => null);
    if (!file) return null;
    const { data } = await decodeFrames(method, file);
    return data.subarray(0, Math.min(length, data.length));
  }

  private confirmed(name: string): void {
    if (this.options.flushAfterUpload && this.segmentStartOf(name) !== null) this.flushListener?.();
    // A partial upload that landed after its complete segment (it was in flight): remove it again.
    if (name.endsWith('.partial')) {
      const base = name.slice(0, -'.partial'.length);
      if (this.uploader.confirmed(base + COMPRESSION_SUFFIX[this.spool.compression.method])) void this.uploader.removeObject(name);
    }
  }

  /** The server's segment size, before streaming (so flushLimit() can place pending segments from the start). */
  useSegmentSize(size: number): void {
    this.segmentSize = size;
  }

  /** Start LSN of a segment file name (plain, compressed or .partial), or null for other files. */
  private segmentStartOf(name: string): bigint | null {
    const match = /^([0-9A-F]{24})(\.|$)/.exec(name);
    if (!match || this.segmentSize === null) return null;
    const parsed = parseSegmentFileName(match[1]!, this.segmentSize);
    return parsed ? parsed.segno * BigInt(this.segmentSize) : null;
  }
}

/** A store that did not answer or failed on its side (network, 5xx, throttling): worth retrying. */
function isTransient(err: unknown): boolean {
  const status = ((err as { cause?: { $metadata?: { httpStatusCode?: number } } })?.cause?.$metadata?.httpStatusCode);
  return status === undefined || status >= 500 || status === 429 || status === 408;
}
