/**
 * `walstream cleanup` against the real pg_archivecleanup (PostgreSQL 15): the same archive cleaned by
 * both with the same arguments must end up with the same files.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cleanupArchive } from '../../src/archive/cleanup.js';
import { cleanupMain } from '../../src/cli/cleanup.js';
import { WalstreamError } from '../../src/errors.js';

const PG_ARCHIVECLEANUP = '/usr/lib/postgresql/15/bin/pg_archivecleanup';
const run = promisify(execFile);

/** A messy archive: two timelines, partials, history and backup files, compressed copies and junk. */
const FIXTURE = [
  // timeline 1
  '000000010000000000000001',
  '000000010000000000000002',
  '000000010000000000000003',
  '000000010000000000000004.partial',
  '000000010000000000000002.00000028.backup',
  '0000000100000001000000FF',
  // timeline 2, forked in segment 4
  '00000002.history',
  '000000020000000000000004',
  '000000020000000000000005',
  '000000020000000000000006.partial',
  '000000020000000000000005.00000060.backup',
  '000000020000000100000000',
  // timeline 3 far ahead, and history
  '00000003.history',
  '00000003000000000000000A',
  // compressed copies
  '000000010000000000000001.gz',
  '000000010000000000000003.gz',
  '000000020000000000000005.gz',
  '000000020000000000000006.partial.gz',
  '000000020000000000000007.gz',
  '00000002.history.gz',
  '000000010000000000000003.zst',
  // junk and near-misses
  'README',
  '.walstream-lock',
  '000000010000000000000002.walstream-tmp-1234',
  '00000001000000000000000', // 23 digits
  '0000000100000000000000010', // 25 digits
  '0000000100000000000000ab', // lowercase
  '000000010000000000000002.partial.tmp',
  '000000010000000000000001.gz.gz',
  'x000000010000000000000001',
];

const OLDEST_KEPT = [
  '000000010000000000000001',
  '000000010000000000000003',
  '000000020000000000000005',
  '000000010000000000000005', // timeline ignored: same cut as the one above
  '000000020000000000000006.partial',
  '000000010000000000000002.00000028.backup',
  '000000030000000000000000', // keeps everything
  '0000000300000002000000FF', // removes every segment
];

let root: string;
let template: string;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'walstream-cleanup-'));
  template = join(root, 'template');
  await mkdir(template);
  for (const name of FIXTURE) await writeFile(join(template, name), name);
  await mkdir(join(template, 'subdir')); // not a WAL name: neither tool touches it
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function copyOfTemplate(): Promise<string> {
  const dir = join(root, `copy-${++counter}`);
  await cp(template, dir, { recursive: true });
  return dir;
}

async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

async function pgArchiveCleanup(args: string[]): Promise<string> {
  const { stdout } = await run(PG_ARCHIVECLEANUP, args);
  return stdout;
}

