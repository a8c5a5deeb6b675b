/**
 * The prefetch side of one `walstream restore` call: take the segment from the spool when the helper
 * has it ready, and after a restore from the archive itself, tell the running helper or start one.
 * Prefetching is never a reason for a restore to fail: a spool problem costs speed, not the restore.
 */
import { access, constants, mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isValidSegmentSize, parseSegmentFileName, parseSizeSetting, segmentFileName } from '../lsn.js';
import { COMPRESSION_SUFFIX } from '../archive/codec.js';
import { startPrefetchHelper } from './helper-process.js';
import { defaultSpoolDir, helperServing, notePending, noteRestored, spoolProblem, takeFromSpool } from './spool.js';

/** How much to prefetch: a number of segments, or bytes (rounded down to segments, at least one). */
export type PrefetchDepth = { segments: number } | { bytes: number };

/** The default: 8 segments, but no more than 256 MB of them (one 1 GB segment). */
const DEFAULT_SEGMENTS = 8;
const DEFAULT_BYTES = 256 << 20;

/** Parse `--prefetch`: N segments (0 = off) or a size such as 256MB; null when it is neither. */
export function parsePrefetchDepth(text: string): PrefetchDepth | null {
  if (/^\d+$/.test(text)) return { segments: Number(text) };
  try {
    const bytes = parseSizeSetting(text);
    return bytes > 0 ? { bytes } : null;
  } catch {
    return null;
  }
}

/** Segments to keep ready for `segmentSize`-byte segments. */
export function depthInSegments(depth: PrefetchDepth | undefined, segmentSize: number): number {
  if (!depth) return Math.max(1, Math.min(DEFAULT_SEGMENTS, Math.floor(DEFAULT_BYTES / segmentSize)));
  return 'segments' in depth ? depth.segments : Math.max(1, Math.floor(depth.bytes / segmentSize));
}

export interface PrefetchCall {
  archiveDir: string;
  walFileName: string;
  destination: string;
  /** --spool, or undefined for defaultSpoolDir(archiveDir). */
  spoolDir?: string;
  depth?: PrefetchDepth;
  idleMs: number;
}

/** The spool to use, or why none can be. */
export function spoolFor(call: PrefetchCall): { dir: string } | { problem: string } {
  const dir = resolve(call.spoolDir ?? defaultSpoolDir(call.archiveDir)); // absolute: the helper runs in /
  const problem = spoolProblem(dir);
  return problem ? { problem } : { dir };
}

/** Move the segment from the spool to %p when a live helper has it ready; false otherwise. */
export async function takePrefetched(call: PrefetchCall, spoolDir: string): Promise<boolean> {
  if (!helperServing(spoolDir, call.archiveDir)) return false;
  return takeFromSpool(spoolDir, call.walFileName, call.destination);
}

/** A helper startEarly started: its pid, and whether the next segment is announced yet (pending.NAME). */
export interface EarlyHelper {
  pid: number;
  announced: boolean;
}

/**
 * Before restoring from the archive itself, when no helper runs: start one right away, so that the
 * helper starts up (~100 ms of Node) while this call copies. When the segment is archived uncompressed
 * its size is the segment size and the next segment is announced at once; when only a compressed form
 * is archived the helper reads the size from it, and announceNext announces the next segment once this
 * call has restored its own. Resolves the helper, or null (none started: afterRestore's to do). Never throws.
 */
export async function startEarly(call: PrefetchCall, spoolDir: string): Promise<EarlyHelper | null> {
  try {
    if (helperServing(spoolDir, call.archiveDir)) return null;
    const size = await stat(join(call.archiveDir, call.walFileName)).then((s) => s.size, () => null);
    if (size !== null) {
      if (!isValidSegmentSize(size) || !parseSegmentFileName(call.walFileName, size)) return null;
      const pid = await startHelper(call, spoolDir, size);
      return pid === null ? null : { pid, announced: true };
    }
    if (!(await compressedFormExists(call))) return null;
    const pid = await startHelper(call, spoolDir, 0);
    return pid === null ? null : { pid, announced: false };
  } catch {
    return null;
  }
}

/** Whether NAME.gz, NAME.lz4 or NAME.zst is archived (what restore.ts tries after the plain name). */
async function compressedFormExists(call: PrefetchCall): Promise<boolean> {
  for (const suffix of Object.values(COMPRESSION_SUFFIX).filter(Boolean)) {
    if (await stat(join(call.archiveDir, call.walFileName + suffix)).then((s) => s.isFile(), () => false)) return true;
  }
  return false;
}

/**
 * After this call restored its segment to %p: announce the next one for a helper startEarly started
 * without knowing the segment size (the size is now %p's). Never throws.
 */
export async function announceNext(call: PrefetchCall, spoolDir: string, helper: EarlyHelper): Promise<void> {
  if (helper.announced) return;
  try {
    const size = (await stat(call.destination)).size;
    const position = isValidSegmentSize(size) ? parseSegmentFileName(call.walFileName, size) : null;
    if (position) await notePending(spoolDir, segmentFileName(position.timeline, position.segno + 1n, size), helper.pid);
  } catch {
    // the helper is gone with its spool: nothing to announce
  }
}

/**
 * After `walFileName` was restored from the archive itself: tell the live helper (it checks its
 * prediction), or start one prefetching the segments after it. Throws on a spool that cannot be used.
 */
export async function afterRestore(call: PrefetchCall, spoolDir: string): Promise<void> {
  if (helperServing(spoolDir, call.archiveDir)) {
    await noteRestored(spoolDir, call.walFileName);
    return;
  }
  await startHelper(call, spoolDir, (await stat(call.destination)).size);
}

/**
 * Start a helper prefetching after `call.walFileName` and resolve its pid; null when --prefetch asks for
 * none or the helper cannot start. A `segmentSize` of 0 (not known yet) leaves the size, the depth in
 * segments and the announcement of the next segment to later (the helper, announceNext).
 */
async function startHelper(call: PrefetchCall, spoolDir: string, segmentSize: number): Promise<number | null> {
  const depth = segmentSize > 0 ? depthInSegments(call.depth, segmentSize) : 1;
  if (depth < 1) return null;
  await mkdir(spoolDir, { recursive: true, mode: 0o700 });
  await access(spoolDir, constants.W_OK); // the helper is silent: find an unusable spool here
  const pid = startPrefetchHelper({
    archiveDir: resolve(call.archiveDir), // the helper runs in /, not in the data directory
    archiveArg: call.archiveDir,
    spoolDir,
    restored: call.walFileName,
    segmentSize,
    depth,
    ...(segmentSize > 0 || !call.depth ? {} : { depthSpec: call.depth }),
    idleMs: call.idleMs,
  });
  if (pid === null || segmentSize === 0) return pid;
  // The next call comes before the helper has even started: tell it (and bin/walstream-restore) that
  // the next segment of this timeline is on its way. The helper withdraws this if it predicts otherwise.
  const position = parseSegmentFileName(call.walFileName, segmentSize);
  if (position) await notePending(spoolDir, segmentFileName(position.timeline, position.segno + 1n, segmentSize), pid);
  return pid;
}
