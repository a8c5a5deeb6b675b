/**
 * `walstream receive -Z METHOD` (gzip, lz4, zstd) against pg_receivewal's uncompressed archive of the
 * same range: every compressed segment decodes with the standard CLI (`gzip -d`, `lz4 -d`, `zstd -d`)
 * to exactly pg_receivewal's segment, and the compressed .partial to a prefix of its .partial. Then a
 * SIGKILL mid-stream leaves a .partial that decodes to a prefix of the server's segment, and resuming
 * from it gives the same archive again.
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyAll, lsnToBigInt, runTool, startCluster, tempDir, waitFor, type Cluster } from '../harness/cluster.js';
import { runWalstream, spawnWalstream } from '../harness/walstream.js';
import { formatLsn } from '../../src/lsn.js';

const MB = 1024 * 1024;
const METHODS = [
  { method: 'gzip', suffix: '.gz', cli: ['gzip', '-dc'] },
  { method: 'lz4', suffix: '.lz4', cli: ['lz4', '-dc'] },
  { method: 'zstd', suffix: '.zst', cli: ['zstd', '-dc'] },
] as const;

/** Decode a file with the standard tool (the oracle); a cut frame makes the tool fail, so `tolerant` keeps its output. */
function decodeWithCli(cli: readonly string[], file: string): Buffer {
  return execFileSync(cli[0], [...cli.slice(1), file], { maxBuffer: 64 * MB, stdio: ['ignore', 'pipe', 'pipe'] });
}

let cluster: Cluster;
let endpos: bigint;
let reference: string;
const archives: Record<string, string> = {};

