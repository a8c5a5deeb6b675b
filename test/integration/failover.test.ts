/**
 * Issue 3, acceptance 2: the seeds' scenario end to end.
 *
 * walstream archives from the primary through a slot; a base backup taken with `-X none` is recovered
 * from the archive alone (restore_command = 'walstream restore %f %p -D ARCHIVE') and has every row.
 * Then a failover: the standby is promoted, and walstream, given both hosts, moves to it by itself and
 * keeps archiving onto timeline 2. The old primary (which meanwhile wrote WAL of its own on timeline 1,
 * so the rewind has something to undo) is rewound with pg_rewind and restarted as a standby of the new
 * primary, fed from the archive. Finally the archive is checked for gaps and against the servers' own
 * pg_wal copies, and pg_waldump reads timeline 2 out of it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  baseBackup,
  chownForServer,
  clusterFromDataDir,
  destroyAll,
  lsnToBigInt,
  runTool,
  startCluster,
  startStandby,
  tempDir,
  waitFor,
  type Cluster,
} from '../harness/cluster.js';
import { confLines } from '../harness/pg-cluster.js';
import { WALSTREAM_CLI, listArchive, spawnWalstream } from '../harness/walstream.js';

afterAll(destroyAll);

const MB = 1 << 20;
const SEGMENT = BigInt(MB);
const SLOT = 'arch';
const ROWS = 5000;

/** Segment file name on `timeline` for segment number `segno` (1 MB segments: 4096 per xlogid). */
function walName(timeline: number, segno: bigint): string {
  const hex = (v: bigint | number) => v.toString(16).toUpperCase().padStart(8, '0');
  return hex(timeline) + hex(segno / 4096n) + hex(segno % 4096n);
}

function parseWalName(name: string): { timeline: number; segno: bigint } {
  return { timeline: parseInt(name.slice(0, 8), 16), segno: BigInt('0x' + name.slice(8, 16)) * 4096n + BigInt('0x' + name.slice(16, 24)) };
}

/** Name of the complete segment that a pg_switch_wal() result (end of the switched segment) closes. */
function segmentEndedBy(timeline: number, switchLsn: string): string {
  return walName(timeline, (lsnToBigInt(switchLsn) - 1n) / SEGMENT);
}

/** restore_command running the built CLI; every path single-quoted for the shell. */
function restoreCommand(archive: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `${q(process.execPath)} ${q(WALSTREAM_CLI)} restore %f %p -D ${q(archive)}`;
}

/** An empty signal file in the data dir, owned by the server user. */
async function signalFile(cluster: Cluster, name: 'recovery.signal' | 'standby.signal'): Promise<void> {
  const file = path.join(cluster.dataDir, name);
  await writeFile(file, '');
  await chownForServer(file);
}

/** Elapsed-time marks, printed at the end (for tuning timeouts and for the report). */
const t0 = Date.now();
const marks: string[] = [];
function mark(what: string): void {
  marks.push(`${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s  ${what}`);
}

