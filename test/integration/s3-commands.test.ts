/**
 * `walstream cleanup` and `walstream status` against a bucket (issue 17): `--source s3://bucket/prefix`
 * (with --s3-endpoint, --s3-path-style; credentials from the AWS environment) on a real S3 server
 * (s3rver on 127.0.0.1). The same files, real WAL from fixtures/wal plus the names cleanup and status
 * care about, are put in a directory and under a bucket prefix; each command is run on both and must
 * give the same answer: cleanup removes the same names (and nothing outside the prefix), --dry-run
 * removes nothing and lists the same, status reports the same facts (newest segment, timelines, gaps,
 * markers, partials, files set aside, system identifier, exit code). Then the one-line errors: -D with
 * --source, a bad --source, --s3-* without --source, an unreachable server or bucket. Last, the same
 * comparison over what a real `receive --target` wrote: its spool (-D) against its bucket.
 */
import { copyFile, cp, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyAll, lsnToBigInt, startCluster, tempDir } from '../harness/cluster.js';
import { runWalstream } from '../harness/walstream.js';
import { gapMarkerName } from '../../src/archive/gaps.js';
import { formatLsn } from '../../src/lsn.js';
import { s3ClientOptions, startS3rver, type S3Server } from '../../scripts/s3-servers.mjs';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/wal');
const MB = 1 << 20;

let s3: S3Server;
let client: S3Client;
let template: string;
let counter = 0;

/** Real WAL (1 MB segments, timelines 1 and 2) with segment 8 left out (a gap), and the names around it. */
async function makeTemplate(): Promise<string> {
  const dir = await tempDir('walstream-s3-commands-');
  for (const name of ['000000010000000000000007', '000000010000000000000009', '00000001000000000000000A.partial', '00000002.history', '00000002000000000000000A']) {
    await copyFile(path.join(FIXTURES, name), path.join(dir, name));
  }
  const small: Record<string, string> = {
    '000000010000000000000002': 'an old segment (content not read)',
    '000000010000000000000003.partial': 'an old partial',
    '000000010000000000000007.gz': 'a compressed copy',
    '000000010000000000000005.00000028.backup': 'START WAL LOCATION: 0/5000028',
    '000000010000000000000006.damaged': 'set aside by receive',
    '00000001.history.gz': 'not a WAL name after -x .gz either',
    '000000010000000000000004.walstream-tmp-12': 'a temp file',
    README: 'junk',
    [gapMarkerName(1, 0x800000n, 0x900000n)]: '', // segment 8 missing on purpose
  };
  for (const [name, content] of Object.entries(small)) await writeFile(path.join(dir, name), content);
  return dir;
}

function credentials(): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: s3.region };
}

function bucketFlags(prefix: string, endpoint = s3.endpoint): string[] {
  return ['--source', `s3://${s3.bucket}/${prefix}`, '--s3-endpoint', endpoint, '--s3-path-style'];
}

/** Every key under `prefix/` (nested ones included), names relative to it. */
async function bucketNames(prefix: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}/` }));
  return (out.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1)).sort();
}

/** A fresh copy of the template in a directory and under a new bucket prefix (with neighbours the commands must not touch). */
async function twin(): Promise<{ dir: string; prefix: string }> {
  const n = ++counter;
  const dir = path.join(await tempDir('walstream-s3-commands-copy-'), 'archive');
  await cp(template, dir, { recursive: true });
  const prefix = `archive-${n}`;
  for (const name of await readdir(template)) {
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/${name}`, Body: await readFile(path.join(template, name)) }));
  }
  // Beside and below the prefix: outside the archive.
  await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/nested/000000010000000000000001`, Body: 'below' }));
  await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}-other/000000010000000000000001`, Body: 'beside' }));
  expect(await bucketNames(prefix)).toEqual([...(await readdir(template)), 'nested/000000010000000000000001'].sort());
  return { dir, prefix };
}

/** Output with the archive's location replaced by ARCHIVE, so directory and bucket runs compare. */
function normalized(text: string, location: string): string {
  return text.split(location).join('ARCHIVE');
}