describe.skipIf(!existsSync(PG_ARCHIVECLEANUP))('cleanupArchive matches pg_archivecleanup (PostgreSQL 15)', () => {
  const cases: Array<{ oldestKept: string; extension?: string }> = [
    ...OLDEST_KEPT.map((oldestKept) => ({ oldestKept })),
    ...OLDEST_KEPT.map((oldestKept) => ({ oldestKept, extension: '.gz' })),
    { oldestKept: '000000020000000000000005.gz', extension: '.gz' }, // -x is stripped from the kept name too
    { oldestKept: '000000020000000000000006', extension: '.partial' },
    { oldestKept: '000000010000000000000003', extension: '.zst' },
  ];

  it.each(cases)('leaves the same files for %j', async ({ oldestKept, extension }) => {
    const theirs = await copyOfTemplate();
    const ours = await copyOfTemplate();
    const extArgs = extension === undefined ? [] : ['-x', extension];
    await pgArchiveCleanup([...extArgs, theirs, oldestKept]);
    const removed = await cleanupArchive({ archiveDir: ours, oldestKept, extension });

    const remaining = await listing(ours);
    expect(remaining).toEqual(await listing(theirs));
    expect([...removed, ...remaining].sort()).toEqual(await listing(template));
    // Never anything but WAL segment names.
    for (const name of removed) expect(name).toMatch(/^[0-9A-F]{24}(\.partial)?(\.gz|\.zst)?$/);
  });

  it('removes segments of every timeline but never history or backup files', async () => {
    const dir = await copyOfTemplate();
    const removed = await cleanupArchive({ archiveDir: dir, oldestKept: '0000000300000002000000FF' });
    expect(removed).toEqual([
      '000000010000000000000001',
      '000000010000000000000002',
      '000000010000000000000003',
      '000000010000000000000004.partial',
      '0000000100000001000000FF',
      '000000020000000000000004',
      '000000020000000000000005',
      '000000020000000000000006.partial',
      '000000020000000100000000',
      '00000003000000000000000A',
    ]);
    const left = await listing(dir);
    expect(left).toContain('00000002.history');
    expect(left).toContain('000000020000000000000005.00000060.backup');
  });

  it.each([
    { oldestKept: '000000020000000000000005' },
    { oldestKept: '000000020000000000000006.partial', extension: '.gz' },
    { oldestKept: '000000010000000000000002.00000028.backup', extension: '.gz' },
  ])('--dry-run removes nothing and lists what pg_archivecleanup -n lists (%j)', async ({ oldestKept, extension }) => {
    const theirs = await copyOfTemplate();
    const ours = await copyOfTemplate();
    const extArgs = extension === undefined ? [] : ['-x', extension];
    const theirList = (await pgArchiveCleanup(['-n', ...extArgs, theirs, oldestKept])).split('\n').filter(Boolean);
    expect(theirList.length).toBeGreaterThan(0);

    const library = await cleanupArchive({ archiveDir: ours, oldestKept, extension, dryRun: true });
    expect(library).toEqual(theirList.map((p) => basename(p)).sort());

    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    let code: number;
    try {
      code = await cleanupMain(['--dry-run', ...extArgs, '-D', ours, oldestKept]);
    } finally {
      vi.restoreAllMocks();
    }
    expect(code).toBe(0);
    const cliList = out.join('').split('\n').filter(Boolean);
    expect(cliList.map((p) => basename(p)).sort()).toEqual(theirList.map((p) => basename(p)).sort());
    expect(cliList.every((p) => p.startsWith(ours + '/'))).toBe(true);

    expect(await listing(ours)).toEqual(await listing(template));
    expect(await listing(theirs)).toEqual(await listing(template));
  });

  it('sees a dangling symlink and a directory named like a segment as pg_archivecleanup does', async () => {
    // The archive is read through ArchiveReader (shared with a bucket); a directory must still be read
    // as pg_archivecleanup reads it: every entry, not only regular files.
    const theirs = await copyOfTemplate();
    const ours = await copyOfTemplate();
    for (const dir of [theirs, ours]) await symlink(join(root, 'no-such-target'), join(dir, '000000010000000000000000'));
    await pgArchiveCleanup([theirs, '000000010000000000000002']);
    const removed = await cleanupArchive({ archiveDir: ours, oldestKept: '000000010000000000000002' });
    expect(removed).toContain('000000010000000000000000');
    expect(await listing(ours)).toEqual(await listing(theirs));

    for (const dir of [theirs, ours]) await mkdir(join(dir, '000000010000000000000000'));
    const pgFailed = await run(PG_ARCHIVECLEANUP, [theirs, '000000010000000000000002']).then(() => false, () => true);
    expect(pgFailed).toBe(true);
    await expect(cleanupArchive({ archiveDir: ours, oldestKept: '000000010000000000000002' })).rejects.toMatchObject({
      code: 'ARCHIVE_IO',
      message: expect.stringMatching(/^could not remove ".*\/000000010000000000000000": EISDIR/),
    });
    expect(await listing(ours)).toEqual(await listing(theirs));
  });

  it('accepts and rejects the same OLDEST_KEPT names as pg_archivecleanup', async () => {
    const names = [
      '000000010000000000000010',
      '000000010000000000000010.partial',
      '000000010000000000000010.00000020.backup',
      '000000010000000000000010.backup', // sscanf reads "bac" as the offset
      '000000010000000000000010.-1.backup',
      '000000010000000000000010.x.backup',
      '000000010000000000000010..backup',
      '000000010000000000000010.gz',
      '000000010000000000000010.history',
      '00000002.history',
      '0000000100000000000000ab',
      '00000001000000000000001',
      '0000000100000000000000100',
      'junk',
    ];
    const dir = await copyOfTemplate();
    for (const name of names) {
      const pgAccepts = await run(PG_ARCHIVECLEANUP, ['-n', dir, name]).then(
        () => true,
        () => false,
      );
      const ours = await cleanupArchive({ archiveDir: dir, oldestKept: name, dryRun: true }).then(
        () => true,
        (err: unknown) => {
          expect(err).toBeInstanceOf(WalstreamError);
          expect((err as WalstreamError).code).toBe('BAD_OPTION');
          return false;
        },
      );
      expect({ name, accepted: ours }).toEqual({ name, accepted: pgAccepts });
    }
  });
});