beforeAll(async () => {
  cluster = await startCluster({ segmentSizeMB: 1 });
  const slots = ['reference', ...METHODS.map((m) => m.method)];
  for (const slot of slots) await cluster.createSlot(slot);
  // pgbench-like WAL (not repeated characters): inserts of md5 text, a few segments' worth.
  await cluster.query('create table t (id serial primary key, a text, b int)');
  for (let i = 0; i < 6; i++) await cluster.query(`insert into t (a, b) select md5(g::text || random()::text), g from generate_series(1, 5000) g`);
  // An end position at least a page into a segment, with WAL flushed past it.
  for (;;) {
    endpos = lsnToBigInt(await cluster.currentLsn());
    if (endpos % BigInt(MB) >= 8192 && endpos % BigInt(MB) < BigInt(MB - 256 * 1024)) break;
    await cluster.generateWal(64 * 1024);
  }
  await cluster.generateWal(200 * 1024);
  const common = ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-E', formatLsn(endpos), '-n'];
  reference = await tempDir('walstream-z-ref-');
  const ref = await runTool('pg_receivewal', ['-D', reference, '-S', 'reference', ...common], { timeoutMs: 120_000 });
  expect(ref.code, ref.stderr).toBe(0);
  for (const { method } of METHODS) {
    archives[method] = await tempDir(`walstream-z-${method}-`);
    const r = await runWalstream(['receive', '-D', archives[method]!, '-S', method, '-Z', method, ...common], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
  }
}, 300_000);

afterAll(async () => {
  await destroyAll();
});

describe.each(METHODS)('walstream receive -Z $method', ({ method, suffix, cli }) => {
  it('archives every segment so that the standard tool decodes it to pg_receivewal\'s bytes', async () => {
    const theirs = (await readdir(reference)).sort();
    const ours = (await readdir(archives[method]!)).sort();
    const complete = theirs.filter((n) => /^[0-9A-F]{24}$/.test(n));
    expect(complete.length).toBeGreaterThanOrEqual(3);
    expect(ours).toEqual([...complete.map((n) => n + suffix), theirs.find((n) => n.endsWith('.partial'))!.replace('.partial', `${suffix}.partial`), 'walstream.lock'].filter((n) => n !== 'walstream.lock' || ours.includes(n)).sort());
    for (const name of complete) {
      const decoded = decodeWithCli(cli, path.join(archives[method]!, name + suffix));
      expect(decoded.equals(await readFile(path.join(reference, name))), `${name}${suffix}`).toBe(true);
    }
    // The .partial: our compressed one holds the data up to the end position, pg_receivewal's is padded with zeros.
    const partial = theirs.find((n) => n.endsWith('.partial'))!;
    const decoded = decodeWithCli(cli, path.join(archives[method]!, partial.replace('.partial', `${suffix}.partial`)));
    const padded = await readFile(path.join(reference, partial));
    expect(decoded.length).toBeGreaterThanOrEqual(Number(endpos % BigInt(MB)));
    expect(decoded.equals(padded.subarray(0, decoded.length))).toBe(true);
  });

  it('compresses pgbench-like WAL', async () => {
    const names = (await readdir(archives[method]!)).filter((n) => n.endsWith(suffix));
    let size = 0;
    for (const n of names) size += (await readFile(path.join(archives[method]!, n))).length;
    expect(size).toBeLessThan(names.length * MB * 0.8);
  });
});

describe('a compressed .partial left by SIGKILL', () => {
  it('decodes to a prefix of the segment, and resuming from it gives the same archive', async () => {
    const dir = await tempDir('walstream-z-kill-');
    await cluster.createSlot('killed');
    const start = lsnToBigInt(await cluster.currentLsn());
    const args = ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-S', 'killed', '-Z', 'zstd'];
    const child = spawnWalstream(['receive', '-D', dir, '--synchronous', ...args]);
    // WAL in small commits, so synchronous mode flushes many frames into the .partial.
    await waitFor(async () => (await readdir(dir)).some((n) => n.endsWith('.zst.partial')), { what: 'a .zst.partial' });
    for (let i = 0; i < 40; i++) await cluster.query(`insert into t (a, b) select md5(g::text), g from generate_series(1, 200) g`);
    const flushed = lsnToBigInt(await cluster.currentLsn());
    await waitFor(async () => {
      const rows = await cluster.query<{ flush_lsn: string | null }>(`select flush_lsn::text from pg_stat_replication where application_name = 'walstream'`);
      return rows[0]?.flush_lsn ? lsnToBigInt(rows[0].flush_lsn) >= flushed : false;
    }, { what: 'walstream to flush the inserts' });
    child.kill('SIGKILL');
    await child.exited;

    const partialName = (await readdir(dir)).find((n) => n.endsWith('.zst.partial'))!;
    const segment = partialName.slice(0, 24);
    const decoded = decodeWithCli(['zstd', '-dc'], path.join(dir, partialName));
    const server = await readFile(path.join(cluster.dataDir, 'pg_wal', segment));
    expect(decoded.length).toBeGreaterThan(0);
    expect(decoded.equals(server.subarray(0, decoded.length)), 'the .partial decodes to a prefix of the server\'s segment').toBe(true);
    // Everything reported flushed is in it.
    expect(BigInt(decoded.length)).toBeGreaterThanOrEqual(flushed % BigInt(MB));

    // Resume to an end position past the segment: the segment completes with no stale or doubled bytes.
    await cluster.generateWal(Math.round(1.2 * MB));
    const end = lsnToBigInt(await cluster.currentLsn());
    await cluster.query('select pg_switch_wal()');
    const r = await runWalstream(['receive', '-D', dir, ...args, '-E', formatLsn(end), '-n'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const names = await readdir(dir);
    expect(names).toContain(`${segment}.zst`);
    expect(names.filter((n) => n.startsWith(segment))).toEqual([`${segment}.zst`]);
    for (const name of names.filter((n) => /^[0-9A-F]{24}\.zst$/.test(n))) {
      const bytes = decodeWithCli(['zstd', '-dc'], path.join(dir, name));
      const wal = await readFile(path.join(cluster.dataDir, 'pg_wal', name.slice(0, 24)));
      expect(bytes.equals(wal), name).toBe(true);
    }
    expect(start).toBeLessThan(end);
  }, 180_000);
});
