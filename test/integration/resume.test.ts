/**
 * Acceptance: "SIGKILL the receiver mid-stream, twice, while WAL is being written; restart; end with
 * --endpos: the archive equals an uninterrupted pg_receivewal's, one .partial at most, no stray files."
 *
 * Runs the built CLI (`node dist/cli/main.js receive …`, build first with `npx tsc -p .`) with fsync on,
 * against a 1 MB-segment cluster with a background writer. A watcher compares every complete segment
 * that ever appears in the archive with the server's pg_wal copy (a slot for the reference keeps
 * pg_wal from recycling them).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  delay,
  destroyAll,
  lsnToBigInt,
  runTool,
  spawnTool,
  startCluster,
  tempDir,
  waitFor,
  type Cluster,
  type ToolProcess,
} from '../harness/cluster.js';
import { WALSTREAM_CLI } from '../harness/walstream.js';
import { formatLsn } from '../../src/lsn.js';

const SEGMENT = 1024 * 1024;
const SEGMENT_NAME = /^[0-9A-F]{24}$/;
const PARTIAL_NAME = /^[0-9A-F]{24}\.partial$/;

/** Complete segment names in `dir`, sorted. */
async function completeSegments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => SEGMENT_NAME.test(n)).sort();
}

/** The .partial in `dir` and how far its data reaches (offset after its last non-zero byte); null when there is none. */
async function partialExtent(dir: string): Promise<{ name: string; extent: number } | null> {
  const partial = (await readdir(dir)).find((n) => PARTIAL_NAME.test(n));
  if (!partial) return null;
  const bytes = await readFile(path.join(dir, partial));
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return { name: partial, extent: end };
}

