/**
 * The prefetch helper: a detached process that keeps the next segments recovery will ask for ready in
 * the spool (spool.ts), `depth` of them, while PostgreSQL replays. Like pgBackRest's asynchronous
 * archive-get queue, but the spool is never inside the data directory.
 *
 * It learns where recovery is from the spool itself: a spooled file that disappears was taken (by
 * `walstream restore` or bin/walstream-restore), a `want.NAME` file is a segment a restore call read from
 * the archive itself. It stops, emptying the spool, when:
 * - recovery stops asking: no segment taken or restored for `idleMs`;
 * - recovery restored a segment it did not predict (another timeline, an earlier position): its
 *   prediction is wrong, and the next restore call starts a new helper from there;
 * - it is signalled (SIGTERM, SIGINT).
 * A spooled file is the archive's complete, checked copy of exactly the file its name says, so whatever
 * recovery takes from the spool is what it would have restored from the archive.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireArchiveLock, LOCK_FILE } from '../archive/lock.js';
import { decompressFile } from '../archive/codec.js';
import { parseHistory, type HistoryEntry } from '../walfile/history.js';
import { archivedSegmentFile, archivedSegmentSize, spoolSegment } from './spool-writer.js';
import { chooseChain, nextSegment, type TimelineSpan } from './predict.js';
import { depthInSegments, type PrefetchDepth } from './prefetch-call.js';
import { PENDING_PREFIX, SPOOL_ARCHIVE_FILE, TEMP_PREFIX, WANT_PREFIX } from './spool.js';

export interface PrefetchOptions {
  /** The archive directory. */
  archiveDir: string;
  /** The -D argument as the restore command gave it (written to the spool's `archive` file). */
  archiveArg: string;
  spoolDir: string;
  /** The segment recovery restored last: prefetching starts after it. */
  restored: string;
  /**
   * Spool `restored` itself first: recovery is waiting for it (bin/walstream-restore started this
   * helper for a segment archived compressed only, and takes it from the spool).
   */
  serveRestored?: boolean;
  /** 0 when the starting call did not know it yet (a compressed segment): read from `restored`'s archived copy. */
  segmentSize: number;
  /** How many segments to keep ready. */
  depth: number;
  /** With `segmentSize` 0: --prefetch as given (absent: the default), for `depth` once the size is known. */
  depthSpec?: PrefetchDepth;
  /** Stop after this long without a segment taken or restored. */
  idleMs: number;
  /** How often to look at the spool (default 20 ms). */
  pollMs?: number;
}

export type PrefetchEnd = 'idle' | 'mismatch' | 'locked' | 'signal' | 'gone' | 'unsized';

/**
 * Run the helper until one of its stop conditions; resolves which. Holds the spool's lock meanwhile
 * (resolves 'locked' at once when another live helper holds it, 'gone' when the spool does not exist), and on the way out removes every file
 * it put in the spool, its lock, and the spool directory itself when that is then empty.
 */
export async function runPrefetch(opts: PrefetchOptions): Promise<PrefetchEnd> {
  // The starting call made the spool; gone means the archive went with it (never recreate the path).
  if (!existsSync(opts.spoolDir)) return 'gone';
  let lock;
  try {
    lock = acquireArchiveLock(opts.spoolDir);
  } catch {
    return 'locked';
  }
  let stop: PrefetchEnd | null = null;
  const onSignal = () => (stop = 'signal');
  process.once('SIGTERM', onSignal).once('SIGINT', onSignal);
  try {
    await emptySpool(opts.spoolDir, `pid=${process.pid}\n`);
    await writeFile(join(opts.spoolDir, TEMP_PREFIX + SPOOL_ARCHIVE_FILE), `${opts.archiveArg}\n`);
    await rename(join(opts.spoolDir, TEMP_PREFIX + SPOOL_ARCHIVE_FILE), join(opts.spoolDir, SPOOL_ARCHIVE_FILE));
    const segmentSize = opts.segmentSize > 0 ? opts.segmentSize : await archivedSegmentSize(opts.archiveDir, opts.restored);
    if (segmentSize === null) return 'unsized'; // the restore call reports what is wrong with it
    const depth = opts.segmentSize > 0 ? opts.depth : depthInSegments(opts.depthSpec, segmentSize);
    const state = new Prefetcher({ ...opts, segmentSize, depth });
    await state.init();
    while (!stop) {
      const end = await state.step();
      stop ??= end; // a signal during the step wins
    }
    return stop;
  } finally {
    process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
    await emptySpool(opts.spoolDir).catch(() => undefined);
    await rm(join(opts.spoolDir, SPOOL_ARCHIVE_FILE), { force: true }).catch(() => undefined);
    lock.release();
    await rmdir(opts.spoolDir).catch(() => undefined);
  }
}

