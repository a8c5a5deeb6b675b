/**
 * Timeline history files (0000000N.history), as the server reads them (access/transam/timeline.c
 * readTimeLineHistory): one line per ancestor, `parentTLI <whitespace> switchpoint X/X [reason]`,
 * oldest first; `#` comments and blank lines ignored; timelines strictly increasing.
 */
import { parseLsn } from '../lsn.js';

/** One switch: WAL of `parent` up to `switchPoint`, the next timeline from there on. */
export interface HistoryEntry {
  parent: number;
  switchPoint: bigint;
}

/** The entries of a history file for `timeline`, oldest first; throws an Error naming the bad line. */
export function parseHistory(text: string, timeline: number): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [tli, point] = line.split(/\s+/);
    const parent = Number(tli);
    let switchPoint: bigint;
    try {
      switchPoint = parseLsn(point ?? '');
    } catch {
      throw new Error(`line ${index + 1} has no switch point ("${line.slice(0, 60)}")`);
    }
    if (!/^\d+$/.test(tli ?? '') || parent < 1) throw new Error(`line ${index + 1} has no timeline ("${line.slice(0, 60)}")`);
    const last = entries.at(-1);
    if (last && (parent <= last.parent || switchPoint < last.switchPoint)) throw new Error(`line ${index + 1}: timelines and switch points must increase`);
    entries.push({ parent, switchPoint });
  }
  if (entries.length === 0) throw new Error('has no entries');
  if (entries.at(-1)!.parent >= timeline) throw new Error(`names timeline ${entries.at(-1)!.parent} as the parent of timeline ${timeline}`);
  return entries;
}

/** The timeline holding `lsn` on `timeline`'s history (tliOfPointInHistory): the first ancestor switched away from after it. */
export function timelineAt(entries: HistoryEntry[] | undefined, timeline: number, lsn: bigint): number {
  for (const entry of entries ?? []) if (lsn < entry.switchPoint) return entry.parent;
  return timeline;
}
