/**
 * Uploads of the spool's finished files into the bucket: a queue with bounded concurrency, retries with
 * backoff for as long as it runs (a store that is down delays uploads, never loses them: the spool keeps
 * every file until the bucket confirms it), history files before any segment, and the spool trimmed to
 * the newest `keepLocal` complete segments once the bucket holds them.
 */
import { rm } from 'node:fs/promises';
import type { ArchiveEntry } from './reader.js';
import type { S3Store } from './s3-store.js';

export interface UploaderOptions {
  /** Uploads at once (default 4). */
  concurrency?: number;
  /** Keep only this many newest complete segments in the spool once uploaded (at least 1; default: keep all). */
  keepLocal?: number;
  /** Where warnings go (a failed attempt is retried; a warning at most once a minute per file). */
  log?: (level: 'info' | 'warn' | 'debug', message: string) => void;
  /** First wait after a failed attempt, doubled each time up to 30 s (default 1000 ms). */
  retryDelayMs?: number;
}

const MAX_RETRY_DELAY_MS = 30_000;
const WARN_INTERVAL_MS = 60_000;

/** What the spool holds that belongs in the bucket: complete segments, history files, gap markers. */
export function isUploadable(name: string): boolean {
  return COMPLETE_SEGMENT.test(name) || /^[0-9A-F]{8}\.history$/.test(name) || name.startsWith('walstream.gap.');
}

/** A complete segment file, plain or compressed (any segment size: the name alone decides). */
const COMPLETE_SEGMENT = /^[0-9A-F]{24}(\.(gz|lz4|zst))?$/;

interface Job {
  name: string;
  /** Bytes to store (a partial segment's prefix) instead of the spool file of that name. */
  data?: Uint8Array;
  attempts: number;
  /** Set by cancel(): the job ends after its current attempt. */
  cancelled?: boolean;
  /** True once the bucket confirmed it. */
  done: Promise<boolean>;
  resolve: (stored: boolean) => void;
}

/**
 * The upload queue. `enqueue` a finished spool file; `confirmed` tells what the bucket holds; `drain`
 * waits for the queue to empty. Throws nowhere: failures are retried and logged.
 */
export class Uploader {
  private readonly queue: Job[] = [];
  private readonly active = new Map<string, Job>();
  private readonly bucket = new Map<string, number>();
  /** Spool files not yet compared with the bucket's listing (see expect()). */
  private readonly unlisted = new Set<string>();
  /** Complete segments known to be in the spool (what keepLocal trims). */
  private readonly local = new Set<string>();
  private readonly waiters = new Set<() => void>();
  private readonly lastWarn = new Map<string, number>();
  private closed = false;
  private readonly sleeps = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  /** Counters for monitoring (see UploadStatus). */
  readonly stats = { uploadedFiles: 0, uploadedBytes: 0, failedAttempts: 0, lastUploadAt: null as number | null };
  /** Called after each confirmed upload (the flush limit may have moved). */
  onConfirmed: ((name: string) => void) | null = null;

  constructor(private readonly store: S3Store, private readonly spoolPath: (name: string) => string, private readonly options: UploaderOptions = {}) {}

  /**
   * The spool's finished files before the bucket has been listed: each counts as pending (so the flush
   * limit holds at it) until start() finds it in the bucket at the same size or an upload confirms it.
   */
  expect(spool: { name: string; size: number }[]): void {
    for (const file of spool) if (isUploadable(file.name)) this.unlisted.add(file.name);
  }

  /** What the bucket held at start-up; then queue every finished spool file it lacks (or holds at another size). */
  start(bucketObjects: ArchiveEntry[], spool: { name: string; size: number }[]): void {
    const sizes = new Map(spool.map((f) => [f.name, f.size]));
    // An object at another size than the spool's file is not what we hold: it is replaced, not counted.
    for (const o of bucketObjects) if (!this.bucket.has(o.name) && (sizes.get(o.name) ?? o.size) === o.size) this.bucket.set(o.name, o.size);
    for (const file of spool) {
      if (COMPLETE_SEGMENT.test(file.name)) this.local.add(file.name);
      if (isUploadable(file.name) && this.bucket.get(file.name) !== file.size) void this.enqueue(file.name);
    }
    this.unlisted.clear();
  }

  /** Names the bucket holds (at start-up, plus every upload confirmed since), with sizes. */
  objects(): ReadonlyMap<string, number> {
    return this.bucket;
  }

  /** Drop `name` from what the bucket is known to hold (it was moved or deleted there). */
  forget(name: string): void {
    this.bucket.delete(name);
  }

  /** True once the bucket holds `name` (an upload confirmed it, or it was there at start-up). */
  confirmed(name: string): boolean {
    return this.bucket.has(name) && !this.isPending(name);
  }

  /** Queued, being uploaded, or not yet compared with the bucket's listing. */
  isPending(name: string): boolean {
    return this.active.has(name) || this.unlisted.has(name) || this.queue.some((j) => j.name === name);
  }

  /** Names queued, being uploaded, or not yet compared with the bucket's listing. */
  pending(): string[] {
    return [...new Set([...this.unlisted, ...this.active.keys(), ...this.queue.map((j) => j.name)])];
  }

