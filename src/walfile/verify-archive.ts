/**
 * verifyArchive(): every record of every segment in an archive directory, compressed or not, checked
 * as PostgreSQL's reader would (walker.ts), plus what only the whole archive shows: segments missing
 * between others (per timeline, following the history files across a switch), history files that
 * agree with each other and with the WAL (timeline switch points where the records say), and one
 * system identifier throughout. Keeps a watermark (watermark.ts) so the next run checks only what is new.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { formatLsn, historyFileName, isValidSegmentSize, segmentFileName, parseSegmentFileName } from '../lsn.js';
import { type ArchivedSegment, decodeLongPageHeader, parseArchivedName } from '../archive/scan.js';
import { decompressFile } from '../archive/codec.js';
import { describeGap, listGapMarkers } from '../archive/gaps.js';
import { WalstreamError } from '../errors.js';
import { type ArchiveReader, DirectoryReader, readArchiveHead } from '../archive/reader.js';
import { type HistoryEntry, parseHistory, timelineAt } from './history.js';
import { type ChainState, type WalkContext, type WalkResult, walkSegment } from './walker.js';
import { type WalkTaskResult, WalkPool, isCompressedSegmentName, joinWalk, readSegmentFile } from './parallel.js';
import { type Watermark, prepareWatermarkWrite, readWatermark, removeWatermark, writeWatermark } from './watermark.js';

export interface VerifyOptions {
  /** The archive directory; or give `archive`. */
  directory?: string;
  /** The archive to check (a DirectoryReader, or an S3Store for a bucket); takes the place of directory. */
  archive?: ArchiveReader;
  /** Check everything, ignoring the watermark, which is then rewritten to what this run verified (removed when nothing was). */
  all?: boolean;
  /** Start at this segment (24 hex digits) instead of after the watermark; the watermark is then left as it is. */
  from?: string;
  /** Record the watermark after the run (default true). */
  writeWatermark?: boolean;
  /** Called after each file. */
  onProgress?: (progress: VerifyProgress) => void;
  /** Stops between files (the result then covers the files checked so far). */
  signal?: AbortSignal;
  /**
   * Worker threads reading and walking segments in parallel; 1 walks them on the calling thread. Default:
   * one fewer than the processors (os.availableParallelism()), at least 1: a processor is left for the
   * reads (the thread pool) and this thread.
   */
  jobs?: number;
}

export interface VerifyProgress {
  /** The file just checked. */
  file: string;
  filesDone: number;
  filesTotal: number;
  /** Bytes of WAL checked so far (decompressed). */
  bytes: number;
  records: number;
}

/** One checked file: a segment, or a history file. */
export interface FileReport {
  file: string;
  records: number;
  /** WAL bytes read (decompressed). */
  bytes: number;
  /** What is wrong, one line each; empty when the file is sound. */
  problems: string[];
}

export interface VerifyResult {
  /** True when no file has a problem. */
  ok: boolean;
  /** Every file checked, in order (segments by segment number, then timeline), history files first. */
  files: FileReport[];
  /** Segment files checked (complete and .partial). */
  segments: number;
  records: number;
  bytes: number;
  /** Files left out, and why (the live .partial, a duplicate compressed copy). */
  skipped: { file: string; reason: string }[];
  /** The segment the run started after (the watermark's), or null when it started at the archive's oldest or at `from`. */
  startedAfter: string | null;
  /** The segment the watermark names after the run, or null when there is none. */
  watermark: string | null;
  systemId: string | null;
  segmentSize: number | null;
}

/** Timeline switches the archive's history files describe. */
interface Timelines {
  histories: Map<number, HistoryEntry[]>;
  /** Where each timeline ends (switched away from), and where each later one begins. */
  ends: Map<number, bigint>;
  begins: Map<number, bigint>;
  /** The timeline each later one branched from. */
  parent: Map<number, number>;
}

const HISTORY = /^([0-9A-F]{8})\.history$/;
const LOOKS_LIKE_SEGMENT = /^[0-9A-F]{24}(\.gz|\.lz4|\.zst)?(\.partial)?$/;