describe('cleanupArchive and walstream cleanup errors', () => {
  function captureStderr(): string[] {
    const err: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err.push(String(chunk));
      return true;
    });
    return err;
  }

  it('reports a missing archive directory before a bad name, as pg_archivecleanup does', async () => {
    const missing = join(root, 'no-such-archive');
    await expect(cleanupArchive({ archiveDir: missing, oldestKept: 'junk' })).rejects.toMatchObject({ code: 'ARCHIVE_MISSING' });
    await expect(cleanupArchive({ archiveDir: template, oldestKept: 'junk', dryRun: true })).rejects.toMatchObject({
      code: 'BAD_OPTION',
    });
  });

  it('exits 2 with one clear line for an invalid OLDEST_KEPT, a missing directory or bad usage', async () => {
    const dir = await copyOfTemplate();
    const cases: Array<[string[], RegExp]> = [
      [['-D', dir, '00000002.history'], /^walstream cleanup: invalid oldest-kept WAL file name "00000002\.history"; /],
      [['-D', join(root, 'nope'), '000000010000000000000003'], /^walstream cleanup: archive directory ".*nope" does not exist/],
      [['000000010000000000000003'], /^walstream cleanup: required option '-D, --directory <ARCHIVE>' not specified/],
      [['-D', dir], /^walstream cleanup: missing required argument 'OLDEST_KEPT'/],
    ];
    for (const [argv, pattern] of cases) {
      const err = captureStderr();
      let code: number;
      try {
        code = await cleanupMain(argv);
      } finally {
        vi.restoreAllMocks();
      }
      expect(code).toBe(2);
      const lines = err.join('').split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(pattern);
    }
    expect(await listing(dir)).toEqual(await listing(template));
  });

  it('removes and, with --debug, reports each file on stderr; accepts a leading "cleanup"', async () => {
    const dir = await copyOfTemplate();
    const err = captureStderr();
    let code: number;
    try {
      code = await cleanupMain(['cleanup', '-d', '-D', dir, '000000010000000000000002']);
    } finally {
      vi.restoreAllMocks();
    }
    expect(code).toBe(0);
    expect(err.join('')).toBe(
      `walstream cleanup: keeping WAL file "${dir}/000000010000000000000002" and later\n` +
        `walstream cleanup: removed file "${dir}/000000010000000000000001"\n`,
    );
    expect(await listing(dir)).not.toContain('000000010000000000000001');
    expect(await listing(dir)).toContain('000000010000000000000001.gz');
  });
});
