/**
 * Acceptance (#12, 1): the archive's filesystem fills up for real (a small tmpfs, so ENOSPC comes from
 * the kernel). walstream names ENOSPC, never reports as flushed what is not on disk (the slot's
 * restart_lsn stays within what the archive holds, byte for byte equal to pg_wal), survives a kill -9
 * while the disk is full, and once space returns resumes by itself: every segment equals the server's,
 * with no gap. Runs as root (mount); elsewhere it is skipped with the reason printed.
 */
import { readdir, rm, writeFile } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { destroyAll, lsnToBigInt, startCluster, waitFor, type Cluster, type ToolProcess } from '../harness/cluster.js';
import { archivedExtent, spawnWalstream } from '../harness/walstream.js';
import { mountTmpfs, tmpfsUnavailable } from '../harness/tmpfs.js';
import { walFileName } from '../../src/lsn.js';

const SEGMENT = 1024 * 1024;
const unavailable = tmpfsUnavailable();
if (unavailable) console.log(`disk-full test skipped: ${unavailable}`);

afterAll(destroyAll);

/** Every complete segment from `fromLsn`'s up to the one holding `toLsn - 1`, each equal to pg_wal's. */
async function expectArchivedThrough(archive: string, pgWal: string, fromLsn: bigint, toLsn: bigint): Promise<void> {
  const extent = await archivedExtent(archive, pgWal, fromLsn, SEGMENT);
  expect(extent, `archive holds the server's WAL only up to ${extent.toString(16)}`).toBeGreaterThanOrEqual(toLsn);
}

describe.skipIf(unavailable !== null)('disk full (a real tmpfs)', () => {
  it('names ENOSPC, keeps the slot within what is on disk, survives kill -9, and resumes by itself with no gap', async () => {
    const cluster: Cluster = await startCluster();
    const pgWal = path.join(cluster.dataDir, 'pg_wal');
    const slotStart = lsnToBigInt(await cluster.createSlot('full'));
    const archive = mountTmpfs(16 * SEGMENT);
    // Room for a little under two segments: the second fails at its end, while the third is already open
    // (with direct I/O its last chunk is written in the background), the case that lost WAL.
    const { bavail, bsize } = statfsSync(archive);
    const filler = path.join(archive, 'filler');
    await writeFile(filler, Buffer.alloc(Number(bavail) * Number(bsize) - (2 * SEGMENT - 128 * 1024)));
    const args = ['receive', '-D', archive, '-d', cluster.connectionString, '-S', 'full', '-s', '1', '-v'];

    /** The slot must never be ahead of what the archive holds (checked a few times over ~1 s). */
    const expectSlotWithinArchive = async () => {
      for (let i = 0; i < 5; i++) {
        const restart = lsnToBigInt((await cluster.slotRestartLsn('full'))!);
        const extent = await archivedExtent(archive, pgWal, slotStart, SEGMENT);
        expect(restart, `slot at ${restart.toString(16)} is past the archive's ${extent.toString(16)}`).toBeLessThanOrEqual(extent);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const waitForEnospc = (proc: ToolProcess) => waitFor(async () => /no space left on device.*\(ENOSPC\)/.test(proc.output.stderr), { timeoutMs: 30_000, what: 'the ENOSPC warning' });

    const first = spawnWalstream(args);
    await cluster.generateWal(5 * SEGMENT);
    await waitForEnospc(first);
    const warning = first.output.stderr.split('\n').find((l) => l.includes('ENOSPC'))!;
    expect(warning).toMatch(/^walstream: could not .* no space left on device.*\(ENOSPC\).*retrying/);
    expect(first.exitCode, 'walstream must keep trying, not exit').toBeNull();
    await expectSlotWithinArchive();

    // kill -9 while the disk is full, then start again: the restart must not skip what failed.
    first.kill('SIGKILL');
    await first.exited;
    const second = spawnWalstream(args);
    await waitForEnospc(second);
    await expectSlotWithinArchive();

    // Space returns: the same process resumes by itself.
    await rm(filler);
    const freedAt = Date.now();
    await cluster.generateWal(SEGMENT / 2);
    const end = lsnToBigInt(await cluster.switchWal());
    const lastSegment = walFileName(1, end - 1n, SEGMENT);
    await waitFor(async () => (await readdir(archive)).includes(lastSegment), { timeoutMs: 60_000, what: `${lastSegment} archived after space returned` })
      .catch(async (err) => { throw new Error(`${err.message}; archive: ${(await readdir(archive)).join(' ')}; stderr: ${second.output.stderr}`); });
    const resumedMs = Date.now() - freedAt;
    second.kill('SIGTERM');
    expect((await second.exited).code, second.output.stderr).toBe(0);
    console.log(`disk full: "${warning}"; resumed ${resumedMs} ms after space returned`);

    await expectArchivedThrough(archive, pgWal, slotStart, end);
    const names = await readdir(archive);
    expect(names.filter((n) => n.endsWith('.partial') && n < lastSegment), 'a .partial left below the newest segment').toEqual([]);
    expect(names.filter((n) => !/^[0-9A-F]{24}(\.partial)?$/.test(n))).toEqual([]);
    const restart = lsnToBigInt((await cluster.slotRestartLsn('full'))!);
    expect(restart).toBeLessThanOrEqual(await archivedExtent(archive, pgWal, slotStart, SEGMENT));
    expect(restart, 'the final status update moves the slot to what was archived').toBeGreaterThanOrEqual(end - BigInt(SEGMENT));
    console.log(`disk full: ${names.filter((n) => /^[0-9A-F]{24}$/.test(n)).length} complete segments archived from ${walFileName(1, slotStart, SEGMENT)} to ${lastSegment}, 0 lost`);
  });
});