/** Remove everything in the spool but the lock's own files, and the pending.NAME files holding `keepPending`. */
async function emptySpool(spoolDir: string, keepPending?: string): Promise<void> {
  for (const name of await readdir(spoolDir)) {
    if (name.startsWith(LOCK_FILE) || name === SPOOL_ARCHIVE_FILE) continue;
    if (keepPending && name.startsWith(PENDING_PREFIX) && (await readFile(join(spoolDir, name), 'utf8').catch(() => '')) === keepPending) continue;
    await rm(join(spoolDir, name), { force: true });
  }
}

/** Segments fetched at the same time. */
const FETCH_AHEAD = 2;

const HISTORY_FILE = /^([0-9A-F]{8})\.history(\.gz|\.lz4|\.zst)?$/;

/** Every readable history file of the archive, by timeline. */
async function readHistories(archiveDir: string): Promise<Map<number, HistoryEntry[]>> {
  const histories = new Map<number, HistoryEntry[]>();
  for (const fileName of await readdir(archiveDir).catch(() => [] as string[])) {
    const match = HISTORY_FILE.exec(fileName);
    const timeline = match ? parseInt(match[1]!, 16) : 0;
    if (!match || histories.has(timeline)) continue;
    try {
      const content = await decompressFile(fileName, await readFile(join(archiveDir, fileName)));
      histories.set(timeline, parseHistory(content.toString('utf8'), timeline));
    } catch {
      // unreadable or malformed: recovery cannot follow it either
    }
  }
  return histories;
}

/** The helper's state between polls. */
class Prefetcher {
  private chain: TimelineSpan[] = [];
  /** The last segment recovery got (from the spool or the archive). */
  private position: string;
  /** Spooled segments, in the order recovery will ask for them. */
  private queue: string[] = [];
  private lastActivity = Date.now();
  private lastHistoryScan = 0;
  private failed = { name: '', at: 0 };
  /** The segment spooled a second time at the end of the archive (once per position). */
  private respooled = '';
  /**
   * The segment the starting call announced (pending.NAME) when it is this helper's first prediction,
   * until the helper has spooled it or recovery has moved on; any other pending.NAME is withdrawn.
   */
  private awaited: string | null = null;
  /** opts.serveRestored, until the first fill. */
  private serveFirst: boolean;
  private readonly exists = async (name: string) => (await archivedSegmentFile(this.opts.archiveDir, name)) !== null;

  constructor(private readonly opts: PrefetchOptions) {
    this.position = opts.restored;
    this.serveFirst = opts.serveRestored === true;
  }

  async init(): Promise<void> {
    await this.rescanHistories();
    // The starting call announces the next segment of its timeline (before or after this): step()
    // withdraws that if it is not this helper's first prediction.
    this.awaited = this.opts.serveRestored ? this.position : await nextSegment(this.chain, this.position, this.opts.segmentSize, this.exists);
  }

  private async rescanHistories(): Promise<void> {
    this.lastHistoryScan = Date.now();
    this.chain = await chooseChain(this.position, await readHistories(this.opts.archiveDir), this.opts.segmentSize, this.exists);
  }

