/**
 * `walstream receive --target s3://…` against a real S3 server (s3rver on 127.0.0.1): every segment in
 * the bucket is byte-identical to pg_receivewal's archive of the same range (plain and -Z lz4, decoded
 * with the standard tool), the spool is trimmed only to what the bucket confirmed (--keep-local), a
 * restart uploads what the bucket lacks, and --upload-partial-every keeps the bucket's NAME.partial
 * close behind the server.
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { bucketContents } from '../harness/bucket.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyAll, lsnToBigInt, runTool, startCluster, tempDir, waitFor, type Cluster } from '../harness/cluster.js';
import { runWalstream, spawnWalstream } from '../harness/walstream.js';
import { formatLsn, walFileName } from '../../src/lsn.js';
import { s3ClientOptions, startS3rver, type S3Server } from '../../scripts/s3-servers.mjs';

const MB = 1024 * 1024;
let cluster: Cluster;
let s3: S3Server;
let client: S3Client;
let endpos: bigint;
let reference: string;

const objects = (prefix: string) => bucketContents(client, s3.bucket, prefix);

function s3Env(): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: s3.region };
}

function targetArgs(prefix: string): string[] {
  return ['--target', `s3://${s3.bucket}/${prefix}`, '--s3-endpoint', s3.endpoint, '--s3-path-style'];
}

beforeAll(async () => {
  s3 = await startS3rver();
  client = new S3Client(s3ClientOptions(s3));
  cluster = await startCluster({ segmentSizeMB: 1 });
  for (const slot of ['reference', 'plain', 'lz4']) await cluster.createSlot(slot);
  await cluster.query('create table t (id serial primary key, a text, b int)');
  for (let i = 0; i < 5; i++) await cluster.query(`insert into t (a, b) select md5(g::text || random()::text), g from generate_series(1, 5000) g`);
  for (;;) {
    endpos = lsnToBigInt(await cluster.currentLsn());
    if (endpos % BigInt(MB) >= 8192 && endpos % BigInt(MB) < BigInt(MB - 256 * 1024)) break;
    await cluster.generateWal(64 * 1024);
  }
  await cluster.generateWal(200 * 1024);
  reference = await tempDir('walstream-s3-ref-');
  const ref = await runTool('pg_receivewal', ['-D', reference, '-S', 'reference', ...common()], { timeoutMs: 120_000 });
  expect(ref.code, ref.stderr).toBe(0);
}, 300_000);

function common(): string[] {
  return ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-E', formatLsn(endpos), '-n'];
}

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  await destroyAll();
});

describe('receive --target s3://', () => {
  it('uploads every segment byte-identical to pg_receivewal\'s archive, and the final .partial as its prefix', async () => {
    const spool = await tempDir('walstream-s3-spool-');
    const r = await runWalstream(['receive', '-D', spool, '-S', 'plain', ...common(), ...targetArgs('plain')], { timeoutMs: 120_000, env: s3Env() });
    expect(r.code, r.stderr).toBe(0);
    const theirs = (await readdir(reference)).sort();
    const complete = theirs.filter((n) => /^[0-9A-F]{24}$/.test(n));
    expect(complete.length).toBeGreaterThanOrEqual(3);
    const bucket = await objects('plain');
    for (const name of complete) {
      expect(bucket.get(name)?.equals(await readFile(path.join(reference, name))), name).toBe(true);
    }
    const partial = theirs.find((n) => n.endsWith('.partial'))!;
    const ours = bucket.get(partial)!;
    expect(ours.length).toBeGreaterThanOrEqual(Number(endpos % BigInt(MB)));
    expect(ours.equals((await readFile(path.join(reference, partial))).subarray(0, ours.length))).toBe(true);
    expect([...bucket.keys()].sort()).toEqual([...complete, partial].sort());
  });

  it('with -Z lz4 and --keep-local 1: the bucket decodes to pg_receivewal\'s segments; the spool keeps one complete segment', async () => {
    const spool = await tempDir('walstream-s3-spool-lz4-');
    const r = await runWalstream(['receive', '-D', spool, '-S', 'lz4', '-Z', 'lz4', '--keep-local', '1', ...common(), ...targetArgs('lz4')], { timeoutMs: 120_000, env: s3Env() });
    expect(r.code, r.stderr).toBe(0);
    const complete = (await readdir(reference)).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    const bucket = await objects('lz4');
    for (const name of complete) {
      const decoded = execFileSync('lz4', ['-dc'], { input: bucket.get(`${name}.lz4`), maxBuffer: 64 * MB });
      expect(decoded.equals(await readFile(path.join(reference, name))), name).toBe(true);
    }
    // The segment in progress at the end position goes up as raw WAL (NAME.partial), whatever -Z says.
    const partial = (await readdir(reference)).find((n) => n.endsWith('.partial'))!;
    const raw = bucket.get(partial)!;
    expect(raw.length).toBeGreaterThanOrEqual(Number(endpos % BigInt(MB)));
    expect(raw.equals((await readFile(path.join(reference, partial))).subarray(0, raw.length))).toBe(true);
    const local = (await readdir(spool)).filter((n) => /^[0-9A-F]{24}\.lz4$/.test(n));
    expect(local).toEqual([`${complete[complete.length - 1]}.lz4`]);
  });

  it('a restart uploads the finished segments the bucket lacks', async () => {
    const spool = await tempDir('walstream-s3-spool-restart-');
    await cluster.createSlot('restart');
    const r = await runWalstream(['receive', '-D', spool, '-S', 'restart', ...common()], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    // Streamed into the spool without a bucket: the next run with --target uploads everything first.
    const again = await runWalstream(['receive', '-D', spool, '-S', 'restart', ...common(), ...targetArgs('restart')], { timeoutMs: 120_000, env: s3Env() });
    expect(again.code, again.stderr).toBe(0);
    const bucket = await objects('restart');
    const complete = (await readdir(spool)).filter((n) => /^[0-9A-F]{24}$/.test(n));
    expect(complete.length).toBeGreaterThanOrEqual(3);
    for (const name of complete) expect(bucket.get(name)?.equals(await readFile(path.join(spool, name))), name).toBe(true);
  });
});

describe('verify --source s3://', () => {
  it('passes the uploaded archive, keeps its watermark in the bucket, and names a flipped byte\'s segment', async () => {
    const source = ['--source', `s3://${s3.bucket}/plain`, '--s3-endpoint', s3.endpoint, '--s3-path-style'];
    const first = await runWalstream(['verify', ...source], { env: s3Env() });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^ok: [3-9] segments, \d+ records/m);
    expect((await objects('plain')).has('walstream.verified')).toBe(true);
    // The second run starts after the watermark: nothing new.
    const second = await runWalstream(['verify', ...source], { env: s3Env() });
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/ok: 0 segments after [0-9A-F]{24} \(the watermark/);
    // A flipped byte inside a record of a middle segment: --all finds it and names the object.
    const bucket = await objects('plain');
    const names = [...bucket.keys()].filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    const victim = names[1]!;
    const bytes = Buffer.from(bucket.get(victim)!);
    bytes[300_000] ^= 0xff;
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `plain/${victim}`, Body: bytes }));
    const bad = await runWalstream(['verify', '--all', ...source], { env: s3Env() });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${victim}: `);
  });
});

describe('--upload-partial-every', () => {
  it('keeps the bucket\'s NAME.partial within the interval (plus one upload) of what was committed', async () => {
    const spool = await tempDir('walstream-s3-spool-partial-');
    await cluster.createSlot('partial');
    const child = spawnWalstream(['receive', '-D', spool, '-S', 'partial', '--synchronous', '--upload-partial-every', '1', '-v',
      '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', ...targetArgs('partial')], { env: s3Env() });
    try {
      // Caught up first: then a commit is the only new WAL, and the clock measures its way to the bucket.
      const caughtUp = lsnToBigInt(await cluster.currentLsn());
      await waitFor(async () => {
        const rows = await cluster.query<{ flush_lsn: string | null }>(`select flush_lsn::text from pg_stat_replication where application_name = 'walstream'`);
        return rows[0]?.flush_lsn ? lsnToBigInt(rows[0].flush_lsn) >= caughtUp : false;
      }, { what: 'walstream to catch up' });
      await cluster.query(`insert into t (a, b) values ('marker-partial-upload', -1)`);
      const committed = lsnToBigInt(await cluster.currentLsn());
      const started = Date.now();
      const segment = walFileName(1, committed, MB);
      const partialOf = async () => (await objects('partial')).get(`${segment}.partial`);
      await waitFor(async () => {
        const part = await partialOf();
        return part !== undefined && BigInt(part.length) >= committed % BigInt(MB);
      }, { what: 'the bucket\'s .partial to hold the commit', timeoutMs: 10_000, intervalMs: 100 });
      // Every second an upload: the commit is there within the interval plus one upload.
      expect(Date.now() - started).toBeLessThan(1000 + 2000);
      const part = (await partialOf())!;
      const server = await readFile(path.join(cluster.dataDir, 'pg_wal', segment));
      expect(part.equals(server.subarray(0, part.length))).toBe(true);
      expect(part.includes(Buffer.from('marker-partial-upload'))).toBe(true);
    } catch (err) {
      console.log(child.output.stderr, await readdir(spool), [...(await objects('partial')).entries()].map(([k, v]) => [k, v.length]));
      throw err;
    } finally {
      child.kill('SIGTERM');
      await child.exited;
      await rm(spool, { recursive: true, force: true });
    }
  });
});
