/**
 * Running the built walstream CLI (dist/, built by `npm test`'s pretest) and comparing archives.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTool, spawnTool, type ToolOptions, type ToolProcess, type ToolResult } from './tools.js';
import { walFileName } from '../../src/lsn.js';

/** The compiled CLI entry point. */
export const WALSTREAM_CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/cli/main.js');

/** Run `walstream ARGS` to completion (never rejects on a non-zero exit). */
export function runWalstream(args: string[], opts: ToolOptions = {}): Promise<ToolResult> {
  return runTool(process.execPath, [WALSTREAM_CLI, ...args], opts);
}

/** Start `walstream ARGS` in the background (registered for cleanup). */
export function spawnWalstream(args: string[], opts: ToolOptions = {}): ToolProcess {
  return spawnTool(process.execPath, [WALSTREAM_CLI, ...args], opts);
}

/**
 * Run `body` while the spawned walstream `child` runs: on a failure its stderr is printed (the test's
 * evidence), and it is stopped with SIGTERM and awaited either way.
 */
export async function whileRunning<T>(child: ToolProcess, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    console.log(child.output.stderr);
    throw err;
  } finally {
    child.kill('SIGTERM');
    await child.exited;
  }
}

/** Archive contents: complete segment names, .partial names, history names, anything else. */
export async function listArchive(dir: string): Promise<{ complete: string[]; partial: string[]; history: string[]; other: string[] }> {
  const names = (await readdir(dir)).sort();
  return {
    complete: names.filter((n) => /^[0-9A-F]{24}$/.test(n)),
    partial: names.filter((n) => /^[0-9A-F]{24}\.partial$/.test(n)),
    history: names.filter((n) => /^[0-9A-F]{8}\.history$/.test(n)),
    other: names.filter((n) => !/^[0-9A-F]{24}(\.partial)?$/.test(n) && !/^[0-9A-F]{8}\.history$/.test(n)),
  };
}

/** Names of files whose bytes differ between two directories (among `names`). */
export async function differingFiles(dirA: string, dirB: string, names: string[]): Promise<string[]> {
  const differing: string[] = [];
  for (const name of names) {
    const [a, b] = await Promise.all([readFile(path.join(dirA, name)), readFile(path.join(dirB, name))]);
    if (!a.equals(b)) differing.push(name);
  }
  return differing;
}

/**
 * How far `archive` holds the server's WAL with no gap, from the segment holding `fromLsn`: the LSN
 * up to which every byte is in the archive (complete segments, then the matching prefix of a
 * .partial) and equals the server's `pgWal` copy. A slot must never be ahead of it.
 */
export async function archivedExtent(archive: string, pgWal: string, fromLsn: bigint, segmentSize: number, timeline = 1): Promise<bigint> {
  const names = new Set(await readdir(archive));
  let segno = fromLsn / BigInt(segmentSize);
  for (;;) {
    const start = segno * BigInt(segmentSize);
    const name = walFileName(timeline, start, segmentSize);
    const file = names.has(name) ? name : names.has(`${name}.partial`) ? `${name}.partial` : null;
    if (!file) return start;
    const [ours, server] = await Promise.all([readFile(path.join(archive, file)), readFile(path.join(pgWal, name)).catch(() => Buffer.alloc(0))]);
    let same = 0;
    const limit = Math.min(ours.length, server.length);
    while (same < limit && ours[same] === server[same]) same++;
    if (file !== name || same < segmentSize) return start + BigInt(same);
    segno++;
  }
}