  /** One poll: follow recovery, fill the queue by one segment, or wait. Resolves a stop reason or null. */
  async step(): Promise<PrefetchEnd | null> {
    const entries = new Set(await readdir(this.opts.spoolDir));
    if (this.position !== this.opts.restored) this.awaited = null;
    for (const entry of entries) {
      if (entry.startsWith(PENDING_PREFIX) && entry !== PENDING_PREFIX + this.awaited) await rm(join(this.opts.spoolDir, entry), { force: true });
    }
    for (const entry of entries) {
      if (!entry.startsWith(WANT_PREFIX)) continue;
      await rm(join(this.opts.spoolDir, entry), { force: true });
      if (!(await this.restoredByRecovery(entry.slice(WANT_PREFIX.length)))) return 'mismatch';
    }
    let taken = -1;
    this.queue.forEach((name, index) => (taken = entries.has(name) ? taken : index));
    if (taken >= 0) await this.advanceTo(taken);
    if (Date.now() - this.lastActivity > this.opts.idleMs) return 'idle';
    if (this.queue.length < this.opts.depth && (await this.fill())) return null;
    await new Promise((resolve) => setTimeout(resolve, this.opts.pollMs ?? 20));
    return null;
  }

  /** A restore call read `name` from the archive: true when that is where the prediction goes. */
  private async restoredByRecovery(name: string): Promise<boolean> {
    const index = this.queue.indexOf(name);
    if (index >= 0) {
      await rm(join(this.opts.spoolDir, name), { force: true }); // spooled after that call looked: never taken
      await this.advanceTo(index);
      return true;
    }
    if (name === this.position) return true; // asked again
    const next = this.queue.length === 0 ? await nextSegment(this.chain, this.position, this.opts.segmentSize, this.exists) : null;
    if (name !== next) return false;
    this.position = name;
    this.lastActivity = Date.now();
    return true;
  }

  /** Recovery got queue[index]: what is before it in the queue will never be asked for. */
  private async advanceTo(index: number): Promise<void> {
    for (const stale of this.queue.slice(0, index)) await rm(join(this.opts.spoolDir, stale), { force: true });
    this.position = this.queue[index]!;
    this.queue = this.queue.slice(index + 1);
    this.lastActivity = Date.now();
  }

  /**
   * Spool the next predicted segments, up to FETCH_AHEAD at once (decoding runs on the thread pool, so
   * two segments in flight use both cores); false when there is none to spool now.
   */
  private async fill(): Promise<boolean> {
    const names = await this.predictNext(Math.min(FETCH_AHEAD, this.opts.depth - this.queue.length));
    if (names.length === 0 || (names[0] === this.failed.name && Date.now() - this.failed.at < 1000)) return false;
    const problems = await Promise.all(names.map((name) => spoolSegment(this.opts.archiveDir, this.opts.spoolDir, name, this.opts.segmentSize)));
    let ok = true;
    for (const [i, name] of names.entries()) {
      if (name === this.awaited) this.awaited = null;
      await rm(join(this.opts.spoolDir, PENDING_PREFIX + name), { force: true });
      if (ok && problems[i] === null) {
        this.queue.push(name);
        continue;
      }
      if (ok) this.failed = { name, at: Date.now() }; // damaged or vanished: left to the restore call, retried after a while
      ok = false;
      await rm(join(this.opts.spoolDir, name), { force: true }); // nothing after it is queued, nor left behind
    }
    return problems[0] === null;
  }

  /** Up to `count` segments recovery will ask for after the queue's last, in order. */
  private async predictNext(count: number): Promise<string[]> {
    const names: string[] = [];
    let after = this.queue.at(-1) ?? this.position;
    if (this.serveFirst) {
      this.serveFirst = false; // once, whatever becomes of it (a failure leaves it to the restore call)
      names.push(this.position);
    }
    while (names.length < count) {
      let next = await nextSegment(this.chain, after, this.opts.segmentSize, this.exists);
      if (!next && names.length === 0 && Date.now() - this.lastHistoryScan > 1000) {
        await this.rescanHistories(); // a promotion since: a new history file to follow
        next = await nextSegment(this.chain, after, this.opts.segmentSize, this.exists);
      }
      if (!next) break;
      names.push(next);
      after = next;
    }
    if (names.length === 0 && this.queue.length === 0 && this.respooled !== this.position) {
      // The end of the archive (for now): at the end of recovery the server reads its last segment
      // once more (seen on PostgreSQL 15). Have it ready again.
      this.respooled = this.position;
      names.push(this.position);
    }
    return names;
  }
}
