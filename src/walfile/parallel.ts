/**
 * Walking an archive's segments in parallel (verify --jobs): each segment is read and walked afresh
 * (walkSegment with from = null) by a worker thread (verify-worker.ts), which cannot know the record
 * chain it continues; the main thread then joins each walk, in order, to the chain before it
 * (joinWalk): it finishes the record crossing the segment boundary (its CRC-32C from the bytes the
 * worker kept, its prev-link, the continuation length page 0 gives) and checks the first record's
 * prev-link. Whatever the join cannot vouch for exactly as a walk from the chain would (a fault, a
 * timeline switch point in the segment, a record spanning the whole segment, a boundary XLOG_SWITCH)
 * is walked again on the main thread from the chain, so results are identical to the serial walk's.
 */
import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { crc32cRange } from './crc32c.js';
import { segmentBuffers } from './wal-wasm.js';
import { RECORD_CRC_OFFSET, RECORD_HEADER, RM_XLOG_ID, XLOG_SWITCH, XLP_FIRST_IS_CONTRECORD, XLP_FIRST_IS_OVERWRITE_CONTRECORD, XLR_INFO_MASK, u32, u64 } from './format.js';
import { type ChainState, type SegmentHead, type WalkContext, walkSegment } from './walker.js';

/** One segment for a worker: where it is and what the archive says of it. */
export interface WalkTask extends Omit<WalkContext, 'credit'> {
  id: number;
  directory: string;
  fileName: string;
  timeline: number;
  segno: bigint;
  segmentSize: number;
  partial: boolean;
}

/** A worker's answer: the afresh walk's verdict (without the segment's bytes). */
export interface WalkTaskResult {
  id: number;
  /** Why the file could not be read or decompressed (as the serial reader words it); the rest is then empty. */
  error?: string;
  bytes: number;
  problem: string | null;
  state: ChainState | null;
  boundaryFound: boolean;
  /** Records credited to this file. */
  records: number;
  systemId?: string;
  magic?: number;
  blockSize?: number;
  head?: SegmentHead;
}

/** Whether a segment file's name says it is compressed (NAME.gz, .lz4, .zst, and their .partial); without loading codec.ts. */
export const isCompressedSegmentName = (fileName: string): boolean => /\.(gz|lz4|zst)(\.partial)?$/.test(fileName);

/** Read buffers, reused in turn: one being walked while the next files are read into the others. */
const scratch: Buffer[] = [];
let nextScratch = 0;

/**
 * Read a segment file: an uncompressed one into one of `buffers` reused buffers (valid until that
 * many more reads have begun; a thread always passes the same number), on libuv's thread pool, so a
 * walker reads its next files while it walks one; a compressed one is decompressed. Errors say
 * "cannot be read: …" or "does not decompress: …".
 */
export async function readSegmentFile(file: string, fileName: string, buffers = 2): Promise<Buffer> {
  let raw: Buffer;
  if (isCompressedSegmentName(fileName)) {
    try {
      raw = await fs.readFile(file);
    } catch (err) {
      throw new Error(`cannot be read: ${(err as Error).message}`);
    }
    try {
      const { decompressFile } = await import('../archive/codec.js'); // loaded only for compressed archives
      return await decompressFile(fileName, raw);
    } catch (err) {
      throw new Error(`does not decompress: ${(err as Error).message}`);
    }
  }
  const which = nextScratch;
  nextScratch = (nextScratch + 1) % buffers;
  let fd: number;
  try {
    // Opened here, synchronously, so the read below is one thread-pool job that runs whole while this
    // thread walks the segment before: chained async open/stat/read steps would each wait for the
    // event loop, which the (synchronous) walk holds, and the read would start only after it.
    fd = fsSync.openSync(file, 'r');
  } catch (err) {
    throw new Error(`cannot be read: ${(err as Error).message}`);
  }
  try {
    const size = fsSync.fstatSync(fd).size;
    let buffer = scratch[which];
    if (buffer === undefined || buffer.length < size) buffer = scratch[which] = segmentBuffers(size, buffers)?.[which] ?? Buffer.allocUnsafe(Math.max(size, 16 << 20));
    let got = 0;
    while (got < size) {
      const bytesRead = await readAt(fd, buffer, got, size - got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buffer.subarray(0, got);
  } catch (err) {
    throw new Error(`cannot be read: ${(err as Error).message}`);
  } finally {
    fsSync.closeSync(fd);
  }
}

function readAt(fd: number, buffer: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fsSync.read(fd, buffer, offset, length, offset, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead)));
  });
}