describe('failover with an archive fed by walstream', () => {
  it('recovers a -X none backup from the archive, then archives across a failover with no gap', async () => {
    // 1. Primary (wal_log_hints for pg_rewind), a streaming standby, the slot on both.
    const primary = await startCluster({ segmentSizeMB: 1, conf: { wal_log_hints: 'on' } });
    const standby = await startStandby(primary);
    await primary.createSlot(SLOT);
    await standby.createSlot(SLOT);
    mark('primary, standby, slots ready');

    const archive = await tempDir('walstream-archive-');
    const ws = spawnWalstream([
      'receive', '-D', archive, '-S', SLOT,
      '-h', '127.0.0.1,127.0.0.1', '-p', `${primary.port},${standby.port}`, '-U', 'postgres', '-v',
    ], { asPostgres: true }); // as an operator runs it: the user restore_command runs as reads its 0600 files
    const stillRunning = () => expect(ws.exitCode, `walstream exited early:\n${ws.output.stderr}`).toBeNull();
    await waitFor(async () => /starting log streaming/.test(ws.output.stderr), { timeoutMs: 30_000, what: 'walstream to start streaming' });
    expect(ws.output.stderr).toContain(`connecting to host=127.0.0.1 port=${primary.port}`);
    mark('walstream streaming from the primary');

    // 2. A base backup without WAL: recovering it depends on the archive.
    const backupDir = await baseBackup(primary, { walMethod: 'none' });
    mark('base backup (-X none) taken');

    // 3. Data after the backup; the segment holding it is complete in the archive.
    await primary.query('create table t (id int primary key, v text not null)');
    await primary.query(`insert into t select g, 'row ' || g from generate_series(1, ${ROWS}) g`);
    const [written] = await primary.query<{ n: string }>('select count(*) as n from t');
    expect(Number(written?.n)).toBe(ROWS);
    const switch1 = await primary.switchWal();
    const seg1 = segmentEndedBy(1, switch1);
    await waitFor(async () => existsSync(path.join(archive, seg1)), { timeoutMs: 60_000, what: `${seg1} complete in the archive` });
    stillRunning();
    mark(`rows written, ${seg1} archived`);

    // 4. Recover the backup from the archive alone; it promotes at the archive's end.
    const restored = await clusterFromDataDir(backupDir);
    await restored.appendConf({ restore_command: restoreCommand(archive) });
    await signalFile(restored, 'recovery.signal');
    await restored.start();
    await waitFor(async () => !(await restored.isInRecovery()), { timeoutMs: 60_000, what: 'the restored backup to finish recovery' });
    const [recovered] = await restored.query<{ n: string; s: string }>('select count(*) as n, sum(id) as s from t');
    expect(Number(recovered?.n)).toBe(ROWS);
    expect(Number(recovered?.s)).toBe((ROWS * (ROWS + 1)) / 2);
    const restoredLog = await readFile(restored.logFile, 'utf8');
    expect(restoredLog).toContain(`restored log file "${seg1}" from archive`);
    expect(restoredLog).not.toMatch(/walstream restore:/); // restore never failed (it logs only on exit 126)
    await restored.destroy();
    mark('backup recovered from the archive with every row');

    // 5. Failover: the primary stops, the standby is promoted; walstream must move to it by itself.
    const failoverAt = Date.now();
    await primary.stop('fast');
    await standby.promote();
    expect(await standby.isInRecovery()).toBe(false);
    mark('primary stopped, standby promoted');
    await standby.query(`insert into t select g, 'after failover ' || g from generate_series(${ROWS + 1}, ${ROWS + 100}) g`);
    await standby.generateWal(1.5 * MB);
    const switch2 = await standby.switchWal();
    const seg2 = segmentEndedBy(2, switch2);
    await waitFor(async () => existsSync(path.join(archive, '00000002.history')) && existsSync(path.join(archive, seg2)), {
      timeoutMs: 60_000,
      what: `00000002.history and ${seg2} in the archive`,
    });
    stillRunning();
    const stderrAfterFailover = ws.output.stderr;
    const lostAt = stderrAfterFailover.search(new RegExp(`port=${primary.port} .*lost`));
    const reconnectAt = stderrAfterFailover.indexOf(`connecting to host=127.0.0.1 port=${standby.port}`);
    expect(lostAt, stderrAfterFailover).toBeGreaterThan(0);
    expect(reconnectAt, stderrAfterFailover).toBeGreaterThan(lostAt);
    expect(stderrAfterFailover).toMatch(/switched to timeline 2 at /);
    expect(stderrAfterFailover).toContain('wrote history file 00000002.history');
    mark(`walstream on timeline 2 (${((Date.now() - failoverAt) / 1000).toFixed(1)} s after the primary's stop), ${seg2} archived`);

    const history = await readFile(path.join(archive, '00000002.history'), 'utf8');
    const fork = /^1\t([0-9A-F]+\/[0-9A-F]+)\t/m.exec(history);
    expect(fork, history).not.toBeNull();
    const forkLsn = lsnToBigInt(fork![1]!);
    expect(await readFile(path.join(archive, '00000002.history'))).toEqual(await readFile(path.join(standby.dataDir, 'pg_wal', '00000002.history')));

    // The old primary comes back on its own and writes on timeline 1: a split brain for pg_rewind to undo.
    await primary.start();
    expect(await primary.isInRecovery()).toBe(false);
    await primary.query(`insert into t select -g, 'divergent ' || g from generate_series(1, 200) g`);
    await primary.query('checkpoint');
    await primary.stop('fast');
    mark('old primary wrote divergent WAL on timeline 1 and stopped');

    // 6. pg_rewind the old primary from the new one, restart it as a standby fed from the archive.
    // (A just-promoted server's pg_control still names timeline 1 until its first checkpoint; pg_rewind
    // reads the timeline from there, so checkpoint first, as its documentation says.)
    await standby.query('checkpoint');
    const rewind = await runTool(
      'pg_rewind',
      ['-D', primary.dataDir, `--source-server=host=127.0.0.1 port=${standby.port} user=postgres dbname=postgres`],
      { asPostgres: true, timeoutMs: 120_000 },
    );
    const rewindOutput = rewind.stdout + rewind.stderr;
    expect(rewind.code, rewindOutput).toBe(0);
    expect(rewindOutput).toContain(`servers diverged at WAL location ${fork![1]} on timeline 1`);
    expect(rewindOutput).not.toContain('no rewind required');
    expect(rewindOutput).toMatch(/Done!/);
    mark('pg_rewind done');
    // pg_rewind copied the new primary's configuration (port, socket dir, and in postgresql.auto.conf a
    // primary_conninfo pointing at the old primary): postgresql.auto.conf is read last, so set ours there.
    await appendFile(
      path.join(primary.dataDir, 'postgresql.auto.conf'),
      confLines({
        port: String(primary.port),
        unix_socket_directories: primary.baseDir,
        primary_conninfo: `host=127.0.0.1 port=${standby.port} user=postgres application_name=old_primary`,
        restore_command: restoreCommand(archive),
        recovery_target_timeline: 'latest',
      }),
    );
    await signalFile(primary, 'standby.signal');
    await primary.start();
    expect(await primary.isInRecovery()).toBe(true);
    await standby.query(`insert into t values (-1000000, 'after rewind')`);
    await standby.generateWal(MB / 2);
    const target = lsnToBigInt(await standby.currentLsn());
    await waitFor(async () => lsnToBigInt((await primary.replayLsn()) ?? '0/0') >= target, {
      timeoutMs: 60_000,
      what: `the rewound old primary to replay up to ${target.toString(16)}`,
    });
    await waitFor(async () => (await primary.query('select status from pg_stat_wal_receiver'))[0]?.status === 'streaming', {
      timeoutMs: 60_000,
      what: 'the rewound old primary to stream from the new primary',
    });
    const [rows] = await primary.query<{ total: string; post: string; divergent: string; rewound: string }>(
      `select count(*) as total,
              count(*) filter (where id between ${ROWS + 1} and ${ROWS + 100}) as post,
              count(*) filter (where v like 'divergent %') as divergent,
              count(*) filter (where v = 'after rewind') as rewound
         from t`,
    );
    expect(rows).toEqual({ total: String(ROWS + 101), post: '100', divergent: '0', rewound: '1' });
    const oldPrimaryLog = await readFile(primary.logFile, 'utf8');
    expect(oldPrimaryLog).toMatch(/restored log file "00000002\.history" from archive/);
    expect(oldPrimaryLog).toMatch(/restored log file "00000002[0-9A-F]{16}" from archive/);
    stillRunning();
    mark('old primary is a standby of the new one, fed from the archive');

    // More timeline 2 WAL after all that, still archived by the same walstream process.
    await standby.generateWal(1.25 * MB);
    const switch3 = await standby.switchWal();
    const seg3 = segmentEndedBy(2, switch3);
    await waitFor(async () => existsSync(path.join(archive, seg3)), { timeoutMs: 60_000, what: `${seg3} in the archive` });
    stillRunning();

    // 7. SIGINT: a clean exit. Then stop the servers so their pg_wal stays put while it is compared.
    ws.kill('SIGINT');
    const exit = await ws.exited;
    expect(exit, ws.output.stderr).toEqual({ code: 0, signal: null });
    expect(ws.output.stderr.match(/starting log streaming/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
    // walstream streamed through the slot on the new primary too: its final status moved restart_lsn.
    expect(lsnToBigInt((await standby.slotRestartLsn(SLOT)) ?? '0/0')).toBeGreaterThanOrEqual(lsnToBigInt(switch3));
    await primary.stop('fast');
    await standby.stop('fast');
    mark('walstream exited 0 on SIGINT; servers stopped');

    // 8. No gap. Timeline 1 runs without a hole up to the fork segment, timeline 2 from there on.
    const listing = await listArchive(archive);
    expect(listing.other).toEqual([]);
    expect(listing.history).toEqual(['00000002.history']);
    const forkSeg = forkLsn / SEGMENT;
    const segnos = (timeline: number, names: string[]) =>
      names.map((n) => parseWalName(n.slice(0, 24))).filter((s) => s.timeline === timeline).map((s) => s.segno);
    const contiguous = (list: bigint[]) => list.every((s, i) => i === 0 || s === list[i - 1]! + 1n);
    const tl1 = segnos(1, listing.complete);
    const tl2 = segnos(2, listing.complete);
    const summary = `archive: ${JSON.stringify(listing)}; fork ${fork![1]}`;
    expect(tl1.length, summary).toBeGreaterThan(0);
    expect(contiguous(tl1), summary).toBe(true);
    expect(tl1[tl1.length - 1], summary).toBe(forkSeg - 1n);
    expect(segnos(1, listing.partial), summary).toEqual(forkLsn % SEGMENT === 0n ? [] : [forkSeg]);
    expect(contiguous(tl2), summary).toBe(true);
    expect(tl2[0], summary).toBe(forkSeg);
    expect(tl2).toContain(parseWalName(seg2).segno);
    expect(tl2[tl2.length - 1]! >= parseWalName(seg3).segno, summary).toBe(true);
    // A .partial on timeline 2 can only be where streaming stopped, right after the last complete segment
    // (none when nothing past the last switch had arrived).
    expect([[], [tl2[tl2.length - 1]! + 1n]], summary).toContainEqual(segnos(2, listing.partial));
    // The backup's WAL is in there: the first archived segment is no later than the data's.
    expect(tl1[0]! <= parseWalName(seg1).segno).toBe(true);

    // Every complete segment equals the servers' own copy wherever one is left in their pg_wal
    // (the new primary holds both timelines; the old one still has timeline 1 from before the fork).
    const compared = { tl1: 0, tl2: 0 };
    const mismatched: string[] = [];
    for (const name of listing.complete) {
      const ours = await readFile(path.join(archive, name));
      expect(ours.length).toBe(MB);
      const dirs = name.startsWith('00000001') ? [standby.dataDir, primary.dataDir] : [standby.dataDir];
      for (const dir of dirs) {
        const theirs = path.join(dir, 'pg_wal', name);
        if (!existsSync(theirs)) continue;
        if (!ours.equals(await readFile(theirs))) mismatched.push(`${name} (${dir})`);
        if (name.startsWith('00000001')) compared.tl1++;
        else compared.tl2++;
      }
    }
    expect(mismatched).toEqual([]);
    expect(compared.tl1).toBeGreaterThan(0);
    expect(compared.tl2).toBeGreaterThan(0);

    // pg_waldump reads timeline 2 out of the archive, from the fork segment to the first switch.
    const dump = await runTool('pg_waldump', ['-p', archive, walName(2, forkSeg), seg2]);
    expect(dump.code, dump.stderr).toBe(0);
    expect(dump.stdout).toMatch(/SWITCH/);
    expect(dump.stdout).toMatch(/Heap/);
    mark(`archive checked: ${tl1.length} + ${tl2.length} complete segments, compared ${compared.tl1} + ${compared.tl2} with pg_wal`);

    console.log(`failover test timings:\n${marks.join('\n')}\nwalstream stderr:\n${ws.output.stderr}`);
  });

  it('keeps retrying a host that refuses it during the failover, once it has streamed', async () => {
    // A refusal (here pg_hba.conf) is fatal only before walstream has ever streamed: a configuration
    // mistake. After a lost connection it is a host not ready yet, to be retried like any other.
    const primary = await startCluster({ segmentSizeMB: 1 });
    const standby = await startStandby(primary);
    await primary.createSlot(SLOT);
    await standby.createSlot(SLOT);
    const archive = await tempDir('walstream-archive-');
    const ws = spawnWalstream([
      'receive', '-D', archive, '-S', SLOT,
      '-h', '127.0.0.1,127.0.0.1', '-p', `${primary.port},${standby.port}`, '-U', 'postgres', '-v',
    ], { asPostgres: true }); // as an operator runs it: the user restore_command runs as reads its 0600 files
    await primary.generateWal(MB / 2);
    const seg = segmentEndedBy(1, await primary.switchWal());
    await waitFor(async () => existsSync(path.join(archive, seg)), { timeoutMs: 60_000, what: `${seg} in the archive` });

    const hba = path.join(standby.dataDir, 'pg_hba.conf');
    const hbaLines = await readFile(hba, 'utf8');
    await writeFile(hba, 'host replication all 127.0.0.1/32 reject\n' + hbaLines);
    await standby.reload();
    await primary.stop('fast');
    // Refused at least twice (a retry after the backoff), and still running.
    await waitFor(async () => (ws.output.stderr.match(/pg_hba\.conf rejects replication connection/g)?.length ?? 0) >= 2 || ws.exitCode !== null, {
      timeoutMs: 30_000,
      what: 'walstream to be refused by the standby twice',
    });
    expect(ws.exitCode, ws.output.stderr).toBeNull();

    await standby.promote();
    await writeFile(hba, hbaLines);
    await standby.reload();
    await standby.generateWal(MB / 2);
    const seg2 = segmentEndedBy(2, await standby.switchWal());
    await waitFor(async () => existsSync(path.join(archive, seg2)) || ws.exitCode !== null, { timeoutMs: 60_000, what: `${seg2} in the archive` });
    expect(ws.exitCode, ws.output.stderr).toBeNull();
    expect(ws.output.stderr).toMatch(/switched to timeline 2 at /);
    ws.kill('SIGINT');
    expect(await ws.exited, ws.output.stderr).toEqual({ code: 0, signal: null });

    const listing = await listArchive(archive);
    const [forkText] = /^1\t([0-9A-F]+\/[0-9A-F]+)\t/m.exec(await readFile(path.join(archive, '00000002.history'), 'utf8'))!.slice(1);
    const forkSeg = lsnToBigInt(forkText!) / SEGMENT;
    const names = listing.complete.map(parseWalName);
    const tl1 = names.filter((n) => n.timeline === 1).map((n) => n.segno);
    const tl2 = names.filter((n) => n.timeline === 2).map((n) => n.segno);
    const contiguous = (list: bigint[]) => list.every((s, i) => i === 0 || s === list[i - 1]! + 1n);
    expect(contiguous(tl1) && contiguous(tl2), JSON.stringify(listing)).toBe(true);
    expect(tl1[tl1.length - 1], JSON.stringify(listing)).toBe(forkSeg - 1n);
    expect(tl2[0], JSON.stringify(listing)).toBe(forkSeg);
  });
});