  /** Drop a queued upload of `name` (a partial made stale by its complete segment); one in flight ends after its attempt. */
  cancel(name: string): void {
    const index = this.queue.findIndex((j) => j.name === name);
    if (index >= 0) this.queue.splice(index, 1)[0]!.resolve(false);
    const active = this.active.get(name);
    if (active) active.cancelled = true;
    this.pump();
  }

  /** Upload spool file `name` (or `data` under that name); resolves true once the bucket confirms it, false when it ended without. */
  enqueue(name: string, data?: Uint8Array): Promise<boolean> {
    if (!data && COMPLETE_SEGMENT.test(name)) this.local.add(name);
    const queued = this.queue.find((j) => j.name === name);
    if (queued) {
      queued.data = data; // the newer content replaces what waited
      return queued.done;
    }
    let resolve!: (stored: boolean) => void;
    const done = new Promise<boolean>((r) => { resolve = r; });
    this.queue.push({ name, data, attempts: 0, done, resolve });
    this.pump();
    return done;
  }

  /** Delete an object (a partial made stale by the complete segment): one attempt, a warning if it fails, never fatal. */
  async removeObject(name: string): Promise<void> {
    try {
      await this.store.remove(name);
      this.bucket.delete(name);
    } catch (err) {
      this.warn(name, `could not delete stale ${name} from the bucket: ${(err as Error).message}`);
    }
  }

  /** Wait until nothing is queued or uploading; false when `timeoutMs` passed first. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.queue.length === 0 && this.active.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiters.delete(done); resolve(false); }, timeoutMs);
      const done = () => { clearTimeout(timer); resolve(true); };
      this.waiters.add(done);
    });
  }

  /** Stop retrying (waits in backoff end at once); queued files stay in the spool for the next run. */
  close(): void {
    this.closed = true;
    for (const s of this.sleeps) { clearTimeout(s.timer); s.wake(); }
  }

  private pump(): void {
    const concurrency = this.options.concurrency ?? 4;
    while (!this.closed && this.active.size < concurrency) {
      const job = this.nextJob();
      if (!job) break;
      this.active.set(job.name, job);
      void this.run(job);
    }
    if (this.queue.length === 0 && this.active.size === 0) {
      for (const w of this.waiters) w();
      this.waiters.clear();
    }
  }

  /** History files first; no segment starts while a history file is still on its way (PostgreSQL reads it first). */
  private nextJob(): Job | undefined {
    const history = this.queue.findIndex((j) => j.name.endsWith('.history'));
    if (history >= 0) return this.queue.splice(history, 1)[0];
    if ([...this.active.keys()].some((n) => n.endsWith('.history'))) return undefined;
    const index = this.queue.findIndex((j) => !this.active.has(j.name));
    return index >= 0 ? this.queue.splice(index, 1)[0] : undefined;
  }

  private async run(job: Job): Promise<void> {
    let stored = false;
    for (;;) {
      try {
        const size = job.data ? (await this.store.put(job.name, job.data), job.data.length) : await this.store.putFile(job.name, this.spoolPath(job.name));
        this.bucket.set(job.name, size);
        this.unlisted.delete(job.name);
        this.stats.uploadedFiles += 1;
        this.stats.uploadedBytes += size;
        this.stats.lastUploadAt = Date.now();
        stored = true;
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') break; // the spool file went (set aside): nothing to upload
        job.attempts += 1;
        this.stats.failedAttempts += 1;
        this.warn(job.name, `upload of ${job.name} failed (attempt ${job.attempts}, retrying): ${(err as Error).message}`);
        if (this.closed || job.cancelled) break;
        await this.sleep(Math.min((this.options.retryDelayMs ?? 1000) * 2 ** (job.attempts - 1), MAX_RETRY_DELAY_MS));
        if (this.closed || job.cancelled) break;
      }
    }
    this.active.delete(job.name);
    job.resolve(stored);
    if (stored) {
      this.onConfirmed?.(job.name);
      await this.trimSpool();
    }
    this.pump();
  }

  /** Remove the oldest complete segments from the spool beyond keepLocal, only those the bucket holds. */
  private async trimSpool(): Promise<void> {
    if (this.options.keepLocal === undefined) return;
    // The newest complete segment always stays: resuming checks its header without asking the store.
    const keep = Math.max(1, this.options.keepLocal);
    // Oldest first: by segment number (the name's last 16 digits), then timeline.
    const order = (name: string) => name.slice(8, 24) + name.slice(0, 8);
    const local = [...this.local].sort((a, b) => (order(a) < order(b) ? -1 : 1));
    for (const name of local.slice(0, Math.max(0, local.length - keep))) {
      if (!this.bucket.has(name) || this.isPending(name)) continue; // never before the bucket has it
      this.local.delete(name);
      await rm(this.spoolPath(name), { force: true }).catch(() => {});
    }
  }

  private warn(name: string, message: string): void {
    const now = Date.now();
    if (now - (this.lastWarn.get(name) ?? -Infinity) < WARN_INTERVAL_MS) {
      this.options.log?.('debug', message);
      return;
    }
    this.lastWarn.set(name, now);
    this.options.log?.('warn', message);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((wake) => {
      const entry = { timer: setTimeout(() => { this.sleeps.delete(entry); wake(); }, ms), wake };
      this.sleeps.add(entry);
    });
  }
}