/**
 * Check the archive in `options.directory`; resolves a structured result (never throws for faults in
 * the WAL, which are reported per file; throws a WalstreamError for an unreadable directory, a bad
 * `from` or an unreadable watermark). Reads segments after the watermark unless `all` or `from`.
 */
export async function verifyArchive(options: VerifyOptions): Promise<VerifyResult> {
  if (!options.archive && options.directory === undefined) throw new WalstreamError('BAD_OPTION', 'no archive given: pass directory or archive');
  const archive = options.archive ?? new DirectoryReader(options.directory!);
  // Worker threads read segment files by path: a directory's. A bucket's segments are read here.
  const dir = archive instanceof DirectoryReader ? archive.directory : null;
  let names: string[];
  try {
    names = (await archive.entries()).map((e) => e.name).sort();
  } catch (err) {
    throw new WalstreamError('ARCHIVE_MISSING', `cannot read the archive ${dir !== null ? 'directory ' : ''}"${archive.describe()}": ${(err as Error).message}`);
  }
  const mark = options.all || options.from ? null : await readWatermark(archive).catch((err: Error) => {
    throw new WalstreamError('ARCHIVE_DAMAGED', err.message);
  });
  const result: VerifyResult = { ok: true, files: [], segments: 0, records: 0, bytes: 0, skipped: [], startedAfter: null, watermark: mark?.segment ?? null, systemId: mark?.systemId ?? null, segmentSize: null };
  const reports = new Map<string, FileReport>();
  const report = (file: string): FileReport => {
    let r = reports.get(file);
    if (!r) {
      r = { file, records: 0, bytes: 0, problems: [] };
      reports.set(file, r);
      result.files.push(r);
    }
    return r;
  };
  const fault = (file: string, problem: string): void => {
    report(file).problems.push(problem);
  };

  const timelines = await readTimelines(archive, names, fault);
  const segmentSize = mark?.segmentSize ?? (await detectSegmentSize(archive, names));
  if (segmentSize === null) {
    const first = names.find((n) => LOOKS_LIKE_SEGMENT.test(n));
    if (first) fault(first, 'has no long page header with a valid segment size: not a WAL segment');
    return finish(result);
  }
  result.segmentSize = segmentSize;
  const seg = BigInt(segmentSize);

  // Which files to read.
  const all = names.map((n) => parseArchivedName(n, segmentSize)).filter((s): s is ArchivedSegment => s !== null);
  const completeKeys = new Set(all.filter((s) => !s.partial).map((s) => `${s.timeline}:${s.segno}`));
  const seen = new Set<string>();
  let files: ArchivedSegment[] = [];
  for (const s of all.sort((a, b) => Number(a.compression !== 'none') - Number(b.compression !== 'none'))) {
    const key = `${s.timeline}:${s.segno}`;
    if (s.partial && completeKeys.has(key)) result.skipped.push({ file: s.fileName, reason: 'the complete segment is in the archive' });
    else if (s.partial && !timelines.ends.has(s.timeline)) result.skipped.push({ file: s.fileName, reason: 'the segment being written (a .partial of the newest timeline)' });
    else if (seen.has(key + s.partial)) result.skipped.push({ file: s.fileName, reason: 'another copy of the segment is checked' });
    else {
      seen.add(key + s.partial);
      files.push(s);
    }
  }
  files.sort((a, b) => (a.segno !== b.segno ? (a.segno < b.segno ? -1 : 1) : a.timeline - b.timeline || Number(a.partial) - Number(b.partial)));
  const minSegno = files.length > 0 ? files[0]!.segno : 0n;
  if (options.from) {
    const from = parseSegmentFileName(options.from, segmentSize);
    if (!from) throw new WalstreamError('BAD_OPTION', `--from "${options.from}" is not a WAL segment name (24 hexadecimal digits, e.g. 000000010000000000000003)`);
    files = files.filter((f) => f.segno > from.segno || (f.segno === from.segno && f.timeline >= from.timeline));
  } else if (mark) {
    if (mark.segmentSize !== segmentSize) throw new WalstreamError('ARCHIVE_DAMAGED', `walstream.verified is for ${mark.segmentSize}-byte segments; run verify --all`);
    files = files.filter((f) => f.segno > mark.segno || (f.segno === mark.segno && f.timeline > mark.timeline));
    result.startedAfter = mark.segment;
  }

  // The record chain of each timeline, and its state where a later timeline branches off.
  const chains = new Map<number, ChainState | null>();
  const snapshots = new Map<string, ChainState>();
  const needed = new Set<string>();
  // A child's first segment (the one holding its switch point) continues from its parent's previous one.
  for (const [child, begin] of timelines.begins) needed.add(`${timelines.parent.get(child)}:${begin / seg - 1n}`);
  if (mark) {
    chains.set(mark.timeline, mark.chain);
    snapshots.set(`${mark.timeline}:${mark.segno}`, mark.chain);
  }
  const shared: Omit<WalkContext, 'credit'> = { systemId: mark?.systemId, magic: mark?.magic, blockSize: mark?.blockSize };
  const credit = (file: string, n: number): void => {
    result.records += n;
    const r = reports.get(file);
    if (r) r.records += n;
  };
  const gapMarkers = listGapMarkers(names);
  const warnedHistory = new Set<number>();
  let clean = !result.files.some((f) => f.problems.length > 0);
  let newMark: Watermark | null = null;

  const jobs = Math.max(1, Math.floor(options.jobs ?? os.availableParallelism() - 1));
  const pool = dir !== null && jobs > 1 && files.length > 1 ? new WalkPool(Math.min(jobs, files.length), workerScript()) : null;
  // Parallel: segments are walked afresh by the pool, a few ahead, and joined to the chain here in order.
  const walks: Promise<WalkTaskResult | null>[] = [];
  const submit = (i: number): void => {
    const f = files[i]!;
    const begin = timelines.begins.get(f.timeline);
    walks[i] = pool!.submit({
      id: i, directory: dir!, fileName: f.fileName, timeline: f.timeline, segno: f.segno, segmentSize, partial: f.partial,
      systemId: shared.systemId, magic: shared.magic, blockSize: shared.blockSize,
      timelineBegins: begin, timelineEnds: timelines.ends.get(f.timeline),
      boundary: begin !== undefined && begin / seg === f.segno ? begin : undefined,
    }).catch(() => null); // a worker that failed: walked here instead
  };
  const window = jobs * 3;
  try {
    // Serial: file i and the two after it are read while i is walked (readSegment's three buffers, in turn).
    const ahead: (Promise<Buffer> | undefined)[] = [];
    if (pool) for (let i = 0; i < Math.min(window, files.length); i++) submit(i);
    if (options.writeWatermark !== false && !options.from) prepareWatermarkWrite(); // loaded while the first files are read
    for (let i = 0; i < files.length; i++) {
      if (options.signal?.aborted) break;
      const file = files[i]!;
      let current: Promise<Buffer> | null = null;
      let walk: WalkTaskResult | null = null;
      if (pool) {
        walk = await walks[i]!;
        delete walks[i];
        if (i + window < files.length) submit(i + window);
        if (walk === null) current = readSegment(archive, file);
        else if (walk.error !== undefined) current = Promise.reject(new Error(walk.error));
      } else {
        for (let k = i; k < Math.min(i + 3, files.length); k++) ahead[k] ??= readSegment(archive, files[k]!);
        current = ahead[i]!;
        delete ahead[i];
      }
      const r = report(file.fileName);
      const T = file.timeline;
      const n = file.segno;
      const begin = timelines.begins.get(T);
      if (T > 1 && !timelines.histories.has(T) && !warnedHistory.has(T)) {
        warnedHistory.add(T);
        r.problems.push(`timeline ${T} has no history file ${historyFileName(T)} in the archive (recovery needs it)`);
      }
      if (n > minSegno) {
        const previousTimeline = timelineAt(timelines.histories.get(T), T, n * seg - 1n);
        if (!completeKeys.has(`${previousTimeline}:${n - 1n}`)) {
          const missing = segmentFileName(previousTimeline, n - 1n, segmentSize);
          const known = gapMarkers.find((m) => m.timeline === previousTimeline && m.fromLsn < n * seg && m.toLsn > (n - 1n) * seg);
          r.problems.push(`gap: segment ${missing} before it is missing${known ? ` (walstream recorded this gap: ${describeGap(known)})` : ''}`);
        }
      }
      let data: Buffer | null = null;
      try {
        if (current) data = await current;
      } catch (err) {
        r.problems.push((err as Error).message);
        chains.delete(T);
        clean = false;
        continue;
      }
      const size = data ? data.length : walk!.bytes;
      r.bytes = size;
      result.bytes += size;
      result.segments++;
      if (begin !== undefined && n < begin / seg) {
        r.problems.push(`is before ${formatLsn(begin)}, where the history says timeline ${T} begins`);
      } else {
        let from = chains.get(T) ?? null;
        if ((from === null || from.next !== n * seg) && begin !== undefined && begin / seg === n) {
          // A new timeline's first segment continues its parent's WAL up to the switch point.
          const snapshot = snapshots.get(`${timelines.parent.get(T)}:${n - 1n}`);
          from = snapshot ? { ...snapshot, pending: snapshot.pending && { ...snapshot.pending, creditTo: null } } : null;
        }
        const ctx: WalkContext = {
          ...shared, credit,
          timelineBegins: begin,
          timelineEnds: timelines.ends.get(T),
          boundary: begin !== undefined && begin / seg === n ? begin : undefined,
        };
        let walked: WalkResult | null = null;
        if (walk !== null && data === null) {
          // Joined to the chain when the worker's walk says all the walk from `from` would; else walked again here.
          const consistent = (walk.systemId === undefined || ctx.systemId === undefined || walk.systemId === ctx.systemId)
            && (walk.magic === undefined || ctx.magic === undefined || walk.magic === ctx.magic)
            && (walk.blockSize === undefined || ctx.blockSize === undefined || walk.blockSize === ctx.blockSize);
          const joined = consistent && ctx.boundary === undefined ? joinWalk(walk, from, n * seg) : null;
          if (joined) {
            if (joined.crossingCredit !== null) credit(joined.crossingCredit, 1);
            if (walk.records > 0) credit(file.fileName, walk.records);
            ctx.systemId ??= walk.systemId;
            ctx.magic ??= walk.magic;
            ctx.blockSize ??= walk.blockSize;
            walked = { problem: null, state: joined.state, endOfWal: null, boundaryFound: walk.boundaryFound };
          } else {
            try {
              data = await readSegment(archive, file);
            } catch (err) {
              r.problems.push((err as Error).message);
            }
          }
        }
        if (walked === null && data !== null) walked = walkSegment({ fileName: file.fileName, timeline: T, segno: n, segmentSize, data, partial: file.partial }, ctx, from);
        if (walked === null) walked = { problem: null, state: null, endOfWal: null, boundaryFound: true }; // unreadable on the second read: said above
        shared.systemId = ctx.systemId;
        shared.magic = ctx.magic;
        shared.blockSize = ctx.blockSize;
        if (walked.problem) r.problems.push(walked.problem);
        else if (ctx.boundary !== undefined && !walked.boundaryFound) {
          r.problems.push(`no record ends at ${formatLsn(ctx.boundary)}, where ${historyFileName(T)} says timeline ${T} begins`);
        }
        chains.set(T, walked.state);
        if (walked.state && needed.has(`${T}:${n}`)) snapshots.set(`${T}:${n}`, walked.state);
        if (clean && r.problems.length === 0 && !file.partial && walked.state) {
          newMark = {
            timeline: T, segment: file.name, segno: n, endLsn: (n + 1n) * seg, systemId: ctx.systemId!, segmentSize,
            blockSize: ctx.blockSize!, magic: ctx.magic!, chain: walked.state,
          };
        }
      }
      if (r.problems.length > 0) clean = false;
      options.onProgress?.({ file: file.fileName, filesDone: i + 1, filesTotal: files.length, bytes: result.bytes, records: result.records });
    }
  } finally {
    await pool?.close();
  }
  result.systemId = shared.systemId ?? null;
  if (newMark && !options.from && options.writeWatermark !== false) {
    await writeWatermark(archive, newMark);
    result.watermark = newMark.segment;
  } else if (options.all && !options.signal?.aborted && options.writeWatermark !== false) {
    // --all found the oldest segment at fault (or none sound): nothing is verified any more.
    await removeWatermark(archive);
    result.watermark = null;
  }
  return finish(result);
}

