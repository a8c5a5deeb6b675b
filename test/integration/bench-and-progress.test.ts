/**
 * `walstream bench` against a real server (issue 6): the null sink receives the requested amount of
 * retained WAL and leaves the slot where it was; --sink dir archives exactly what `receive` would
 * (byte-identical to pg_wal); bad input is one line and exit 1. And the live progress lines of
 * `bench` and `receive --progress` on a terminal (a pty from script(1)).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { destroyAll, lsnToBigInt, spawnTool, startCluster, tempDir } from '../harness/cluster.js';
import { WALSTREAM_CLI, listArchive, runWalstream } from '../harness/walstream.js';

afterAll(destroyAll);

const MB = 1 << 20;

describe('walstream bench', () => {
  it('measures a null sink and a directory over a slot\'s retained WAL, and refuses bad input in one line', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    const restart = await cluster.createSlot('wsbench');
    await cluster.generateWal(5 * MB);
    const conn = ['-d', cluster.connectionString];
    const segmentStart = lsnToBigInt(restart) - (lsnToBigInt(restart) % BigInt(MB));

    // Null sink: exactly --bytes from the slot's segment start, nothing acknowledged.
    const nullRun = await runWalstream(['bench', ...conn, '-S', 'wsbench', '--bytes', '3MB', '--json']);
    expect(nullRun.code, nullRun.stderr).toBe(0);
    const nullSummary = JSON.parse(nullRun.stdout.trim());
    expect(nullSummary.sink).toBe('null');
    expect(nullSummary.bytes).toBe(3 * MB);
    expect(lsnToBigInt(nullSummary.startLsn)).toBe(segmentStart);
    expect(nullSummary.mibPerSecond).toBeGreaterThan(0);
    expect(nullSummary.peakRssBytes).toBeGreaterThan(0);
    expect(await cluster.slotRestartLsn('wsbench')).toBe(restart);
    expect(nullRun.stderr).not.toContain('\r'); // not a terminal: no progress line

    // Directory sink: the Archiver's archive, complete segments identical to the server's.
    const archive = await tempDir('wsbench-');
    const dirRun = await runWalstream(['bench', ...conn, '-S', 'wsbench', '--bytes', '2MB', '--sink', 'dir', '-D', archive]);
    expect(dirRun.code, dirRun.stderr).toBe(0);
    expect(dirRun.stdout).toMatch(/^walstream bench: 2\.0 MiB \(2097152 bytes, .* MiB\/s into a directory, fsynced; CPU/);
    const { complete } = await listArchive(archive);
    expect(complete.length).toBe(2);
    for (const name of complete) {
      const server = path.join(cluster.dataDir, 'pg_wal', name);
      if (existsSync(server)) expect(readFileSync(path.join(archive, name)).equals(readFileSync(server)), name).toBe(true);
    }

    for (const [args, message] of [
      [['--bytes', '0'], /invalid size "0" for --bytes/],
      [['--sink', 'null', '-D', archive], /-D\/--directory needs --sink dir/],
      [['-S', 'no_such_slot'], /replication slot "no_such_slot" does not exist/],
      [['--sink', 'dir', '-D', archive], /is not empty/],
    ] as const) {
      const bad = await runWalstream(['bench', ...conn, ...args]);
      expect(bad.code, args.join(' ')).toBe(1);
      expect(bad.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(bad.stderr).toMatch(message);
    }
  });

  it.skipIf(!existsSync('/usr/bin/script'))('draws a live progress line on a terminal (MiB/s, LSN, lag) and clears it before the summary', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    await cluster.createSlot('wsterm');
    await cluster.generateWal(MB);
    // More than is retained: the rest is live WAL, written below over a couple of seconds, so the line
    // (drawn every 250 ms) has time to appear. `script` gives the command a terminal.
    const command = `'${process.execPath}' '${WALSTREAM_CLI}' bench -d '${cluster.connectionString}' -S wsterm --bytes 4MB`;
    const run = spawnTool('/usr/bin/script', ['-qefc', command, '/dev/null']);
    for (let i = 0; i < 8; i++) {
      await cluster.generateWal(MB / 2);
      await new Promise((r) => setTimeout(r, 250));
    }
    const { code } = await run.exited;
    const screen = run.output.stdout;
    expect(code, screen).toBe(0);
    const drawn = screen.split('\r').filter((l) => /MiB\/s/.test(l) && / of 4\.0 MiB/.test(l));
    expect(drawn.length, screen).toBeGreaterThanOrEqual(2);
    expect(drawn.some((l) => /[0-9A-F]+\/[0-9A-F]+ .*(behind the server|at the server's position)/.test(l)), screen).toBe(true);
    // Cleared (spaces, then \r) before the summary, which starts a line of its own.
    expect(screen).toMatch(/\r +\rwalstream bench: 4\.0 MiB \(4194304 bytes/);
  });

  it.skipIf(!existsSync('/usr/bin/script'))('walstream receive --progress draws the same kind of line, and -v log lines do not mix with it', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    await cluster.createSlot('wsprogress');
    const archive = await tempDir('wsprogress-');
    await cluster.generateWal(MB / 2);
    const command = `'${process.execPath}' '${WALSTREAM_CLI}' receive -D '${archive}' -S wsprogress -d '${cluster.connectionString}' --progress -v`;
    const run = spawnTool('/usr/bin/script', ['-qefc', command, '/dev/null']);
    for (let i = 0; i < 8; i++) {
      await cluster.generateWal(MB / 2);
      await new Promise((r) => setTimeout(r, 250));
    }
    const { complete } = await waitForSegments(archive, 3);
    expect(complete.length).toBeGreaterThanOrEqual(3);
    run.kill('SIGINT');
    const { code } = await run.exited;
    const screen = run.output.stdout;
    expect(code, screen).toBe(0);
    const drawn = screen.split('\r').filter((l) => /^ {2}received [0-9A-F]+\/[0-9A-F]+ {2}flushed [0-9A-F]+\/[0-9A-F]+ {2}(\d+|–) MiB\/s {2}timeline 1 {2}\d+ segments archived/.test(l));
    expect(drawn.length, screen).toBeGreaterThanOrEqual(2);
    // Every log line starts at the beginning of a line: the progress line was cleared first.
    const logged = screen.split('walstream: finished segment').length - 1;
    const onTheirOwnLine = (screen.match(/(^|\n|\r {2,}\r)walstream: finished segment/g) ?? []).length;
    expect(logged, screen).toBeGreaterThanOrEqual(3);
    expect(onTheirOwnLine, screen).toBe(logged);
  });
});

async function waitForSegments(dir: string, count: number): Promise<{ complete: string[] }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const listed = await listArchive(dir);
    if (listed.complete.length >= count || Date.now() > deadline) return listed;
    await new Promise((r) => setTimeout(r, 100));
  }
}
