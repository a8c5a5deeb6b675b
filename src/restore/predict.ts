/**
 * Which segment recovery will ask restore_command for next, so the prefetch helper can fetch it ahead.
 * Mirrors the server's choice in XLogFileReadAnyTLI (src/backend/access/transam/xlogrecovery.c): for each
 * segment it tries the timelines of its expected history (expectedTLEs) newest first, skips a timeline
 * that begins after the segment, never goes back to a timeline older than the current file's, and takes
 * the first one whose file the archive has.
 */
import { parseSegmentFileName, segmentFileName } from '../lsn.js';
import type { HistoryEntry } from '../walfile/history.js';

/** One timeline of a history, as expectedTLEs holds it: the timeline and the LSN it begins at. */
export interface TimelineSpan {
  timeline: number;
  begin: bigint;
}

/** A segment position: timeline and segment number. */
export interface SegmentPosition {
  timeline: number;
  segno: bigint;
}

/** Whether the archive holds segment `name` complete (in any compression). */
export type SegmentExists = (name: string) => Promise<boolean>;

/**
 * The timelines recovery to `timeline` reads, newest first (readTimeLineHistory in timeline.c): the
 * timeline itself from its last switch point, then each ancestor from the switch before.
 */
export function timelineChain(timeline: number, history: HistoryEntry[]): TimelineSpan[] {
  const chain: TimelineSpan[] = [{ timeline, begin: history.at(-1)?.switchPoint ?? 0n }];
  for (let i = history.length - 1; i >= 0; i--) chain.push({ timeline: history[i]!.parent, begin: i > 0 ? history[i - 1]!.switchPoint : 0n });
  return chain;
}

/**
 * The segment recovery restores for `segno` following `chain`, when the last file it restored was on
 * `currentTimeline`: the first archived one, newest timeline first; null when none is archived (yet).
 */
export async function segmentFor(chain: TimelineSpan[], currentTimeline: number, segno: bigint, segmentSize: number, exists: SegmentExists): Promise<string | null> {
  for (const span of chain) {
    if (span.timeline < currentTimeline) break;
    if (segno < span.begin / BigInt(segmentSize)) continue;
    const name = segmentFileName(span.timeline, segno, segmentSize);
    if (await exists(name)) return name;
  }
  return null;
}

/**
 * The chain recovery follows, given that it just restored `restored`: the history of the newest timeline
 * (of `histories`) under which the server would have chosen exactly that file, else `restored`'s timeline
 * alone (a recovery_target_timeline other than 'latest', or a timeline the archive has no history for).
 */
export async function chooseChain(restored: string, histories: Map<number, HistoryEntry[]>, segmentSize: number, exists: SegmentExists): Promise<TimelineSpan[]> {
  const position = parseSegmentFileName(restored, segmentSize);
  if (!position) return [];
  for (const timeline of [...histories.keys()].sort((a, b) => b - a)) {
    if (timeline < position.timeline) break;
    const chain = timelineChain(timeline, histories.get(timeline)!);
    if (!chain.some((span) => span.timeline === position.timeline)) continue;
    if ((await segmentFor(chain, position.timeline, position.segno, segmentSize, exists)) === restored) return chain;
  }
  return [{ timeline: position.timeline, begin: 0n }];
}

/** The segment after `after` on `chain`, as recovery will ask for it; null when the archive lacks it (yet). */
export async function nextSegment(chain: TimelineSpan[], after: string, segmentSize: number, exists: SegmentExists): Promise<string | null> {
  const position = parseSegmentFileName(after, segmentSize);
  if (!position) return null;
  return segmentFor(chain, position.timeline, position.segno + 1n, segmentSize, exists);
}