beforeAll(async () => {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // this process's own client: no Node 20 banner
  s3 = await startS3rver();
  client = new S3Client(s3ClientOptions(s3));
  template = await makeTemplate();
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  await destroyAll();
});

describe('walstream cleanup --source s3://', () => {
  const cases: string[][] = [
    ['000000010000000000000009'],
    ['-x', '.gz', '000000010000000000000009'],
    ['00000002000000000000000A.partial'],
    ['000000010000000000000005.00000028.backup'],
    ['0000000300000000000000FF'], // removes every segment, keeps history, backup and other files
  ];

  it.each(cases)('removes exactly what cleanup -D removes from the same files: %s', async (...args) => {
    const { dir, prefix } = await twin();
    const fromDir = await runWalstream(['cleanup', '-d', '-D', dir, ...args]);
    const fromBucket = await runWalstream(['cleanup', '-d', ...bucketFlags(prefix), ...args], { env: credentials() });
    expect(fromDir.code, fromDir.stderr).toBe(0);
    expect(fromBucket.code, fromBucket.stderr).toBe(0);

    const leftInDir = (await readdir(dir)).sort();
    const leftInBucket = await bucketNames(prefix);
    expect(leftInBucket).toEqual([...leftInDir, 'nested/000000010000000000000001'].sort());
    const removed = (await readdir(template)).filter((n) => !leftInDir.includes(n));
    expect(removed.length).toBeGreaterThan(0);
    for (const name of removed) expect(name).toMatch(/^[0-9A-F]{24}(\.partial)?(\.gz)?$/);
    expect(leftInDir).toContain('00000002.history');
    expect(leftInDir).toContain('000000010000000000000005.00000028.backup');
    // -d names the same files, as ARCHIVE/NAME: the directory's path, the bucket's s3:// location.
    expect(normalized(fromBucket.stderr, `s3://${s3.bucket}/${prefix}`)).toEqual(normalized(fromDir.stderr, dir));
    expect(fromBucket.stderr.split('\n').filter((l) => l.includes('removed file'))).toHaveLength(removed.length);
    expect(await bucketNames(`${prefix}-other`)).toEqual(['000000010000000000000001']);
  });

  it('--dry-run removes nothing and prints the same paths as cleanup -D --dry-run', async () => {
    const { dir, prefix } = await twin();
    const fromDir = await runWalstream(['cleanup', '--dry-run', '-x', '.gz', '-D', dir, '00000002000000000000000A']);
    const fromBucket = await runWalstream(['cleanup', '--dry-run', '-x', '.gz', ...bucketFlags(prefix), '00000002000000000000000A'], { env: credentials() });
    expect(fromBucket.code, fromBucket.stderr).toBe(0);
    expect(fromBucket.stdout.split('\n').filter(Boolean).length).toBeGreaterThan(3);
    expect(fromBucket.stdout.split('\n').filter(Boolean).every((l) => l.startsWith(`s3://${s3.bucket}/${prefix}/`))).toBe(true);
    expect(normalized(fromBucket.stdout, `s3://${s3.bucket}/${prefix}`)).toEqual(normalized(fromDir.stdout, dir));
    expect(await bucketNames(prefix)).toEqual([...(await readdir(template)), 'nested/000000010000000000000001'].sort());
    expect((await readdir(dir)).sort()).toEqual((await readdir(template)).sort());
  });
});

