/**
 * The archive guards itself, against real clusters (1 MB segments) and the built CLI:
 *
 * 1. One archiver per archive (walstream.lock): a second receiver on a directory in use exits at once
 *    with one line naming the holder; after the holder is SIGKILLed, the next receiver takes its stale
 *    lock over, resumes with no gap, and leaves no lock when it stops cleanly.
 * 2. The newest complete segment must be whole (zero-length, short, or a first page header that does
 *    not match its name): it is set aside as NAME.damaged, bytes kept, and streamed again, so the
 *    archive ends equal to pg_wal with no gap.
 */
import { open, readFile, readdir, truncate } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delay, destroyAll, lsnToBigInt, startCluster, tempDir, waitFor, type Cluster, type ToolProcess } from '../harness/cluster.js';
import { archivedExtent, differingFiles, listArchive, runWalstream, spawnWalstream } from '../harness/walstream.js';
import { formatLsn, walFileName } from '../../src/lsn.js';

const SEGMENT = 1024 * 1024;
const LOCK = 'walstream.lock';

let cluster: Cluster;
let pgWal: string;

beforeAll(async () => {
  cluster = await startCluster();
  pgWal = path.join(cluster.dataDir, 'pg_wal');
  // Never used: keeps pg_wal from removing anything the archives are compared with.
  await cluster.createSlot('keep');
});

afterAll(destroyAll);

/** The pid recorded in the archive's lock file, or null when there is none. */
async function lockPid(archive: string): Promise<number | null> {
  const text = await readFile(path.join(archive, LOCK), 'utf8').catch(() => null);
  const pid = text?.match(/^pid=(\d+)$/m)?.[1];
  return pid ? Number(pid) : null;
}

/** Every complete segment in `archive` byte for byte equal to pg_wal's, and no gap from `fromLsn` up to `toLsn`. */
async function expectEqualToPgWal(archive: string, fromLsn: bigint, toLsn: bigint): Promise<void> {
  const { complete } = await listArchive(archive);
  expect(await differingFiles(archive, pgWal, complete), 'archived segments that differ from pg_wal').toEqual([]);
  const extent = await archivedExtent(archive, pgWal, fromLsn, SEGMENT);
  expect(extent, `archive holds the server's WAL only up to ${formatLsn(extent)}, not ${formatLsn(toLsn)}`).toBeGreaterThanOrEqual(toLsn);
}

/** Waits for complete segment `name` in the archive, reporting the archive and the receiver's stderr on timeout. */
async function waitForSegment(archive: string, name: string, proc: ToolProcess): Promise<void> {
  await waitFor(async () => (await readdir(archive)).includes(name), { timeoutMs: 30_000, what: `${name} archived` })
    .catch(async (err) => { throw new Error(`${err.message}; archive: ${(await readdir(archive)).join(' ')}; stderr: ${proc.output.stderr}`); });
}

describe('one archiver per archive (walstream.lock)', () => {
  it('refuses a second receiver at once naming the holder, takes a SIGKILLed holder\'s lock over, resumes with no gap', async () => {
    const archive = await tempDir('walstream-guard-lock-');
    const slotStart = lsnToBigInt(await cluster.createSlot('a'));
    const slotB = await cluster.createSlot('b');
    const receive = (slot: string) => spawnWalstream(['receive', '-D', archive, '-d', cluster.connectionString, '-S', slot, '-s', '1']);

    // A streams.
    const a = receive('a');
    await waitFor(async () => {
      const { complete, partial } = await listArchive(archive);
      return complete.length + partial.length > 0;
    }, { timeoutMs: 30_000, what: 'receiver A to start streaming' });
    expect(await lockPid(archive), 'the lock names A').toBe(a.pid);

    // B, on the same directory with its own slot, exits at once naming A.
    const t0 = Date.now();
    const b = receive('b');
    const ended = await Promise.race([b.exited, delay(5000).then(() => null)]);
    expect(ended, `receiver B did not exit within 5 s; stderr: ${b.output.stderr}`).toEqual({ code: 1, signal: null });
    const refusedMs = Date.now() - t0;
    const lines = b.output.stderr.split('\n').filter((l) => l !== '');
    expect(lines, b.output.stderr).toHaveLength(1);
    expect(lines[0]!.startsWith(`walstream: error: archive "${archive}" is in use by walstream pid ${a.pid} on host ${hostname()} (since `), lines[0]).toBe(true);
    expect(lines[0]).toContain('in use');
    expect(b.output.stdout).toBe('');
    // A is untouched: still running, still the holder; B never streamed from its slot.
    expect(a.exitCode, a.output.stderr).toBeNull();
    expect(await lockPid(archive)).toBe(a.pid);
    expect(await cluster.slotRestartLsn('b')).toBe(slotB);

    // A archives through a switch, then dies by SIGKILL: its lock stays behind, stale.
    await cluster.generateWal(SEGMENT);
    const end1 = lsnToBigInt(await cluster.switchWal());
    await waitForSegment(archive, walFileName(1, end1 - 1n, SEGMENT), a);
    a.kill('SIGKILL');
    expect((await a.exited).signal).toBe('SIGKILL');
    expect(await lockPid(archive), 'a SIGKILLed receiver leaves its lock').toBe(a.pid);

    // C (slot a) takes the stale lock over, resumes, and archives new WAL.
    const c = receive('a');
    await waitFor(async () => (await lockPid(archive)) === c.pid, { timeoutMs: 10_000, what: 'receiver C to take the stale lock over' })
      .catch((err) => { throw new Error(`${err.message}; C exited ${c.exitCode}; stderr: ${c.output.stderr}`); });
    await cluster.generateWal(SEGMENT + SEGMENT / 2);
    const end2 = lsnToBigInt(await cluster.switchWal());
    await waitForSegment(archive, walFileName(1, end2 - 1n, SEGMENT), c);
    c.kill('SIGTERM');
    expect(await c.exited, c.output.stderr).toEqual({ code: 0, signal: null });
    expect(c.output.stderr, 'receiver C reported a problem').toBe('');

    await expectEqualToPgWal(archive, slotStart, end2);
    const { partial, other } = await listArchive(archive);
    expect(other, 'after a clean exit: no lock, no takeover claim, no temporary file').toEqual([]);
    expect(partial.length).toBeLessThanOrEqual(1);
    console.log(`archive-guard lock: B refused in ${refusedMs} ms`);
  });
});

