/**
 * Issue 3, acceptance 1: a streaming standby is promoted while walstream and pg_receivewal both archive
 * from it. walstream must follow the switch onto timeline 2 on the same connection, write
 * 00000002.history byte-identical to pg_receivewal's, and archive the same complete segments on both
 * timelines.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { destroyAll, lsnToBigInt, spawnTool, startCluster, startStandby, tempDir, waitFor } from '../harness/cluster.js';
import { differingFiles, listArchive, spawnWalstream } from '../harness/walstream.js';
import { WalReceiver, formatLsn } from 'pg-walstream';

afterAll(destroyAll);

const MB = 1 << 20;

describe('timeline following', () => {
  it('follows a promotion onto timeline 2 exactly as pg_receivewal does', async () => {
    const primary = await startCluster({ segmentSizeMB: 1 });
    await primary.generateWal(2 * MB);
    const standby = await startStandby(primary);
    await standby.createSlot('ref');
    await standby.createSlot('ws');

    const refDir = await tempDir('ref-');
    const wsDir = await tempDir('ws-');
    const conn = ['-h', '127.0.0.1', '-p', String(standby.port), '-U', 'postgres'];
    const ref = spawnTool('pg_receivewal', ['-D', refDir, '-S', 'ref', ...conn, '-n', '--no-sync']);
    const ws = spawnWalstream(['receive', '-D', wsDir, '-S', 'ws', ...conn, '-n', '--no-sync', '-v']);

    // Timeline 1 WAL arrives through the standby.
    await primary.generateWal(2 * MB);
    await primary.switchWal();
    await primary.generateWal(MB / 4); // the switch point falls inside a segment: its TL1 copy stays .partial
    const tl1End = lsnToBigInt(await primary.currentLsn());
    await waitFor(async () => lsnToBigInt((await standby.replayLsn())!) >= tl1End, { what: 'standby replay' });

    await standby.promote();
    await primary.stop('immediate');
    expect(await standby.isInRecovery()).toBe(false);

    // Timeline 2 WAL on the promoted standby.
    await standby.generateWal(3 * MB);
    await standby.switchWal();
    await standby.generateWal(MB / 4);
    const tl2Lsn = lsnToBigInt(await standby.currentLsn());
    const lastName = (await standby.query<{ f: string }>(`select pg_walfile_name('${await standby.currentLsn()}') as f`))[0].f;

    // Both reach the same complete segment on timeline 2, then stop.
    const complete = (dir: string) => existsSync(path.join(dir, lastName + '.partial')) && existsSync(path.join(dir, '00000002.history'));
    await waitFor(async () => complete(refDir) && complete(wsDir), { what: `both archives reaching ${lastName} (tl2 ${tl2Lsn.toString(16)})`, timeoutMs: 60_000 });
    ws.kill('SIGINT');
    ref.kill('SIGINT');
    const [wsExit] = await Promise.all([ws.exited, ref.exited]);
    expect(wsExit.code, ws.output.stderr).toBe(0);
    expect(ws.output.stderr).toMatch(/switched to timeline 2/);

    const [a, b] = await Promise.all([listArchive(refDir), listArchive(wsDir)]);
    expect(b.history).toEqual(['00000002.history']);
    expect(a.history).toEqual(b.history);
    expect(await differingFiles(refDir, wsDir, ['00000002.history'])).toEqual([]);

    // Complete segments on both timelines: the same names and bytes.
    expect(b.complete.some((n) => n.startsWith('00000001'))).toBe(true);
    expect(b.complete.some((n) => n.startsWith('00000002'))).toBe(true);
    expect(b.complete).toEqual(a.complete);
    expect(await differingFiles(refDir, wsDir, b.complete)).toEqual([]);
    // The old timeline's last segment stays .partial on both sides.
    const tl1Partials = (x: typeof a) => x.partial.filter((n) => n.startsWith('00000001'));
    expect(tl1Partials(b)).toHaveLength(1);
    expect(tl1Partials(b)).toEqual(tl1Partials(a));
    expect(b.other).toEqual([]);
  });

  it('WalReceiver surfaces a promotion as a \'timeline\' event and as chunk.timeline, not as an error', async () => {
    const primary = await startCluster({ segmentSizeMB: 1 });
    await primary.generateWal(MB / 2);
    const standby = await startStandby(primary);
    const receiver = new WalReceiver({ connection: `host=127.0.0.1 port=${standby.port} user=postgres` });
    const switches: { timeline: number; startLsn: bigint; previousTimeline: number }[] = [];
    receiver.on('timeline', (e) => switches.push(e));
    const seen = new Set<number>();
    let promoted = false;
    let lastEnd = 0n;
    for await (const chunk of receiver) {
      seen.add(chunk.timeline);
      if (lastEnd !== 0n && chunk.timeline === 1) expect(chunk.startLsn).toBe(lastEnd); // contiguous on a timeline
      lastEnd = chunk.startLsn + BigInt(chunk.data.length);
      if (!promoted) {
        promoted = true;
        await primary.generateWal(MB / 4);
        await standby.promote();
        await standby.generateWal(MB / 4);
      }
      if (chunk.timeline === 2) break;
    }
    await receiver.close();
    expect(switches).toHaveLength(1);
    expect(switches[0]).toMatchObject({ timeline: 2, previousTimeline: 1 });
    expect([...seen].sort()).toEqual([1, 2]);
    const history = (await standby.query<{ content: string }>(`select pg_read_file('pg_wal/00000002.history') as content`))[0].content;
    expect(history).toContain(`\t${formatLsn(switches[0].startLsn)}\t`);
  });
});