/** Walk one segment's bytes afresh (what a worker does with each task). */
function walkTask(task: WalkTask, data: Buffer): WalkTaskResult {
  let records = 0;
  const ctx = {
    systemId: task.systemId, magic: task.magic, blockSize: task.blockSize,
    timelineBegins: task.timelineBegins, timelineEnds: task.timelineEnds, boundary: task.boundary,
    credit: (_file: string, n: number) => { records += n; }, // a walk afresh credits only its own file
  };
  const walked = walkSegment({ fileName: task.fileName, timeline: task.timeline, segno: task.segno, segmentSize: task.segmentSize, data, partial: task.partial }, ctx, null, { head: true });
  return {
    id: task.id, bytes: data.length, problem: walked.problem, state: walked.state, boundaryFound: walked.boundaryFound, records,
    systemId: ctx.systemId, magic: ctx.magic, blockSize: ctx.blockSize, head: walked.head,
  };
}

const readFailed = (task: WalkTask, err: unknown): WalkTaskResult => ({ id: task.id, error: (err as Error).message, bytes: 0, problem: null, state: null, boundaryFound: false, records: 0 });

/** Read and walk one segment afresh (also run in-process where no worker script is built). */
export async function runWalkTask(task: WalkTask): Promise<WalkTaskResult> {
  let data: Buffer;
  try {
    data = await readSegmentFile(path.join(task.directory, task.fileName), task.fileName);
  } catch (err) {
    return readFailed(task, err);
  }
  return walkTask(task, data);
}

/**
 * A worker's tasks, walked in the order they come, each file read while the one before is walked
 * (one read ahead: the walk and the disk overlap). `done` gets each result.
 */
export class WalkQueue {
  private readonly tasks: { task: WalkTask; data: Promise<Buffer> | null }[] = [];
  private running = false;

  constructor(private readonly done: (result: WalkTaskResult) => void) {}

  push(task: WalkTask): void {
    this.tasks.push({ task, data: null });
    if (!this.running) void this.run();
  }

  private read(entry: { task: WalkTask; data: Promise<Buffer> | null }): Promise<Buffer> {
    entry.data ??= readSegmentFile(path.join(entry.task.directory, entry.task.fileName), entry.task.fileName);
    entry.data.catch(() => {}); // reported when its turn comes
    return entry.data;
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      for (let entry = this.tasks.shift(); entry !== undefined; entry = this.tasks.shift()) {
        let data: Buffer;
        try {
          data = await this.read(entry);
        } catch (err) {
          this.done(readFailed(entry.task, err));
          continue;
        }
        const next = this.tasks[0];
        if (next !== undefined) this.read(next); // into the other buffer, while this one is walked
        this.done(walkTask(entry.task, data));
      }
    } finally {
      this.running = false;
    }
  }
}

/** What joining an afresh walk to the chain gives: the chain at the segment's end, and the file to credit with the crossing record. */
export interface Joined {
  state: ChainState | null;
  /** The file the record crossing into this segment started in, credited with it; null when none (or counted elsewhere). */
  crossingCredit: string | null;
}

/**
 * Join `walk` (segment starting at `segmentStart`, walked afresh without a fault) to the chain `from`
 * the serial walk would have continued from. Null when the result might differ from that walk's:
 * then walk the segment from `from`.
 */
