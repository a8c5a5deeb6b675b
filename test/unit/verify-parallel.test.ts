/**
 * verify --jobs: segments walked afresh in parallel and joined to the record chain in order
 * (src/walfile/parallel.ts) give exactly the serial walk's result: the same record counts, and the
 * same faults where only the chain shows them (a flipped byte in the record crossing from segment 7
 * into 8, a broken prev-link just after it, a missing segment). Run from source the pool walks
 * in-process; the worker-thread transport is checked against the built worker when dist/ has it.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { verifyArchive } from '../../src/walfile/verify-archive.js';
import { WalkPool, runWalkTask, type WalkTask } from '../../src/walfile/parallel.js';
import { useTempDirs } from './temp-dirs.js';

const fixtures = fileURLToPath(new URL('../../fixtures/wal/', import.meta.url));
const waldump = JSON.parse(readFileSync(path.join(fixtures, 'waldump.json'), 'utf8')) as { records: Record<string, number>; total: number };
const builtWorker = fileURLToPath(new URL('../../dist/walfile/verify-worker.js', import.meta.url));
const tempDir = useTempDirs('walstream-verify-par-');

function archive(): string {
  const dir = tempDir();
  for (const name of readdirSync(fixtures)) if (/^[0-9A-F]{8}/.test(name)) copyFileSync(path.join(fixtures, name), path.join(dir, name));
  return dir;
}

function patch(dir: string, name: string, offset: number, edit: (b: Buffer) => void): void {
  const file = path.join(dir, name);
  const bytes = readFileSync(file);
  edit(bytes.subarray(offset));
  writeFileSync(file, bytes);
}

/** Serial and parallel runs over the same archive: everything but timing must agree. */
async function both(dir: string): Promise<{ serial: Awaited<ReturnType<typeof verifyArchive>>; parallel: Awaited<ReturnType<typeof verifyArchive>> }> {
  const serial = await verifyArchive({ directory: dir, writeWatermark: false, jobs: 1 });
  const parallel = await verifyArchive({ directory: dir, writeWatermark: false, jobs: 3 });
  expect(parallel).toEqual(serial);
  return { serial, parallel };
}

const problems = (result: Awaited<ReturnType<typeof verifyArchive>>): string[] => result.files.flatMap((f) => f.problems.map((p) => `${f.file}: ${p}`));

describe('verify in parallel', () => {
  it('counts pg_waldump\'s records on the intact archive, as the serial walk does', async () => {
    const { parallel } = await both(archive());
    expect(parallel.ok).toBe(true);
    expect(parallel.records).toBe(waldump.total);
    expect(Object.fromEntries(parallel.files.map((f) => [f.file, f.records]))).toEqual(waldump.records);
  });

  it('fails a flipped byte in the record crossing a segment boundary, as the serial walk does', async () => {
    const dir = archive();
    // Segment 8's page 0 continues a 435-byte tail of a record begun in segment 7.
    expect(readFileSync(path.join(dir, '000000010000000000000008')).readUInt32LE(16)).toBe(435);
    patch(dir, '000000010000000000000008', 40 + 200, (b) => { b[0] ^= 0x04; });
    const { parallel } = await both(dir);
    expect(problems(parallel)).toHaveLength(1);
    expect(problems(parallel)[0]).toMatch(/^000000010000000000000008: record at 0\/7FF[0-9A-F]{3} \(length \d+\) fails its CRC-32C check/);
    expect(parallel.records).toBeLessThan(waldump.total);
  });

  it('fails a broken prev-link on the first record after the crossing one, as the serial walk does', async () => {
    const dir = archive();
    patch(dir, '000000010000000000000008', 480 + 8, (b) => { b[0] ^= 0x08; }); // xl_prev of the record at 0/8001E0, after the 435-byte tail
    const { parallel } = await both(dir);
    expect(problems(parallel)[0]).toMatch(/^000000010000000000000008: record at 0\/8001E0 has prev-link 0\/7FFFF8, the record before it is at 0\/7FFFF0$/);
  });

  it('fails a deleted middle segment naming the gap, with the same counts as the serial walk', async () => {
    const dir = archive();
    rmSync(path.join(dir, '000000010000000000000008'));
    const { parallel } = await both(dir);
    expect(problems(parallel)).toEqual(['000000010000000000000009: gap: segment 000000010000000000000008 before it is missing']);
    // Segment 8's records are not there, nor the one crossing into it from 7 (it never completes).
    expect(parallel.records).toBe(waldump.total - waldump.records['000000010000000000000008']! - 1);
  });

  it('a worker thread answers as the in-process walk does (built worker)', async (ctx) => {
    if (!existsSync(builtWorker)) ctx.skip();
    const pool = new WalkPool(2, pathToFileURL(builtWorker));
    try {
      const tasks: WalkTask[] = ['000000010000000000000007', '000000010000000000000008', '000000010000000000000009', 'missing'].map((fileName, id) => ({
        id, directory: fixtures, fileName, timeline: 1, segno: BigInt(7 + id), segmentSize: 1048576, partial: false,
      }));
      const threaded = await Promise.all(tasks.map((t) => pool.submit(t)));
      const inline = [];
      for (const t of tasks) inline.push(await runWalkTask(t));
      expect(threaded).toEqual(inline);
      expect(threaded[1]!.head!.continuation).toHaveLength(435);
      expect(threaded[3]!.error).toMatch(/^cannot be read: ENOENT/);
    } finally {
      await pool.close();
    }
  });

  it('a worker that dies gets no more tasks: its task fails (walked by the caller instead), later ones run in-process', async () => {
    const script = path.join(tempDir(), 'dies.mjs');
    writeFileSync(script, 'throw new Error("no walking today");\n');
    const pool = new WalkPool(1, pathToFileURL(script));
    try {
      const task: WalkTask = { id: 1, directory: fixtures, fileName: '000000010000000000000007', timeline: 1, segno: 7n, segmentSize: 1048576, partial: false };
      await expect(pool.submit(task)).rejects.toThrow(/no walking today/);
      expect(await pool.submit({ ...task, id: 2 })).toEqual(await runWalkTask({ ...task, id: 2 }));
    } finally {
      await pool.close();
    }
  });
});
