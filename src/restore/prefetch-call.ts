/**
 * The prefetch side of one `walstream restore` call: take the segment from the spool when the helper
 * has it ready, and after a restore from the archive itself, tell the running helper or start one.
 * Prefetching is never a reason for a restore to fail: a spool problem costs speed, not the restore.
 */
import { access, constants, mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isValidSegmentSize, parseSegmentFileName, parseSizeSetting, segmentFileName } from '../lsn.js';
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

/**
 * Before restoring from the archive itself, when no helper runs: start one right away if the segment
 * is archived uncompressed (its size is the segment size), so that the helper starts up while this call
 * copies. Resolves whether it started one; false leaves it to afterRestore. Never throws.
 */
export async function startEarly(call: PrefetchCall, spoolDir: string): Promise<boolean> {
  try {
    if (helperServing(spoolDir, call.archiveDir)) return false;
    const size = (await stat(join(call.archiveDir, call.walFileName))).size;
    if (!isValidSegmentSize(size) || !parseSegmentFileName(call.walFileName, size)) return false;
    return await startHelper(call, spoolDir, size);
  } catch {
    return false;
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

/** Start a helper prefetching after `call.walFileName`; false when --prefetch asks for none. */
async function startHelper(call: PrefetchCall, spoolDir: string, segmentSize: number): Promise<boolean> {
  const depth = depthInSegments(call.depth, segmentSize);
  if (depth < 1) return false;
  await mkdir(spoolDir, { recursive: true, mode: 0o700 });
  await access(spoolDir, constants.W_OK); // the helper is silent: find an unusable spool here
  const pid = startPrefetchHelper({
    archiveDir: resolve(call.archiveDir), // the helper runs in /, not in the data directory
    archiveArg: call.archiveDir,
    spoolDir,
    restored: call.walFileName,
    segmentSize,
    depth,
    idleMs: call.idleMs,
  });
  if (pid === null) return false;
  // The next call comes before the helper has even started: tell it (and bin/walstream-restore) that
  // the next segment of this timeline is on its way. The helper withdraws this if it predicts otherwise.
  const position = parseSegmentFileName(call.walFileName, segmentSize);
  if (position) await notePending(spoolDir, segmentFileName(position.timeline, position.segno + 1n, segmentSize), pid);
  return true;
}