/** Background load: ~40 kB of committed WAL every ~40 ms over one connection, until stop(). */
function startWalWriter(cluster: Cluster): { stop(): Promise<void> } {
  let stopped = false;
  const done = (async () => {
    const client = new pg.Client({ host: cluster.host, port: cluster.port, user: 'postgres', database: 'postgres' });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.query('create table if not exists walwriter (id bigserial, pad text)');
      while (!stopped) {
        await client.query(`insert into walwriter (pad) select repeat(md5(random()::text), 30) from generate_series(1, 40)`);
        await delay(40);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done;
    },
  };
}

/**
 * Polls the archive: records every file name that ever appears, and compares each complete segment,
 * when first seen, with the server's pg_wal copy.
 */
function startArchiveWatcher(archive: string, pgWal: string) {
  const seen = new Set<string>();
  const checked = new Set<string>();
  const problems: string[] = [];
  let stopped = false;
  const checkOnce = async () => {
    try {
      for (const name of await readdir(archive)) {
        seen.add(name);
        if (!SEGMENT_NAME.test(name) || checked.has(name)) continue;
        checked.add(name);
        const [mine, server] = await Promise.all([readFile(path.join(archive, name)), readFile(path.join(pgWal, name))]);
        if (!mine.equals(server)) problems.push(`archived ${name} differs from pg_wal/${name}`);
      }
    } catch (err) {
      problems.push(`watcher: ${(err as Error).message}`);
    }
  };
  const loop = (async () => {
    while (!stopped) {
      await checkOnce();
      await delay(100);
    }
    await checkOnce();
  })();
  return {
    seen,
    checked,
    problems,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

describe('walstream receive resumes after SIGKILL', () => {
  let cluster: Cluster;
  const running: ToolProcess[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ segmentSizeMB: 1 });
  });

  afterAll(async () => {
    for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await destroyAll();
  });

  it('killed twice mid-stream, then run to --endpos: the archive equals an uninterrupted pg_receivewal\'s', async () => {
    const archive = await tempDir('walstream-resume-');
    const reference = await tempDir('walstream-resume-ref-');
    const pgWal = path.join(cluster.dataDir, 'pg_wal');
    const conn = ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres'];

    // Both slots in one statement, before any WAL is generated: the same restart_lsn.
    const [slots] = await cluster.query<{ r: string; w: string }>(
      `select (pg_create_physical_replication_slot('slot_r', true)).lsn::text as r,
              (pg_create_physical_replication_slot('slot_w', true)).lsn::text as w`,
    );
    expect(slots!.r).toBe(slots!.w);

    const spawnReceiver = (extra: string[] = []) => {
      const child = spawnTool(process.execPath, [WALSTREAM_CLI, 'receive', '-D', archive, '-S', 'slot_w', ...conn, ...extra]);
      running.push(child);
      return child;
    };
    /** SIGKILL, then check what the dead receiver left: at most one .partial, its data a prefix of pg_wal's copy. */
    const sigkill = async (child: ToolProcess) => {
      child.kill('SIGKILL');
      const { signal } = await child.exited;
      expect(signal, `walstream exited by itself; stderr: ${child.output.stderr}`).toBe('SIGKILL');
      const partials = (await readdir(archive)).filter((n) => PARTIAL_NAME.test(n));
      expect(partials.length).toBeLessThanOrEqual(1);
      const partial = await partialExtent(archive);
      if (partial) {
        const [mine, server] = await Promise.all([readFile(path.join(archive, partial.name)), readFile(path.join(pgWal, partial.name.slice(0, 24)))]);
        expect(mine.length).toBe(SEGMENT);
        expect(mine.subarray(0, partial.extent).equals(server.subarray(0, partial.extent)), `${partial.name} is not a prefix of pg_wal's copy`).toBe(true);
      }
      return partial;
    };

    const writer = startWalWriter(cluster);
    const watcher = startArchiveWatcher(archive, pgWal);
    const timings: Record<string, number> = {};
    const t0 = Date.now();
    let writerStopped = false;
    try {
      // Run 1: at least two complete segments, then a .partial seen growing: SIGKILL mid-segment.
      const run1 = spawnReceiver();
      const first = await waitFor(
        async () => ((await completeSegments(archive)).length >= 2 ? partialExtent(archive).then((p) => p && p.extent > 0 && p) : null),
        { timeoutMs: 60_000, what: 'two complete segments and a .partial with data' },
      );
      await waitFor(
        async () => {
          const now = await partialExtent(archive);
          return now !== null && (now.name !== first.name || now.extent > first.extent);
        },
        { timeoutMs: 30_000, intervalMs: 20, what: 'the .partial to grow' },
      );
      const left1 = await sigkill(run1);
      timings.kill1 = Date.now() - t0;
      const afterKill1 = await completeSegments(archive);
      expect(left1?.extent ?? 0, 'killed mid-segment: a .partial with data').toBeGreaterThan(0);

      // Run 2: more progress, then SIGKILL right after a new segment appears.
      const run2 = spawnReceiver();
      await waitFor(async () => (await completeSegments(archive)).length >= afterKill1.length + 2, {
        timeoutMs: 60_000,
        what: 'two more complete segments after the restart',
      });
      const known = new Set(await completeSegments(archive));
      await waitFor(async () => (await completeSegments(archive)).some((n) => !known.has(n)), {
        timeoutMs: 30_000,
        intervalMs: 5,
        what: 'a new complete segment',
      });
      const left2 = await sigkill(run2);
      timings.kill2 = Date.now() - t0;

      await writer.stop();
      writerStopped = true;

      // End position: inside a segment (not a boundary), below the flush position, with a little
      // WAL after it, all in one segment so that segment cannot complete and both sides end in it.
      if (lsnToBigInt(await cluster.currentLsn()) % BigInt(SEGMENT) > BigInt(SEGMENT / 2)) await cluster.switchWal();
      await cluster.generateWal(20_000);
      const endpos = lsnToBigInt(await cluster.flushLsn()) - 7n;
      await cluster.generateWal(30_000);
      const flush = lsnToBigInt(await cluster.flushLsn());
      expect(endpos % BigInt(SEGMENT)).not.toBe(0n);
      expect(endpos).toBeLessThan(flush);
      expect(flush / BigInt(SEGMENT)).toBe(endpos / BigInt(SEGMENT));

      // Run 3: resume from the archive and stop at endpos.
      const run3 = spawnReceiver(['-E', formatLsn(endpos), '-n']);
      const end3 = await Promise.race([run3.exited, delay(120_000).then(() => null)]);
      expect(end3, `walstream -E did not finish; stderr: ${run3.output.stderr}`).toEqual({ code: 0, signal: null });
      expect(run3.output.stderr).toBe('');
      timings.run3 = Date.now() - t0;

      // The reference: one uninterrupted pg_receivewal from the other slot.
      const ref = await runTool('pg_receivewal', ['-D', reference, '-S', 'slot_r', ...conn, '-E', formatLsn(endpos), '-n'], { timeoutMs: 120_000 });
      expect(ref.code, ref.stderr).toBe(0);
      timings.reference = Date.now() - t0;

      await watcher.stop();

      // Same complete segments, byte for byte.
      const mine = await readdir(archive);
      const theirs = await readdir(reference);
      const mineComplete = mine.filter((n) => SEGMENT_NAME.test(n)).sort();
      const theirsComplete = theirs.filter((n) => SEGMENT_NAME.test(n)).sort();
      expect(mineComplete).toEqual(theirsComplete);
      expect(mineComplete.length).toBeGreaterThanOrEqual(afterKill1.length + 3);
      for (const name of mineComplete) {
        const [a, b] = await Promise.all([readFile(path.join(archive, name)), readFile(path.join(reference, name))]);
        expect(a.equals(b), `${name} differs from pg_receivewal's`).toBe(true);
      }

      // Exactly one .partial each, the same one (endpos's segment), equal up to endpos.
      const minePartial = mine.filter((n) => PARTIAL_NAME.test(n));
      const theirsPartial = theirs.filter((n) => PARTIAL_NAME.test(n));
      expect(minePartial).toHaveLength(1);
      expect(minePartial).toEqual(theirsPartial);
      const endSegment = (endpos / BigInt(SEGMENT)).toString(16).toUpperCase().padStart(8, '0');
      expect(minePartial[0]!.slice(16, 24)).toBe(endSegment);
      const offset = Number(endpos % BigInt(SEGMENT));
      const [a, b, server] = await Promise.all([
        readFile(path.join(archive, minePartial[0]!)),
        readFile(path.join(reference, theirsPartial[0]!)),
        readFile(path.join(pgWal, minePartial[0]!.slice(0, 24))),
      ]);
      expect(a.length).toBe(SEGMENT);
      expect(b.length).toBe(SEGMENT);
      expect(a.subarray(0, offset).equals(b.subarray(0, offset)), '.partial differs from pg_receivewal\'s before endpos').toBe(true);
      expect(a.subarray(0, offset).equals(server.subarray(0, offset)), '.partial differs from pg_wal before endpos').toBe(true);

      // Nothing else, now or ever (no .tmp, no second .partial left behind), but walstream's own working
      // files while it runs: the lock (and for an instant the temp file it is linked from) and, for an
      // instant, the direct-I/O probe dot-file. The last run exited cleanly: none of them is left.
      const ownWorkingFile = (n: string) => n.startsWith('walstream.lock') || n.startsWith('.walstream-direct-io-probe-');
      expect(mine.filter((n) => !SEGMENT_NAME.test(n) && !PARTIAL_NAME.test(n))).toEqual([]);
      expect(theirs.filter((n) => !SEGMENT_NAME.test(n) && !PARTIAL_NAME.test(n))).toEqual([]);
      expect([...watcher.seen].filter((n) => !SEGMENT_NAME.test(n) && !PARTIAL_NAME.test(n) && !ownWorkingFile(n))).toEqual([]);

      // Every complete segment the archive ever had matched the server's pg_wal copy.
      expect(watcher.problems).toEqual([]);
      for (const name of mineComplete) {
        const [archived, onServer] = await Promise.all([readFile(path.join(archive, name)), readFile(path.join(pgWal, name))]);
        expect(archived.equals(onServer), `${name} differs from pg_wal`).toBe(true);
      }
      expect(watcher.checked.size).toBe(mineComplete.length);
      console.log(`resume: ${mineComplete.length} complete segments (${afterKill1.length} at the first kill), left at kills: ${JSON.stringify([left1, left2])}, endpos ${formatLsn(endpos)}; ms since start: ${JSON.stringify(timings)}`);
    } finally {
      if (!writerStopped) await writer.stop().catch(() => undefined);
      await watcher.stop();
      for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