describe('walstream status --source s3://', () => {
  /** The report without what differs by nature between a copy and an upload: times and the location. */
  function facts(json: string): unknown {
    const report = JSON.parse(json);
    const a = report.archive;
    delete a.directory;
    delete a.newest.modified;
    for (const p of a.partials) delete p.modified;
    delete report.ageSeconds;
    return report;
  }

  it('reports the same archive facts as status -D over the same files', async () => {
    const { dir, prefix } = await twin();
    const fromDir = await runWalstream(['status', '-D', dir, '--json']);
    const fromBucket = await runWalstream(['status', ...bucketFlags(prefix), '--json'], { env: credentials() });
    expect(fromBucket.stderr).toBe('');
    const bucketReport = JSON.parse(fromBucket.stdout);
    expect(bucketReport.archive.directory).toBe(`s3://${s3.bucket}/${prefix}`);
    expect(facts(fromBucket.stdout)).toEqual(facts(fromDir.stdout));
    expect(fromBucket.code).toBe(fromDir.code);

    // Not an empty agreement: the fixtures' facts are there (segment 8 missing, recorded; two timelines).
    expect(bucketReport.archive).toMatchObject({
      segmentSize: MB, segmentSizeKnown: true, timelines: [1, 2],
      newest: { name: '00000002000000000000000A', timeline: 2 },
      partials: [{ name: '00000001000000000000000A.partial', belowNewest: false }, { name: '000000010000000000000003.partial', belowNewest: true }],
      setAside: ['000000010000000000000006.damaged'],
    });
    expect(bucketReport.archive.systemId).toMatch(/^[1-9]\d+$/);
    expect(bucketReport.archive.gaps.map((g: { firstMissing: string; marker: string | null }) => [g.firstMissing, g.marker])).toEqual(
      [['000000010000000000000004', null], ['000000010000000000000008', gapMarkerName(1, 0x800000n, 0x900000n)]]);
    expect(fromBucket.code).toBe(2); // the unrecorded gap (segments 4..6) is CRITICAL

    // WAL's age is the upload time: just now.
    expect(bucketReport.ageSeconds).toBeLessThan(120);
    expect(Math.abs(Date.parse(bucketReport.archive.newest.modified) - Date.now())).toBeLessThan(120_000);

    // The text form: the same lines but for where and when.
    const text = await runWalstream(['status', ...bucketFlags(prefix)], { env: credentials() });
    const dirText = await runWalstream(['status', '-D', dir]);
    const stable = (out: string, where: string) => normalized(out, where).replace(/age=\d+s /, '').replace(/written .* ago/g, 'written');
    expect(stable(text.stdout, `s3://${s3.bucket}/${prefix}`)).toEqual(stable(dirText.stdout, dir));
    expect(text.stdout).toMatch(new RegExp(`^archive: s3://${s3.bucket}/${prefix} \\(`, 'm'));
  });

  it('an empty prefix is a WARNING, as an empty directory is', async () => {
    const empty = await tempDir('walstream-s3-commands-empty-');
    const fromDir = await runWalstream(['status', '-D', empty]);
    const fromBucket = await runWalstream(['status', ...bucketFlags('nothing-here')], { env: credentials() });
    expect(fromBucket.code).toBe(1);
    expect(fromDir.code).toBe(1);
    expect(normalized(fromBucket.stdout, `s3://${s3.bucket}/nothing-here`)).toEqual(normalized(fromDir.stdout, empty));
  });
});

describe('cleanup and status --source: one-line errors', () => {
  const oneLine = (stderr: string) => stderr.split('\n').filter(Boolean);

  it('-D with --source, a bad --source, an --s3-* flag without --source', async () => {
    const dir = await tempDir('walstream-s3-commands-err-');
    const cases: Array<[string[], RegExp]> = [
      [['-D', dir, ...bucketFlags('x')], /give either -D ARCHIVE or --source s3:\/\/\S+, not both/],
      [['--source', '/srv/archive'], /invalid --source "\/srv\/archive": give s3:\/\/BUCKET\/PREFIX/],
      [['--source', 's3://No_Such!/x'], /invalid bucket location "s3:\/\/No_Such!\/x"/],
      [['-D', dir, '--s3-path-style'], /--s3-path-style needs --source s3:\/\/BUCKET\/PREFIX/],
    ];
    for (const [flags, pattern] of cases) {
      const cleanup = await runWalstream(['cleanup', ...flags, '000000010000000000000009'], { env: credentials() });
      expect(cleanup.code, cleanup.stderr).toBe(2);
      expect(oneLine(cleanup.stderr)).toHaveLength(1);
      expect(cleanup.stderr).toMatch(new RegExp(`^walstream cleanup: ${pattern.source}`));
      const status = await runWalstream(['status', ...flags], { env: credentials() });
      expect(status.code, status.stderr).not.toBe(0);
      expect(oneLine(status.stderr)).toHaveLength(1);
      expect(status.stderr).toMatch(pattern);
    }
    const neither = await runWalstream(['cleanup', '000000010000000000000009']);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/^walstream cleanup: required option '-D, --directory <ARCHIVE>' not specified \(or give --source s3:\/\/BUCKET\/PREFIX\)\n$/);
  });

  it('an unreachable server or a missing bucket: cleanup exits 2, status is UNKNOWN (3), one line each', async () => {
    const { prefix } = await twin();
    const down = 'http://127.0.0.1:9'; // discard: nothing listens there
    const missingBucket = ['--source', 's3://no-such-bucket-here/x', '--s3-endpoint', s3.endpoint, '--s3-path-style'];
    for (const flags of [bucketFlags(prefix, down), missingBucket]) {
      const cleanup = await runWalstream(['cleanup', ...flags, '0000000300000000000000FF'], { env: credentials() });
      expect(cleanup.code, cleanup.stderr).toBe(2);
      expect(oneLine(cleanup.stderr)).toHaveLength(1);
      expect(cleanup.stderr).toMatch(/^walstream cleanup: could not reach s3:\/\/\S+: .*; check the bucket exists/);
      const status = await runWalstream(['status', ...flags], { env: credentials() });
      expect(status.code).toBe(3);
      expect(status.stderr).toBe('');
      expect(status.stdout).toMatch(/^WALSTREAM UNKNOWN: cannot read the archive s3:\/\/\S+: could not reach /);
    }
    // Nothing was removed through the wrong endpoint.
    expect(await bucketNames(prefix)).toEqual([...(await readdir(template)), 'nested/000000010000000000000001'].sort());
  });
});

