/**
 * `walstream verify` on an archive made by `walstream receive` from a real PostgreSQL (1 MB segments):
 * it passes, and its record count equals pg_waldump's over the same complete segments (pg_waldump
 * reads every record and checks its CRC too: an independent oracle). `receive --verify` checks each
 * segment as it is archived and logs nothing on a healthy stream; a damaged copy of the archive fails.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, destroyAll, runTool, startCluster, tempDir } from '../harness/cluster.js';
import { listArchive, runWalstream } from '../harness/walstream.js';
import { formatLsn, parseLsn } from '../../src/lsn.js';

let cluster: Cluster;
let archive: string;
let receive: { code: number | null; stderr: string };

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.createSlot('verify');
  await cluster.generateWal(2_500_000);
  await cluster.switchWal();
  await cluster.generateWal(600_000);
  const end = parseLsn(await cluster.currentLsn());
  archive = await tempDir('walstream-verify-archive-');
  receive = await runWalstream(['receive', '-D', archive, '-d', cluster.connectionString, '-S', 'verify', '-E', formatLsn(end), '-n', '--verify', '-v'], { timeoutMs: 60_000 });
});

afterAll(destroyAll);

describe('walstream verify on a received archive', () => {
  it('receive --verify checks each segment and logs nothing bad on a healthy stream', () => {
    expect(receive.code, receive.stderr).toBe(0);
    expect(receive.stderr).toMatch(/finished segment/);
    expect(receive.stderr).not.toMatch(/verify:/);
    // Every complete segment was checked (or, when the disk was slower than the stream, skipped).
    const finished = receive.stderr.match(/finished segment/g)!.length;
    const checked = receive.stderr.match(/verified segment|not verified \(busy\)/g)?.length ?? 0;
    expect(checked).toBe(finished);
    expect(receive.stderr).toMatch(/verified segment/);
  });

  it('passes, with pg_waldump\'s record count over the same complete segments', async () => {
    const { complete } = await listArchive(archive);
    expect(complete.length).toBeGreaterThanOrEqual(3);
    const result = await runWalstream(['verify', '-D', archive, '--json'], { timeoutMs: 60_000 });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const json = JSON.parse(result.stdout) as { ok: boolean; segments: number; records: number };
    expect(json.ok).toBe(true);
    expect(json.segments).toBe(complete.length);

    // pg_waldump from the first complete segment's start to the last one's end: the records that
    // start and end inside them (the first segment's leading continuation is skipped by both).
    const sorted = [...complete].sort();
    const segno = (name: string) => BigInt('0x' + name.slice(8, 16)) * 4096n + BigInt('0x' + name.slice(16, 24));
    const start = segno(sorted[0]!) << 20n;
    const end = (segno(sorted.at(-1)!) + 1n) << 20n;
    const dump = await runTool('pg_waldump', ['-p', archive, '-s', formatLsn(start), '-e', formatLsn(end)], { timeoutMs: 60_000 });
    expect(dump.code, dump.stderr).toBe(0);
    const records = dump.stdout.split('\n').filter((line) => line.startsWith('rmgr:')).length;
    expect(records).toBeGreaterThan(1000);
    expect(json.records).toBe(records);

    // The second run reads nothing new.
    const again = await runWalstream(['verify', '-D', archive], { timeoutMs: 60_000 });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^ok: 0 segments after /m);
  });

  it('fails with exit 1, naming the segment, once a byte of a verified segment is flipped (--all)', async () => {
    const { complete } = await listArchive(archive);
    const victim = [...complete].sort()[1]!;
    const file = path.join(archive, victim);
    const bytes = await readFile(file);
    bytes[400_000] ^= 0x40;
    await writeFile(file, bytes);
    const result = await runWalstream(['verify', '-D', archive, '--all'], { timeoutMs: 60_000 });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`^${victim}: record at `, 'm'));
    const usage = await runWalstream(['verify'], { timeoutMs: 30_000 });
    expect(usage.code).toBe(1);
    expect(usage.stderr.trim()).toMatch(/^walstream: error: required option '-D, --directory <ARCHIVE>' not specified \(or give --source s3:\/\/BUCKET\/PREFIX\)$/);
  });
});