export function joinWalk(walk: WalkTaskResult, from: ChainState | null, segmentStart: bigint): Joined | null {
  const h = walk.head;
  if (walk.problem !== null || walk.error !== undefined || h === undefined) return null;
  if (from === null || from.next !== segmentStart) return { state: walk.state, crossingCredit: null }; // the same walk
  const continues = (h.info & XLP_FIRST_IS_CONTRECORD) !== 0;
  const p = from.pending;
  let expectedPrev: bigint | null;
  let crossingCredit: string | null = null;
  if (p !== null) {
    if (p.skip) return null;
    if (!continues) {
      if (h.info < 0 || (h.info & XLP_FIRST_IS_OVERWRITE_CONTRECORD) === 0) return null;
      expectedPrev = p.start; // the abandoned record is the next one's predecessor
    } else {
      const c = h.continuation;
      if (c === null || h.remaining !== p.total - p.got || c.length !== h.remaining) return null;
      // Finish the crossing record as the walk from the chain would: header, prev-link, CRC.
      const header = new Uint8Array(RECORD_HEADER);
      header.set(p.header.subarray(0, Math.min(p.got, RECORD_HEADER)));
      let k = 0;
      if (p.got < RECORD_HEADER) {
        k = Math.min(RECORD_HEADER - p.got, c.length);
        header.set(c.subarray(0, k), p.got);
        if (p.got + k < RECORD_HEADER) return null;
        if (from.prev !== null && u64(header, 8) !== from.prev) return null;
      }
      let crc = p.crc;
      if (c.length > k) crc = crc32cRange(c, k, c.length, crc);
      crc = crc32cRange(header, 0, RECORD_CRC_OFFSET, crc);
      if (crc !== u32(header, RECORD_CRC_OFFSET)) return null;
      if (header[17] === RM_XLOG_ID && (header[16]! & ~XLR_INFO_MASK) === XLOG_SWITCH) return null;
      crossingCredit = p.creditTo;
      expectedPrev = p.start;
    }
  } else {
    if (continues) return null;
    expectedPrev = from.prev;
  }
  if (expectedPrev !== null && (h.firstStart === null || h.firstPrev !== expectedPrev)) return null;
  const state = walk.state && walk.state.prev === null ? { ...walk.state, prev: expectedPrev } : walk.state;
  return { state, crossingCredit };
}

/** Runs WalkTasks on worker threads, or in-process when the worker script is not at hand (running from source). */
export class WalkPool {
  private readonly workers: { worker: Worker; load: number; dead: boolean }[] = [];
  private inline: Promise<unknown> = Promise.resolve();
  private readonly waiting = new Map<number, { resolve: (r: WalkTaskResult) => void; reject: (err: Error) => void; worker: number }>();

  constructor(jobs: number, script: URL | null) {
    if (script === null) return;
    for (let i = 0; i < jobs; i++) {
      const worker = new Worker(script);
      worker.on('message', (result: WalkTaskResult) => {
        const w = this.waiting.get(result.id);
        if (!w) return;
        this.waiting.delete(result.id);
        this.workers[w.worker]!.load--;
        w.resolve(result);
      });
      worker.on('error', (err) => this.failWorker(i, err));
      worker.on('exit', (code) => this.failWorker(i, new Error(`verify worker exited with code ${code}`)));
      this.workers.push({ worker, load: 0, dead: false });
    }
  }

  /** A worker that failed gets no more tasks; those it had are rejected (and walked on the main thread). */
  private failWorker(index: number, err: Error): void {
    const slot = this.workers[index];
    if (slot) slot.dead = true;
    for (const [id, w] of this.waiting) {
      if (w.worker !== index) continue;
      this.waiting.delete(id);
      w.reject(err);
    }
  }

  /** Walk `task` on the least busy worker. */
  submit(task: WalkTask): Promise<WalkTaskResult> {
    const alive = this.workers.filter((w) => !w.dead);
    if (alive.length === 0) {
      // One at a time: a task's read reuses the buffer the one before walked.
      const result = this.inline.then(() => runWalkTask(task));
      this.inline = result.catch(() => undefined);
      return result;
    }
    const slot = alive.reduce((a, b) => (b.load < a.load ? b : a));
    const best = this.workers.indexOf(slot);
    slot.load++;
    return new Promise((resolve, reject) => {
      this.waiting.set(task.id, { resolve, reject, worker: best });
      slot.worker.postMessage(task);
    });
  }

  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    for (const { worker } of workers) worker.removeAllListeners('exit');
    await Promise.all(workers.map(({ worker }) => worker.terminate()));
  }
}