interface Damage {
  what: string;
  /** Damages the segment file in place; returns its bytes afterwards (what NAME.damaged must keep). */
  apply(file: string): Promise<Buffer>;
}

/** Overwrites `bytes` at offset `at` of `file`. */
async function overwrite(file: string, at: number, bytes: Buffer): Promise<Buffer> {
  const handle = await open(file, 'r+');
  try {
    await handle.write(bytes, 0, bytes.length, at);
  } finally {
    await handle.close();
  }
  return readFile(file);
}

const DAMAGES: Damage[] = [
  { what: 'zero-length', apply: async (file) => { await truncate(file, 0); return readFile(file); } },
  { what: 'short (300,000 bytes)', apply: async (file) => { await truncate(file, 300_000); return readFile(file); } },
  { what: 'full size, first 40 bytes zeroed', apply: (file) => overwrite(file, 0, Buffer.alloc(40)) },
  {
    what: 'full size, timeline 2 in its first page header',
    apply: (file) => { const tli = Buffer.alloc(4); tli.writeUInt32LE(2); return overwrite(file, 4, tli); },
  },
];

/** Generates WAL and returns a flushed LSN inside a segment (not on a boundary), as an -E endpoint. */
async function endposAfter(bytes: number): Promise<bigint> {
  await cluster.generateWal(bytes);
  let end = lsnToBigInt(await cluster.flushLsn());
  if (end % BigInt(SEGMENT) === 0n) {
    await cluster.generateWal(10_000);
    end = lsnToBigInt(await cluster.flushLsn());
  }
  return end;
}

describe('the newest complete segment must be whole', () => {
  let slotCount = 0;

  it.each(DAMAGES)('$what: set aside as NAME.damaged, bytes kept, streamed again with no gap', async (damage) => {
    const archive = await tempDir('walstream-guard-damaged-');
    const slot = `damaged_${++slotCount}`;
    const slotStart = lsnToBigInt(await cluster.createSlot(slot));
    const receive = (endpos: bigint) => runWalstream(['receive', '-D', archive, '-d', cluster.connectionString, '-S', slot, '-E', formatLsn(endpos), '-n'], { timeoutMs: 30_000 });

    // Run 1: a few complete segments and the endpoint's .partial.
    const end1 = await endposAfter(2 * SEGMENT + SEGMENT / 2);
    const run1 = await receive(end1);
    expect(run1.code, run1.stderr).toBe(0);
    const before = await listArchive(archive);
    expect(before.complete.length, before.complete.join(' ')).toBeGreaterThanOrEqual(2);
    expect(before.partial).toEqual([`${walFileName(1, end1, SEGMENT)}.partial`]);
    await expectEqualToPgWal(archive, slotStart, end1);

    // Damage the newest complete segment (the one below the .partial).
    const name = before.complete.at(-1)!;
    expect(name).toBe(walFileName(1, end1 - BigInt(SEGMENT), SEGMENT));
    const damagedBytes = await damage.apply(path.join(archive, name));

    // Run 2 to a later endpoint: NAME set aside, streamed again.
    const end2 = await endposAfter(SEGMENT);
    const run2 = await receive(end2);
    expect(run2.code, run2.stderr).toBe(0);
    const warnings = run2.stderr.split('\n').filter((l) => l !== '');
    expect(warnings.filter((l) => l.includes(name) && l.includes('set aside')), run2.stderr).toHaveLength(1);
    expect(run2.stderr).toContain(`${name}.damaged`);

    const after = await listArchive(archive);
    expect(after.other, 'the damaged file, kept; nothing else (no lock after a clean exit)').toEqual([`${name}.damaged`]);
    const kept = await readFile(path.join(archive, `${name}.damaged`));
    expect(kept.length).toBe(damagedBytes.length);
    expect(kept.equals(damagedBytes), `${name}.damaged does not hold the damaged bytes`).toBe(true);
    expect(after.complete).toContain(name);
    expect((await readFile(path.join(archive, name))).equals(await readFile(path.join(pgWal, name))), `${name} streamed again differs from pg_wal`).toBe(true);
    expect(after.partial).toEqual([`${walFileName(1, end2, SEGMENT)}.partial`]);
    await expectEqualToPgWal(archive, slotStart, end2);
  });
});