describe('over what receive --target wrote: its spool and its bucket', () => {
  it('status reports the same facts and cleanup removes the same segments', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    await cluster.createSlot('s3cmd');
    await cluster.generateWal(4 * MB + 300 * 1024);
    const end = lsnToBigInt(await cluster.currentLsn());
    const spool = await tempDir('walstream-s3-commands-spool-');
    const prefix = 'received';
    const r = await runWalstream(['receive', '-D', spool, '-S', 's3cmd', '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres',
      '-E', formatLsn(end), '-n', '--target', `s3://${s3.bucket}/${prefix}`, '--s3-endpoint', s3.endpoint, '--s3-path-style'],
    { timeoutMs: 120_000, env: credentials() });
    expect(r.code, r.stderr).toBe(0);
    const wal = (names: string[]) => names.filter((n) => /^[0-9A-F]{24}(\.partial)?$/.test(n)).sort();
    const segments = wal(await readdir(spool)).filter((n) => !n.endsWith('.partial'));
    expect(segments.length).toBeGreaterThanOrEqual(4);
    expect(wal(await bucketNames(prefix))).toEqual(wal(await readdir(spool)));

    const fromDir = await runWalstream(['status', '-D', spool, '--json']);
    const fromBucket = await runWalstream(['status', ...bucketFlags(prefix), '--json'], { env: credentials() });
    expect(fromBucket.code, fromBucket.stdout + fromBucket.stderr).toBe(0);
    expect(fromDir.code, fromDir.stdout).toBe(0);
    const facts = (out: string) => {
      const a = JSON.parse(out).archive;
      return { ...a, directory: undefined, newest: { ...a.newest, modified: undefined }, partials: a.partials.map((p: object) => ({ ...p, modified: undefined })) };
    };
    expect(facts(fromBucket.stdout)).toEqual(facts(fromDir.stdout));
    expect(facts(fromBucket.stdout)).toMatchObject({ segments: segments.length, timelines: [1], newest: { name: segments[segments.length - 1] }, gaps: [] });

    const oldestKept = segments[2]!;
    const cleanDir = await runWalstream(['cleanup', '-D', spool, oldestKept]);
    const cleanBucket = await runWalstream(['cleanup', ...bucketFlags(prefix), oldestKept], { env: credentials() });
    expect(cleanDir.code, cleanDir.stderr).toBe(0);
    expect(cleanBucket.code, cleanBucket.stderr).toBe(0);
    expect(wal(await bucketNames(prefix))).toEqual(wal(await readdir(spool)));
    expect(wal(await readdir(spool))[0]).toBe(oldestKept);
  }, 180_000);
});