/** The compiled worker script next to this module; null when running from source (the pool then walks in-process). */
function workerScript(): URL | null {
  const url = new URL('./verify-worker.js', import.meta.url);
  return url.protocol === 'file:' && import.meta.url.endsWith('.js') && existsSync(fileURLToPath(url)) ? url : null;
}

function finish(result: VerifyResult): VerifyResult {
  result.ok = result.files.every((f) => f.problems.length === 0);
  return result;
}

/**
 * A segment's WAL bytes, decompressed (codec.ts) when its name says so. From a directory, into one of
 * three reused buffers (parallel.ts readSegmentFile): valid until three more reads have begun.
 */
async function readSegment(archive: ArchiveReader, segment: ArchivedSegment): Promise<Buffer> {
  if (archive instanceof DirectoryReader) return readSegmentFile(archive.locate(segment.fileName), segment.fileName, 3);
  let raw: Buffer | null;
  try {
    raw = await archive.read(segment.fileName);
  } catch (err) {
    throw new Error(`cannot be read: ${(err as Error).message}`);
  }
  if (raw === null) throw new Error('cannot be read: it is gone');
  try {
    return await decompressFile(segment.fileName, raw);
  } catch (err) {
    throw new Error(`does not decompress: ${(err as Error).message}`);
  }
}

/** The first bytes of a segment file (the long page header); a compressed one is decompressed whole. */
async function readHead(archive: ArchiveReader, name: string): Promise<Buffer> {
  if (isCompressedSegmentName(name)) return readSegment(archive, { fileName: name } as ArchivedSegment);
  return (await readArchiveHead(archive, name, 64)) ?? Buffer.alloc(0);
}

/** The segment size from the oldest segment file's long page header, or null when no file has one. */
async function detectSegmentSize(archive: ArchiveReader, names: string[]): Promise<number | null> {
  for (const name of names.filter((n) => LOOKS_LIKE_SEGMENT.test(n))) {
    const header = decodeLongPageHeader(await readHead(archive, name).catch(() => Buffer.alloc(0)));
    if (header && isValidSegmentSize(header.segmentSize)) return header.segmentSize;
  }
  return null;
}

/** Parse every history file; check they agree with each other (each extends its parent's). */
async function readTimelines(archive: ArchiveReader, names: string[], fault: (file: string, problem: string) => void): Promise<Timelines> {
  const t: Timelines = { histories: new Map(), ends: new Map(), begins: new Map(), parent: new Map() };
  for (const name of names) {
    const match = HISTORY.exec(name);
    if (!match) continue;
    const timeline = parseInt(match[1]!, 16);
    try {
      const bytes = await archive.read(name);
      if (bytes === null) continue; // removed meanwhile
      t.histories.set(timeline, parseHistory(bytes.toString('utf8'), timeline));
    } catch (err) {
      fault(name, `is not a timeline history: ${(err as Error).message}`);
    }
  }
  for (const [timeline, entries] of [...t.histories].sort((a, b) => a[0] - b[0])) {
    const file = historyFileName(timeline);
    entries.forEach((entry, i) => {
      const child = entries[i + 1]?.parent ?? timeline;
      const knownEnd = t.ends.get(entry.parent);
      if (knownEnd !== undefined && knownEnd !== entry.switchPoint) {
        fault(file, `says timeline ${entry.parent} ended at ${formatLsn(entry.switchPoint)}, an earlier history file says ${formatLsn(knownEnd)}`);
        return;
      }
      t.ends.set(entry.parent, entry.switchPoint);
      t.begins.set(child, entry.switchPoint);
      t.parent.set(child, entry.parent);
    });
  }
  return t;
}
